"""The element types and shapes that weights files declare: the types by their safetensors
names, raw bytes viewed as arrays of them, and the checks on a declared shape."""
import numpy as np

__all__ = ["DTYPES", "DTYPE_NAMES", "MAX_NDIM", "bfloat16_to_float32", "decode_buffer", "is_count"]

# Byte order is spelled out ("<" = little-endian) because the file formats fix it, whatever
# the machine uses. NumPy has no bfloat16, so BF16 is read as raw 16-bit words and widened
# by decode_buffer.
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

#: The reverse table, used when writing. BF16 is left out: NumPy arrays are never
#: bfloat16, so it is never written.
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items() if name != "BF16"}

#: The most dimensions a tensor of a checkpoint may have (NumPy allows 64; CLIP uses 4).
MAX_NDIM = 32


def is_count(value) -> bool:
    """Whether ``value`` is a non-negative int (JSON, pickles and ``.npy`` headers can
    declare anything)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def bfloat16_to_float32(words: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bit patterns (uint16) to float32 values.

    bfloat16 is simply the upper half of a float32: same sign bit, same 8 exponent bits,
    only 7 of the 23 mantissa bits. Shifting the 16 bits into the top of a 32-bit word and
    reinterpreting it as float32 is exact.
    """
    return (words.astype(np.uint32) << 16).view(np.float32)


def decode_buffer(buffer, dtype_name: str) -> np.ndarray:
    """View raw little-endian bytes (a whole number of elements) as a flat array of the
    named element type."""
    flat = np.frombuffer(buffer, dtype=DTYPES[dtype_name])
    if dtype_name == "BF16":
        flat = bfloat16_to_float32(flat)
    return flat

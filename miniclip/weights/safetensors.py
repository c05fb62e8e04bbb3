"""``.safetensors`` files, read and written without the ``safetensors`` package.

Layout: an 8-byte little-endian unsigned integer N, then N bytes of JSON header, then one
buffer holding every tensor's raw little-endian bytes. The header maps each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}``, offsets counted from the start of
that buffer; the optional ``"__metadata__"`` entry maps strings to strings.

Reading checks the whole header against the file before taking any memory for tensors:
every entry well formed, its byte count the one its shape and type need, its bytes inside
the buffer and overlapping no other entry's (so the tensors together never hold more than
the file), no name twice.
"""
import json
import math
import os
import struct

import numpy as np

from ..system.files import atomic_write
from .dtypes import DTYPE_NAMES, DTYPES, MAX_NDIM, decode_buffer, is_count
from .errors import DAMAGED, CheckpointError, parsing, short_repr
from .zips import open_regular_file

__all__ = ["load_safetensors", "save_safetensors"]

#: The reference implementation's limit on the header, which we share.
MAX_HEADER_SIZE = 100_000_000


def save_safetensors(path, state_dict: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Save a state dict as a ``.safetensors`` file (atomically).

    Arrays keep their element type (F64, F32, F16, I64, I32, I16, I8, U8 or
    BOOL); anything else, such as object arrays, raises ``TypeError`` before a
    single byte is written.
    """
    header: dict = {} if metadata is None else {"__metadata__": dict(metadata)}
    buffers = []
    offset = 0
    for name, value in state_dict.items():
        array = np.asarray(value)
        # Files are little-endian: convert big-endian arrays ("|" types,
        # i.e. single bytes, have no byte order and stay as they are).
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        if array.dtype not in DTYPE_NAMES:
            raise TypeError(f"cannot save {name!r}: safetensors has no type for NumPy dtype {array.dtype}")
        header[name] = {
            "dtype": DTYPE_NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        buffers.append(array)
        offset += array.nbytes

    header_bytes = json.dumps(header).encode("utf-8")
    # Pad the header with spaces (valid JSON) so the data starts at a multiple
    # of 8 bytes, as the reference implementation does; readers can then map
    # the data without misaligned 8-byte values.
    header_bytes += b" " * (-len(header_bytes) % 8)
    with atomic_write(path) as file:
        file.write(struct.pack("<Q", len(header_bytes)))
        file.write(header_bytes)
        for array in buffers:
            file.write(array.tobytes())


def load_safetensors(path) -> dict[str, np.ndarray]:
    """Read a ``.safetensors`` file, keeping each tensor's element type.

    The one exception is BF16, which NumPy lacks: it is widened to float32. Raises
    ``CheckpointError`` (a ``ValueError``) naming the file and the header entry if the
    header is malformed or disagrees with the file, e.g. when the file is truncated.
    """
    path = os.fspath(path)
    with open_regular_file(path) as file:
        file_size = os.fstat(file.fileno()).st_size
        if file_size < 8:
            raise CheckpointError(path, None, f"is truncated: {file_size} bytes, fewer than "
                                  "the 8 of a safetensors header length")
        (header_size,) = struct.unpack("<Q", file.read(8))
        if header_size > min(file_size - 8, MAX_HEADER_SIZE):
            raise CheckpointError(path, "header length", f"is {header_size} bytes, but the "
                                  f"file holds {file_size - 8} after it: the file is truncated "
                                  "or not a safetensors file")
        entries = _parse_header(file.read(header_size), path)
        data_start, data_size = 8 + header_size, file_size - 8 - header_size
        _check_layout(entries, data_size, path)
        state_dict = {}
        for name, (dtype_name, shape, begin, end) in entries.items():
            file.seek(data_start + begin)
            buffer = bytearray(file.read(end - begin))  # bytearray: the array is writable
            if len(buffer) != end - begin:  # the file shrank while being read
                raise CheckpointError(path, f"tensor {short_repr(name)}", "the file is truncated")
            state_dict[name] = decode_buffer(buffer, dtype_name).reshape(shape)
    return state_dict


def _reject_repeated_names(pairs):
    """``object_pairs_hook`` of ``json.loads``: a dict, refusing a name given twice."""
    result = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"the name {name!r} appears twice")
        result[name] = value
    return result


def _parse_header(raw, path):
    """The header's tensor entries as ``{name: (dtype name, shape, begin, end)}``."""
    with parsing(path, "header", "is not a valid safetensors JSON header"):
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_repeated_names)
    if not isinstance(header, dict):
        raise CheckpointError(path, "header", f"is a JSON {type(header).__name__}, not an object")
    header.pop("__metadata__", None)
    entries = {}
    for name, entry in header.items():
        fields = entry if isinstance(entry, dict) else {}
        dtype_name, shape = fields.get("dtype"), fields.get("shape")
        offsets = fields.get("data_offsets")
        if not (set(fields) == {"dtype", "shape", "data_offsets"} and isinstance(dtype_name, str)
                and isinstance(shape, list) and len(shape) <= MAX_NDIM
                and isinstance(offsets, list) and len(offsets) == 2
                and all(is_count(n) for n in [*shape, *offsets])):
            raise CheckpointError(path, f"header entry {short_repr(name)}", f"malformed safetensors header "
                                  f"entry {short_repr(name)}: {short_repr(entry)}")
        if dtype_name not in DTYPES:
            raise CheckpointError(path, f"header entry {short_repr(name)}", f"tensor {short_repr(name)} has "
                                  f"unsupported dtype {short_repr(dtype_name)}",
                                  f"expected one of {', '.join(DTYPES)}")
        begin, end = offsets
        expected = math.prod(shape) * DTYPES[dtype_name].itemsize
        if end - begin != expected:
            raise CheckpointError(path, f"header entry {short_repr(name)}", f"data_offsets {offsets} "
                                  f"span {end - begin} bytes, but {dtype_name} of shape "
                                  f"{shape} needs {expected}")
        entries[name] = (dtype_name, shape, begin, end)
    return entries


def _check_layout(entries, data_size, path):
    """Every entry's bytes inside the data buffer, and no two entries' overlapping."""
    previous_end, previous = 0, None
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if end > data_size:
            raise CheckpointError(path, f"tensor {short_repr(name)}", f"its data_offsets [{begin}, {end}] "
                                  f"reach past the {data_size} bytes of data: the file is "
                                  "truncated", DAMAGED)
        if begin < previous_end:
            raise CheckpointError(path, f"tensor {short_repr(name)}", f"its data_offsets [{begin}, {end}] "
                                  f"overlap those of {short_repr(previous)}")
        if end > begin:
            previous_end, previous = end, name


"""``.npz`` files: written with NumPy, read here member by member.

An ``.npz`` is a zip archive of ``.npy`` files. ``np.load`` allocates the array a member's
header declares before it reads the data, so a damaged shape in a small file asks for
gigabytes. :func:`read_npz` reads each member (checked by :class:`~.zips.Archive`), parses
its ``.npy`` header itself and checks that the data holds exactly the bytes that the
shape and element type need before making the array. Pickled object arrays are refused,
as ``np.load(allow_pickle=False)`` refuses them.

The ``.npy`` layout: the magic ``\\x93NUMPY``, a major and a minor version byte, the header
length (2 bytes little-endian in version 1, 4 in versions 2 and 3), the header (a Python
dict literal with ``descr``, ``fortran_order`` and ``shape``; latin-1, or UTF-8 in version
3), then the raw elements.
"""
import ast
import math
import struct

import numpy as np

from ..system.files import atomic_write
from .dtypes import MAX_NDIM, is_count
from .errors import UNSUPPORTED, CheckpointError, parsing, short_repr
from .zips import Archive

__all__ = ["read_npy_bytes", "read_npz", "read_npz_members", "save_npz"]

_NPY_MAGIC = b"\x93NUMPY"

#: NumPy's own cap on a header's length, which keeps ``ast.literal_eval`` cheap.
_MAX_HEADER_SIZE = 10_000

# The element kinds a weights file or training state holds: bool, integers, floats,
# complex, and the strings a training state's metadata is stored in.
_KINDS = "biufcSU"


def save_npz(path, state_dict: dict[str, np.ndarray]) -> None:
    """Save a state dict as an uncompressed ``.npz`` file (atomically).

    Object arrays raise ``TypeError``: NumPy would pickle them, and our
    loader (rightly) refuses pickles inside ``.npz`` files.
    """
    arrays = {name: np.asarray(value) for name, value in state_dict.items()}
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"cannot save {name!r}: arrays of Python objects would have to be pickled")
    with atomic_write(path) as file:
        # Passing an open file stops NumPy from appending ".npz" to the name.
        np.savez(file, **arrays)


def read_npz(path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, by name (the member name without ``.npy``).

    Raises ``CheckpointError`` naming the file and the member for a damaged or pickled
    member, or an archive holding anything but ``.npy`` files.
    """
    with Archive(path) as archive:
        return read_npz_members(archive)


def read_npz_members(archive: Archive) -> dict[str, np.ndarray]:
    """:func:`read_npz` of an archive already open."""
    names = archive.names
    others = [name for name in names if not name.endswith(".npy")]
    if not names or others:
        found = f"member {short_repr(others[0])}" if others else "no member"
        raise CheckpointError(archive.path, None, f"a zip archive with {found}, neither a "
                              "PyTorch file (no <folder>/data.pkl) nor an .npz (only .npy "
                              "members)", UNSUPPORTED)
    return {name[:-len(".npy")]: _read_npy(archive, name) for name in names}


def _read_npy(archive, name) -> np.ndarray:
    """Member ``name`` of ``archive`` as an array."""
    return read_npy_bytes(archive.read(name), archive.path, f"member {short_repr(name)}")


def read_npy_bytes(data: bytes, path, part=None) -> np.ndarray:
    """The array of the ``.npy`` bytes ``data``, its header checked against them before any
    memory is taken; a ``CheckpointError`` naming ``path`` and ``part`` if they disagree or
    hold Python objects."""
    shape, fortran_order, dtype, start = _parse_npy_header(data, path, part)
    count = math.prod(shape)
    if len(data) - start != count * dtype.itemsize:
        raise CheckpointError(path, part, f"its header declares {count} elements of "
                              f"{dtype.itemsize} bytes (shape {shape}), the member holds "
                              f"{len(data) - start} bytes of data")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return flat.reshape(shape, order="F" if fortran_order else "C").copy(order="K")


def _parse_npy_header(data, path, part):
    """``(shape, fortran_order, dtype, data start)`` of the ``.npy`` bytes ``data``."""
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        raise CheckpointError(path, part, f"is not a .npy array (it starts {data[:8]!r})")
    major = data[6]
    if major not in (1, 2, 3):
        raise CheckpointError(path, part, f"is a .npy of unknown version {major} (NumPy "
                              "writes 1, 2 or 3)")
    length_format = "<H" if major == 1 else "<I"
    length_end = 8 + struct.calcsize(length_format)
    (header_size,) = struct.unpack(length_format, data[8:length_end])
    if header_size > _MAX_HEADER_SIZE or length_end + header_size > len(data):
        raise CheckpointError(path, part, f"declares a {header_size}-byte .npy header in "
                              f"{len(data)} bytes")
    text = data[length_end:length_end + header_size]
    with parsing(path, part, "its .npy header cannot be parsed"):
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin-1"))
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}):
        raise CheckpointError(path, part, f"its .npy header {short_repr(header)} does not "
                              "give exactly descr, fortran_order and shape")
    shape, fortran_order = header["shape"], header["fortran_order"]
    if not (isinstance(shape, tuple) and len(shape) <= MAX_NDIM and isinstance(fortran_order, bool)
            and all(is_count(n) for n in shape)):
        raise CheckpointError(path, part, f"its .npy header has shape {short_repr(shape)} and "
                              f"fortran_order {short_repr(fortran_order)}")
    with parsing(path, part, f"its .npy header has element type {short_repr(header['descr'])}"):
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    if dtype.hasobject:
        raise CheckpointError(path, part, "holds Python objects, which only a pickle could "
                              "rebuild; pickles are not loaded", UNSUPPORTED)
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None \
            or dtype.itemsize == 0:
        raise CheckpointError(path, part, f"has element type {dtype}, not numbers or text",
                              UNSUPPORTED)
    return shape, fortran_order, dtype, length_end + header_size

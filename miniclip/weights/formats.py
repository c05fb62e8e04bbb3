"""The file formats CLIP weights come in, read (and written) without PyTorch.

Each reader returns a *state dict*: a ``dict[str, numpy.ndarray]`` with the names the file
holds. ``read_weights_file`` recognises a file by its contents, not by its name:

* OpenAI's released ``.pt`` files.  They are TorchScript archives: zip files
  holding ``data.pkl``, a pickle of the module tree whose tensors point at raw
  byte buffers stored next to it as ``data/0``, ``data/1``, ...
* ``torch.save`` files (PyTorch >= 1.6), which use the same zip layout with a
  pickled dict of tensors instead of a module tree.
* ``.npz`` files, e.g. written by :func:`save_npz`.
* ``.safetensors`` files, e.g. written by :func:`save_safetensors`.

(Hugging Face folders and names are ``huggingface.py``'s job; ``loading.py`` puts the
two together.)

Pickle files can run arbitrary code when loaded with ``pickle.load``.  We never
do that: :class:`_RestrictedUnpickler` only lets a pickle refer to the handful
of names that describe tensors and containers, and never calls the real
PyTorch functions behind those names.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import zipfile

import numpy as np

from ..system.files import atomic_write

__all__ = ["load_safetensors", "read_weights_file", "save_npz", "save_safetensors"]


# --------------------------------------------------------------------------
# Element types
# --------------------------------------------------------------------------

# Element types by their safetensors names.  Byte order is spelled out ("<" =
# little-endian) because both file formats fix it, whatever the machine uses.
# NumPy has no bfloat16, so BF16 is read as raw 16-bit words and converted by
# _decode_buffer.
_DTYPES = {
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

# The reverse table, used when writing.  BF16 is left out: NumPy arrays are
# never bfloat16, so we never write it.
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items() if name != "BF16"}


def _bfloat16_to_float32(words: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bit patterns (uint16) to float32 values.

    bfloat16 is simply the upper half of a float32: same sign bit, same 8
    exponent bits, only 7 of the 23 mantissa bits.  Shifting the 16 bits into
    the top of a 32-bit word and reinterpreting it as float32 is exact.
    """
    return (words.astype(np.uint32) << 16).view(np.float32)


def _decode_buffer(buffer, dtype_name: str) -> np.ndarray:
    """View raw little-endian bytes as a flat array of the named element type."""
    flat = np.frombuffer(buffer, dtype=_DTYPES[dtype_name])
    if dtype_name == "BF16":
        flat = _bfloat16_to_float32(flat)
    return flat


# --------------------------------------------------------------------------
# .npz
# --------------------------------------------------------------------------


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


def _load_npz(path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (refusing pickled object arrays)."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


# --------------------------------------------------------------------------
# .safetensors
# --------------------------------------------------------------------------
# Layout: an 8-byte little-endian unsigned integer N, then N bytes of JSON
# header, then one buffer holding every tensor's raw little-endian bytes.
# The header maps each tensor name to {"dtype", "shape", "data_offsets":
# [begin, end]}, offsets counted from the start of that buffer; the optional
# "__metadata__" entry maps strings to strings.


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
        if array.dtype not in _DTYPE_NAMES:
            raise TypeError(f"cannot save {name!r}: safetensors has no type for NumPy dtype {array.dtype}")
        header[name] = {
            "dtype": _DTYPE_NAMES[array.dtype],
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

    The one exception is BF16, which NumPy lacks: it is widened to float32.
    Raises ``ValueError`` naming the file if the header is malformed or the
    file is shorter than the header says.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        (header_size,) = struct.unpack("<Q", _read_exactly(file, 8, path))
        if header_size > file_size - 8:
            raise ValueError(f"{path}: safetensors header length {header_size} exceeds the file size {file_size}")
        try:
            header = json.loads(_read_exactly(file, header_size, path))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: safetensors header is not valid JSON ({error})") from None
        if not isinstance(header, dict):
            raise ValueError(f"{path}: safetensors header is not a JSON object")
        header.pop("__metadata__", None)
        data_start = 8 + header_size

        state_dict = {}
        for name, entry in header.items():
            try:
                dtype_name, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
                well_formed = (isinstance(dtype_name, str) and isinstance(shape, list)
                               and all(_is_count(n) for n in [*shape, begin, end]))
            except (KeyError, TypeError, ValueError):
                well_formed = False
            if not well_formed:
                raise ValueError(f"{path}: malformed safetensors header entry {name!r}: {entry!r}")
            if dtype_name not in _DTYPES:
                raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name}")
            expected = int(np.prod(shape)) * _DTYPES[dtype_name].itemsize
            if end - begin != expected:
                raise ValueError(f"{path}: tensor {name!r} has data_offsets {[begin, end]} for {expected} bytes")
            file.seek(data_start + begin)
            buffer = bytearray(_read_exactly(file, expected, path))  # bytearray: the array is writable
            state_dict[name] = _decode_buffer(buffer, dtype_name).reshape(shape)
    return state_dict


def _is_count(value) -> bool:
    """Whether ``value`` is a non-negative int (JSON and pickles can hold anything)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_exactly(file, size: int, path) -> bytes:
    """Read ``size`` bytes or raise ``ValueError`` saying the file is truncated."""
    data = file.read(size)
    if len(data) != size:
        raise ValueError(f"{path}: file is truncated (wanted {size} bytes at offset {file.tell() - len(data)}, got {len(data)})")
    return data


# --------------------------------------------------------------------------
# PyTorch pickles (torch.save files and TorchScript archives)
# --------------------------------------------------------------------------
# A PyTorch zip archive looks like this (the folder name varies):
#
#     archive/data.pkl       pickle of the saved object (dict or module tree)
#     archive/data/0, ...    raw bytes of each tensor storage
#     archive/byteorder      "little" or "big" (missing in older files: little)
#     archive/constants.pkl  TorchScript only: constants of the traced code
#     archive/code/...       TorchScript only: the model's compiled code
#
# Inside data.pkl a tensor is the call
#     torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, ...)
# where `storage` is a "persistent id", a tuple that the pickle cannot
# resolve by itself and hands to Unpickler.persistent_load:
#     ("storage", torch.FloatStorage, "0", "cpu", number_of_elements)
# meaning "the float32 elements stored in archive/data/0".

# Storage classes named in the pickles, and the element type they stand for.
_TORCH_STORAGE_DTYPES = {
    "DoubleStorage": "F64",
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}


class _StorageType:
    """Stand-in for a class such as ``torch.FloatStorage``: just its element type."""

    def __init__(self, dtype_name: str):
        self.dtype_name = dtype_name


class TorchScriptObject:
    """Inert stand-in for a TorchScript module object (a ``__torch__.*`` class).

    Unpickling such an object only stores its attributes (submodules,
    tensors, flags like ``training``) in ``self.state``; no code of the
    original class exists here, so none can run.
    """

    def __setstate__(self, state):
        # Called by pickle's BUILD opcode with the object's attribute dict.
        self.state = state


def _rebuild_tensor(storage, storage_offset, shape, stride, *_ignored) -> np.ndarray:
    """Our version of ``torch._utils._rebuild_tensor_v2``: an array from a storage.

    A PyTorch tensor is a window onto a flat storage: element ``[i, j, ...]``
    lives at ``storage[offset + i*stride[0] + j*stride[1] + ...]``.  We check
    that the window fits inside the storage (a crafted file could otherwise
    make NumPy read memory outside it), take that strided view and copy it
    into a normal C-contiguous array.  The ignored arguments are
    ``requires_grad``, backward hooks and optional metadata.
    """
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError("tensor storage is not a persistent storage reference")
    if not (
        _is_count(storage_offset)
        and isinstance(shape, tuple)
        and isinstance(stride, tuple)
        and len(shape) == len(stride)
        and all(_is_count(n) for n in shape + stride)
    ):
        raise pickle.UnpicklingError(f"invalid tensor layout: offset {storage_offset}, shape {shape}, stride {stride}")
    if 0 in shape:
        return np.empty(shape, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"tensor (offset {storage_offset}, shape {shape}, stride {stride}) "
            f"reaches element {last} of a storage of {storage.size} elements"
        )
    window = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=shape, strides=[s * storage.itemsize for s in stride]
    )
    return window.copy()


def _rebuild_parameter(data, *_ignored) -> np.ndarray:
    """Our version of ``torch._utils._rebuild_parameter``: a parameter is just its data."""
    return data


# The only globals a pickle may name, and what we hand back instead.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype_name) for name, dtype_name in _TORCH_STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build tensors, containers and module shells.

    ``pickle.Unpickler.find_class`` normally imports any module and returns
    any attribute, which is how a malicious pickle calls ``os.system``.
    Ours looks names up in ``_ALLOWED_GLOBALS`` and refuses everything else.

    ``read_record(key)`` must return the raw bytes of storage ``key``.
    """

    def __init__(self, file, read_record):
        super().__init__(file)
        self._read_record = read_record
        self._storages = {}  # key -> flat array; tensors may share a storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[module, name]
        # TorchScript names the classes of the saved modules "__torch__.<module>.<class>".
        if module == "__torch__" or module.startswith("__torch__."):
            return TorchScriptObject
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: it is not part of a plain "
            "tensor checkpoint, and loading it could run arbitrary code"
        )

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and _is_count(pid[4])
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, size = pid
        if key not in self._storages:
            storage = _decode_buffer(self._read_record(key), storage_type.dtype_name)
            if storage.size < size:
                raise pickle.UnpicklingError(f"storage {key!r} holds {storage.size} elements, expected {size}")
            self._storages[key] = storage
        return self._storages[key]


def _find_torch_pickle(names: list[str]) -> str | None:
    """The name of the archive's top-level ``<folder>/data.pkl``, if it has one."""
    candidates = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    return candidates[0] if len(candidates) == 1 else None


def _load_torch_zip(path: str, archive: zipfile.ZipFile, pickle_name: str) -> dict[str, np.ndarray]:
    """Read a ``torch.save`` file or a TorchScript archive into a state dict.

    ``pickle_name`` is the archive's ``<folder>/data.pkl``; the storages are
    in ``<folder>/data/``.
    """
    folder = pickle_name[: -len("data.pkl")]
    if folder + "byteorder" in archive.namelist() and archive.read(folder + "byteorder") != b"little":
        raise ValueError(f"{path}: big-endian PyTorch archives are not supported")

    def read_record(key):
        try:
            return archive.read(f"{folder}data/{key}")
        except KeyError:
            raise ValueError(f"{path}: the archive has no storage {folder}data/{key}") from None

    with archive.open(pickle_name) as file:
        saved = _RestrictedUnpickler(file, read_record).load()

    if isinstance(saved, TorchScriptObject):
        return _flatten_module(saved)
    return _unwrap_state_dict(saved, path)


def _flatten_module(module: TorchScriptObject, prefix: str = "") -> dict[str, np.ndarray]:
    """Collect the tensors of a TorchScript module tree under dotted names.

    This gives the module's ``state_dict()``: in a traced module every tensor
    attribute is a parameter or buffer (plain tensors used by the code become
    constants, stored separately in ``constants.pkl``).
    """
    state_dict = {}
    for name, value in module.state.items():
        if isinstance(value, np.ndarray):
            state_dict[prefix + name] = value
        elif isinstance(value, TorchScriptObject):
            state_dict.update(_flatten_module(value, prefix + name + "."))
    return state_dict


def _unwrap_state_dict(saved, path: str) -> dict[str, np.ndarray]:
    """Find the state dict in what ``torch.save`` stored.

    Training scripts often save ``{"state_dict": ..., "epoch": ...}``, and
    models wrapped in ``DistributedDataParallel`` prefix every name with
    ``module.``; both are undone here.
    """
    if isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict):
        saved = saved["state_dict"]
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: expected a state dict (a dict of tensors), found a {type(saved).__name__}")
    for name, value in saved.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{path}: entry {name!r} of the state dict is a {type(value).__name__}, not a tensor")
    if saved and all(name.startswith("module.") for name in saved):
        saved = {name[len("module."):]: value for name, value in saved.items()}
    return dict(saved)


# --------------------------------------------------------------------------
# Any of them
# --------------------------------------------------------------------------


def read_weights_file(path: str) -> dict[str, np.ndarray]:
    """Read one weights file, recognising its format from its first bytes."""
    with open(path, "rb") as file:
        start = file.read(9)

    if start.startswith(b"PK\x03\x04"):  # the signature of a zip file
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                pickle_name = _find_torch_pickle(names)
                if pickle_name is not None:
                    return _load_torch_zip(path, archive, pickle_name)
                if names and all(name.endswith(".npy") for name in names):
                    return _load_npz(path)
        except (zipfile.BadZipFile, EOFError) as error:
            raise ValueError(f"{path}: corrupt or truncated zip archive ({error})") from None
        raise ValueError(f"{path}: a zip archive, but neither a PyTorch file (no data.pkl) nor an .npz (not only .npy entries)")

    # safetensors: an 8-byte header length, then a JSON object.
    if len(start) == 9 and start[8:9] == b"{":
        return load_safetensors(path)

    tried = "a zip archive (PyTorch .pt/.bin, TorchScript, .npz) or a safetensors file"
    if start.startswith(b"\x80"):  # pickle protocol 2+ opcode
        raise ValueError(f"{path}: a bare pickle, probably the legacy torch.save format of PyTorch < 1.6, which is not supported; expected {tried}")
    raise ValueError(f"{path}: unrecognised checkpoint format (first bytes {start!r}); expected {tried}")

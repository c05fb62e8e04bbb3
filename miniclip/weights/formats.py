"""The file formats CLIP weights come in, recognised by their contents; PyTorch's read here.

:func:`read_weights_file` returns a *state dict*, a ``dict[str, numpy.ndarray]`` with the
names the file holds, from any of:

* OpenAI's released ``.pt`` files. They are TorchScript archives: zip files holding
  ``data.pkl``, a pickle of the module tree whose tensors point at raw byte buffers stored
  next to it as ``data/0``, ``data/1``, ...
* ``torch.save`` files (PyTorch >= 1.6), which use the same zip layout with a pickled dict
  of tensors instead of a module tree.
* ``.npz`` files (``npz.py``), e.g. written by ``save_npz``.
* ``.safetensors`` files (``safetensors.py``), e.g. written by ``save_safetensors``.

(Hugging Face folders and names are ``huggingface.py``'s job; ``loading.py`` puts the two
together.)

Damaged and hostile files
-------------------------
A file from anywhere may be cut short, damaged or made to hurt. Every problem raises a
:class:`~miniclip.weights.errors.CheckpointError` (a ``ValueError``) naming the file, the
part (zip member, tensor, header field) and what to do; see ``errors.py`` for the
hierarchy. Memory stays bounded by the file: zip members' sizes are checked before they
are read (``zips.py``), ``.npy`` headers and safetensors offsets against the bytes present
before an array is made, and a pickle as follows.

Pickle files can run arbitrary code when loaded with ``pickle.load``. We never do that:
:class:`_RestrictedUnpickler` only lets a pickle refer to the handful of names that
describe tensors and containers, and never calls the real PyTorch functions behind those
names; any other global is refused with a ``ForbiddenGlobalError`` (also a
``pickle.UnpicklingError``). Before that, :func:`_check_opcodes` walks the pickle's
opcodes and refuses declared lengths beyond the member, memo indices beyond the opcodes
seen and extension codes, so that the unpickler never allocates more than the member
holds. Each tensor must lie inside its storage and hold at most as many elements, and all
tensors together at most :data:`TENSOR_BYTES_PER_FILE_BYTE` times the file's size.
"""

from __future__ import annotations

import collections
import functools
import io
import math
import os
import pickle
import pickletools

import numpy as np

from .dtypes import DTYPES, MAX_NDIM, decode_buffer, is_count
from .errors import (
    UNSUPPORTED,
    CheckpointError,
    CheckpointPickleError,
    ForbiddenGlobalError,
    parsing,
    short_repr,
)
from .npz import read_npz_members
from .safetensors import load_safetensors
from .zips import Archive, open_regular_file

__all__ = ["NAME_CHARACTERS_PER_PICKLE_BYTE", "TENSOR_BYTES_PER_FILE_BYTE", "TorchScriptObject",
           "read_weights_file"]

#: The tensors of a PyTorch file may hold at most this many bytes per byte of the file:
#: bfloat16 widens 2-fold, and tied weights show one storage twice.
TENSOR_BYTES_PER_FILE_BYTE = 4

#: The dotted names of a TorchScript module tree may spell at most this many characters per
#: byte of its pickle (each name part is stored once, but a path repeats its parents').
NAME_CHARACTERS_PER_PICKLE_BYTE = 16


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


class _Invalid(pickle.UnpicklingError):
    """What the pickle describes is not a valid tensor checkpoint (the message says why);
    ``_load_torch_zip`` adds the file and the member."""


class _StorageType:
    """Stand-in for a class such as ``torch.FloatStorage``: just its element type."""

    __slots__ = ("dtype_name",)

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
    make NumPy read memory outside it) and holds no more elements than the storage
    (strides of 0 could otherwise make a huge tensor of one element), take that strided
    view and copy it into a normal C-contiguous array.  The ignored arguments are
    ``requires_grad``, backward hooks and optional metadata.
    """
    if not isinstance(storage, np.ndarray):
        raise _Invalid("tensor storage is not a persistent storage reference")
    if not (
        is_count(storage_offset)
        and isinstance(shape, tuple)
        and isinstance(stride, tuple)
        and len(shape) == len(stride) <= MAX_NDIM
        and all(is_count(n) for n in shape + stride)
    ):
        raise _Invalid(f"invalid tensor layout: offset {short_repr(storage_offset)}, "
                       f"shape {short_repr(shape)}, stride {short_repr(stride)}")
    if 0 in shape:
        return np.empty(shape, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= storage.size or math.prod(shape) > storage.size:
        raise _Invalid(
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

    ``read_record(key)`` must return the raw bytes of storage ``key``; the tensors built
    may hold at most ``tensor_bytes`` bytes together.
    """

    def __init__(self, file, read_record, tensor_bytes, path, member):
        super().__init__(file)
        self._read_record = read_record
        self._storages = {}  # key -> flat array; tensors may share a storage
        self._tensor_bytes_left = tensor_bytes
        self._path, self._member = path, member
        # A pickle can set attributes on any object it names (BUILD), so it gets objects of
        # its own, never ones the next file would get: a class of this load's own for its
        # modules, and below a fresh storage type or function wrapper per name.
        self._module_class = type("TorchScriptObject", (TorchScriptObject,), {})

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            allowed = _ALLOWED_GLOBALS[module, name]
            if isinstance(allowed, _StorageType):
                return _StorageType(allowed.dtype_name)
            if allowed is _rebuild_tensor:
                return self._rebuild_counted
            return functools.partial(allowed) if allowed is _rebuild_parameter else allowed
        # TorchScript names the classes of the saved modules "__torch__.<module>.<class>".
        if module == "__torch__" or module.startswith("__torch__."):
            return self._module_class
        raise ForbiddenGlobalError(
            self._path, f"member {short_repr(self._member)}",
            f"refusing to load global {short_repr(module)[1:-1]}.{short_repr(name)[1:-1]}: "
            "it is not part of a plain tensor checkpoint, and loading it could run arbitrary "
            "code (nothing of it ran)",
            "if you trust the file, load it with PyTorch and save its state_dict() as "
            ".safetensors or .npz")

    def _rebuild_counted(self, *args):
        """``_rebuild_tensor``, counting the bytes the tensors take against the budget."""
        tensor = _rebuild_tensor(*args)
        self._tensor_bytes_left -= tensor.nbytes
        if self._tensor_bytes_left < 0:
            raise _Invalid(f"its tensors hold more than {TENSOR_BYTES_PER_FILE_BYTE} bytes per "
                           "byte of the file, which no honest checkpoint does")
        return tensor

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and is_count(pid[4])
        ):
            raise _Invalid(f"unsupported persistent id {short_repr(pid)}")
        _, storage_type, key, _location, size = pid
        if key not in self._storages:
            record = self._read_record(key)
            itemsize = DTYPES[storage_type.dtype_name].itemsize
            if len(record) % itemsize:
                raise _Invalid(f"storage {short_repr(key)} holds {len(record)} bytes, not a "
                               f"whole number of {storage_type.dtype_name} elements")
            storage = decode_buffer(record, storage_type.dtype_name)
            if storage.size < size:
                raise _Invalid(f"storage {short_repr(key)} holds {storage.size} elements, "
                               f"expected {size}")
            self._storages[key] = storage
        return self._storages[key]


# The opcodes that store into the memo at an index they name: the C unpickler grows the
# memo to that index at once.
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_opcodes(data: bytes) -> None:
    """Refuse a pickle that would make the unpickler allocate beyond ``data``'s size.

    ``pickletools.genops`` reads every declared string and bytes length from the buffer
    itself (so a length past the end fails after reading what is there, never allocating
    it), and we check what it does not: memo indices beyond the opcodes seen, a frame
    longer than the rest of the data, and extension codes (which PyTorch never writes).
    """
    seen = 0
    for opcode, argument, position in pickletools.genops(data):
        seen += 1
        if opcode.name in _MEMO_PUTS and argument > seen:
            raise _Invalid(f"opcode {opcode.name} at byte {position} stores memo entry "
                           f"{argument} after {seen} opcodes")
        if opcode.name == "FRAME" and argument > len(data) - position:
            raise _Invalid(f"a frame at byte {position} declares {argument} bytes, "
                           f"{len(data) - position} remain")
        if opcode.name.startswith("EXT"):
            raise _Invalid(f"opcode {opcode.name} at byte {position} names an extension "
                           "code, which tensor checkpoints never use")


def _find_torch_pickle(names: list[str]) -> str | None:
    """The name of the archive's top-level ``<folder>/data.pkl``, if it has one."""
    candidates = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    return candidates[0] if len(candidates) == 1 else None


def _load_torch_zip(archive: Archive, pickle_name: str) -> dict[str, np.ndarray]:
    """Read a ``torch.save`` file or a TorchScript archive into a state dict.

    ``pickle_name`` is the archive's ``<folder>/data.pkl``; the storages are
    in ``<folder>/data/``.
    """
    path, folder = archive.path, pickle_name[: -len("data.pkl")]
    if folder + "byteorder" in archive and archive.read(folder + "byteorder") != b"little":
        raise CheckpointError(path, f"member '{folder}byteorder'", "big-endian PyTorch "
                              "archives are not supported", "save it on a little-endian machine")

    def read_record(key):
        name = f"{folder}data/{key}"
        if name not in archive:
            raise _Invalid(f"the archive has no storage {short_repr(name)}")
        return archive.read(name)

    data = archive.read(pickle_name)  # the unpickler reads from a buffer of exactly its size
    unpickler = _RestrictedUnpickler(io.BytesIO(data), read_record,
                                     TENSOR_BYTES_PER_FILE_BYTE * archive.size, path, pickle_name)
    part = f"member {short_repr(pickle_name)}"
    with parsing(path, part, "the pickle is damaged", error_type=CheckpointPickleError):
        try:
            _check_opcodes(data)  # pickletools' errors on damaged bytes are caught above
            saved = unpickler.load()
            if isinstance(saved, TorchScriptObject):
                return _flatten_module(saved, NAME_CHARACTERS_PER_PICKLE_BYTE * len(data))
            return _unwrap_state_dict(saved)
        except _Invalid as error:
            raise CheckpointPickleError(path, part, str(error)) from error


def _flatten_module(root: TorchScriptObject, budget: int) -> dict[str, np.ndarray]:
    """Collect the tensors of a TorchScript module tree under dotted names.

    This gives the module's ``state_dict()``: in a traced module every tensor
    attribute is a parameter or buffer (plain tensors used by the code become
    constants, stored separately in ``constants.pkl``). A crafted pickle can nest modules
    deeply, share one many times over or make a cycle, so the tree is walked with an
    explicit stack and each visit and name costs its length out of ``budget`` characters.
    """
    state_dict = {}
    pending = [(root, "")]
    while pending:
        module, prefix = pending.pop()
        budget -= len(prefix) + 1
        if budget < 0:
            raise _Invalid("its module tree spells out names longer than the pickle can "
                           "honestly hold: modules nested in a cycle or shared many times")
        where = prefix.rstrip(".") or "<root>"
        state = getattr(module, "state", None)
        if not isinstance(state, dict):
            raise _Invalid(f"module {short_repr(where)} has no attribute dict")
        children = []
        for name, value in state.items():
            if not isinstance(name, str):
                raise _Invalid(f"module {short_repr(where)} has an attribute named {short_repr(name)}")
            if isinstance(value, np.ndarray):
                state_dict[prefix + name] = value
                budget -= len(prefix) + len(name)
            elif isinstance(value, TorchScriptObject):
                children.append((value, prefix + name + "."))
        pending.extend(reversed(children))  # depth first, in attribute order
    return state_dict


def _unwrap_state_dict(saved) -> dict[str, np.ndarray]:
    """Find the state dict in what ``torch.save`` stored.

    Training scripts often save ``{"state_dict": ..., "epoch": ...}``, and
    models wrapped in ``DistributedDataParallel`` prefix every name with
    ``module.``; both are undone here.
    """
    if isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict):
        saved = saved["state_dict"]
    if not isinstance(saved, dict):
        raise _Invalid(f"expected a state dict (a dict of tensors), found a {type(saved).__name__}")
    for name, value in saved.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise _Invalid(f"entry {short_repr(name)} of the state dict is a "
                           f"{type(value).__name__}, not a tensor")
    if saved and all(name.startswith("module.") for name in saved):
        saved = {name[len("module."):]: value for name, value in saved.items()}
    return dict(saved)


# --------------------------------------------------------------------------
# Any of them
# --------------------------------------------------------------------------


def read_weights_file(path) -> dict[str, np.ndarray]:
    """Read one weights file, recognising its format from its first bytes.

    Raises ``FileNotFoundError`` for a missing file and a ``CheckpointError`` (a
    ``ValueError``) naming the file, the part and the fix for a damaged or unsupported one.
    """
    path = os.fspath(path)
    with open_regular_file(path) as file:
        start = file.read(9)

    if start.startswith(b"PK\x03\x04"):  # the signature of a zip file
        with Archive(path) as archive:
            pickle_name = _find_torch_pickle(archive.names)
            if pickle_name is not None:
                return _load_torch_zip(archive, pickle_name)
            return read_npz_members(archive)

    # safetensors: an 8-byte header length, then a JSON object.
    if len(start) == 9 and start[8:9] == b"{":
        return load_safetensors(path)

    if start.startswith(b"\x80"):  # pickle protocol 2+ opcode
        raise CheckpointError(path, None, "a bare pickle, probably the legacy torch.save format "
                              "of PyTorch < 1.6, which is not supported", UNSUPPORTED)
    raise CheckpointError(path, None, f"unrecognised checkpoint format (first bytes {start!r})",
                          UNSUPPORTED)

"""Checkpoint files crafted by hand for the tests, without PyTorch: PyTorch-style zips with
any pickle inside, and safetensors files with any header."""
import collections
import io
import json
import pickle
import struct
import zipfile


class Global:
    """Writes itself into a pickle as a reference to ``module.name``.

    Lets the tests craft PyTorch-style pickles that name torch's functions
    without importing torch.
    """

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self):  # pickle insists that the function of a REDUCE be callable
        raise AssertionError("never called")


class Call:
    """Pickles as a call ``function(*args)``."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


class Storage:
    """Pickles as a persistent id naming a storage record in the archive."""

    def __init__(self, storage_class, key, size):
        self.pid = ("storage", Global("torch", storage_class), key, "cpu", size)


class CraftingPickler(pickle._Pickler):
    """The pure-Python pickler, taught to write _Global and _Storage objects."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_fake_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[Global] = save_fake_global

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, Storage) else None


def pickled(payload, protocol=2):
    """``payload`` pickled as PyTorch pickles it, Global and Storage objects included."""
    buffer = io.BytesIO()
    CraftingPickler(buffer, protocol=protocol).dump(payload)
    return buffer.getvalue()


def torch_zip(path, payload, records, folder="archive"):
    """Write a torch.save-style archive: ``payload`` (an object, or pickle bytes) as
    ``data.pkl``, raw records in ``data/``."""
    data = payload if isinstance(payload, bytes) else pickled(payload)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/data.pkl", data)
        for key, raw in records.items():
            archive.writestr(f"{folder}/data/{key}", raw)


def rebuild_tensor(storage, offset, shape, stride):
    """Pickles as torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, requires_grad, hooks)."""
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), storage, offset, shape, stride, False, collections.OrderedDict())


def write_safetensors_by_hand(path, tensors):
    """An independent minimal writer: tensors is {name: (dtype name, shape, raw bytes)}."""
    header, offset = {}, 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    header_bytes = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + b"".join(raw for _, _, raw in tensors.values()))

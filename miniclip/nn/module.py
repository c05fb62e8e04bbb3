"""``Module`` and ``Parameter``: how a model keeps track of its weights.

A model is a tree of modules. Each ``Module`` owns three kinds of state, kept in three
ordered dictionaries that are filled simply by assigning attributes::

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(4, 8)         # a Module     -> self._modules["fc1"]
            self.scale = Parameter(...)     # a Parameter  -> self._parameters["scale"]
            self.register_buffer("count", np.zeros((), np.int64))  # -> self._buffers["count"]

* **Parameters** are the tensors an optimiser trains (``requires_grad=True``).
* **Buffers** are state that is saved with the model but not trained, such as the
  running statistics of batch normalisation.
* **Submodules** are walked recursively, which gives every tensor a dotted name
  (``fc1.weight``) — the keys of ``state_dict()`` and of the checkpoint files.

The API and the names follow PyTorch's ``torch.nn.Module``, so that checkpoints and
habits carry over. Hooks, ``register_module`` and ``named_*(recurse=False)`` variants
are left out.
"""
import collections

import numpy as np

from .. import backend
from ..autograd import Tensor


class Parameter(Tensor):
    """A tensor that is a trainable weight of a module (``requires_grad=True`` by default).

    Assigning a ``Parameter`` to a module attribute registers it, so that it shows up in
    ``module.parameters()`` and ``module.state_dict()``. The data is shared, not copied,
    when ``data`` is already an array or a tensor.
    """

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What ``load_state_dict(strict=False)`` could not match, by name."


class Module:
    """Base class of every layer and model (see the module docstring).

    Subclasses call ``super().__init__()`` first, assign their parameters and
    submodules as attributes, and implement ``forward``; ``module(x)`` calls ``forward``.
    """

    # Keys a subclass allows to be absent from a state dict (see BatchNorm2d).
    _optional_state_keys = ()

    def __init__(self):
        # object.__setattr__ because our own __setattr__ reads these dictionaries.
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", collections.OrderedDict())
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration
    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent one such as a bias=False bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot register a {type(param).__name__} as parameter {name!r} "
                            "(a Parameter or None is expected)")
        self._check_new_name(name, "_parameters")
        self._forget(name, "_parameters")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register state that is not trained: a Tensor, an array of any device, or None.

        The buffer is kept as a tensor that does not require grad. It moves with
        ``to(device)`` and is saved by ``state_dict()`` unless ``persistent=False``
        (for state that code can rebuild, such as an attention mask).
        """
        self._check_new_name(name, "_buffers")
        self._forget(name, "_buffers")
        self._buffers[name] = _as_buffer(tensor)
        if not persistent:
            self._non_persistent_buffers.add(name)

    def _check_new_name(self, name, store):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call super().__init__() before assigning parameters, buffers "
                                 "or submodules")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"invalid name {name!r}: names must be non-empty strings without '.'")
        if name in self.__dict__ or any(name in getattr(self, other) for other in
                                        ("_parameters", "_buffers", "_modules") if other != store):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def _forget(self, name, keep):
        """Remove ``name`` from every place an attribute can live except the store ``keep``
        it is about to be assigned in (where re-assigning keeps its place in the order)."""
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                getattr(self, store).pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, (Parameter, Module)) and params is None:
            raise AttributeError("call super().__init__() before assigning parameters or "
                                 "submodules")
        if isinstance(value, Parameter):
            self._forget(name, "_parameters")
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, "_modules")
            self._modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as parameter {name!r} "
                                "(a Parameter or None is expected); to change its values, "
                                f"assign to {name}.data")
            params[name] = None
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as submodule {name!r} "
                                "(a Module or None is expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            self._buffers[name] = _as_buffer(value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Called only when normal lookup fails, i.e. for registered state.
        for store in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(store)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__[store]
            if name in values:
                del values[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    # ------------------------------------------------------------ walking the tree
    def named_modules(self, prefix="", remove_duplicate=True):
        """Yield ``(dotted_name, module)`` for this module (name ``prefix``) and every
        descendant, depth first in registration order. A module reachable by two paths
        is yielded once unless ``remove_duplicate=False``."""
        seen = set()

        def walk(module, name):
            if remove_duplicate:
                if id(module) in seen:
                    return
                seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                if child is not None:
                    yield from walk(child, _join(name, child_name))

        yield from walk(self, prefix)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Yield ``(name, module)`` for the direct submodules only."""
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix=""):
        """Yield ``(dotted_name, parameter)`` in registration order, e.g. ``("0.weight", p)``.

        A parameter shared by two modules (tied weights) is yielded once, under its first
        name, so an optimiser does not update it twice.
        """
        yield from self._named_tensors("_parameters", prefix)

    def parameters(self):
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix=""):
        """Yield ``(dotted_name, buffer)`` for every buffer that is not None."""
        yield from self._named_tensors("_buffers", prefix)

    def buffers(self):
        for _, buffer in self.named_buffers():
            yield buffer

    def _named_tensors(self, store, prefix):
        """``(dotted_name, tensor)`` for the tensors in ``store``, each shared one once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, tensor in getattr(module, store).items():
                if tensor is None or id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                yield _join(module_name, name), tensor

    def _named_state(self):
        """Every saved tensor by its state-dict key: each module's parameters, then its
        persistent buffers, then its submodules' (PyTorch's key order). Tied tensors
        appear under each of their names, as in PyTorch."""
        for module_name, module in self.named_modules(remove_duplicate=False):
            for name, param in module._parameters.items():
                if param is not None:
                    yield _join(module_name, name), param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    yield _join(module_name, name), buffer

    def num_parameters(self):
        """Total number of trainable numbers (each shared parameter counted once)."""
        return sum(p.size for p in self.parameters())

    # ------------------------------------------------------------ saving and loading
    def state_dict(self):
        """An ``OrderedDict`` from dotted name to a NumPy copy of every parameter and
        persistent buffer. Copies, on the host: changing the model later does not change
        a saved state dict, and it can be written with ``numpy.savez`` from any device."""
        return collections.OrderedDict(
            (name, backend.to_numpy(tensor.data)) for name, tensor in self._named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the existing parameters and buffers, matched by name.

        Values may be NumPy arrays, arrays of any device or Tensors; each is converted to
        the dtype and device of the tensor it fills, and copied into that tensor's array,
        so the Parameter objects an optimiser holds stay the ones being trained.

        All problems are found before anything is copied, and reported together in one
        ``RuntimeError`` naming every missing key, unexpected key and shape mismatch; on
        an error the model is unchanged. With ``strict=False`` missing and unexpected keys
        are tolerated (shape mismatches are still errors) and returned as
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        own = collections.OrderedDict(self._named_state())
        values = {name: as_array(value) for name, value in state_dict.items()}
        optional = {key for key in own if _last_part(key) in self._optional_keys_of(key)}
        missing = [key for key in own if key not in values and key not in optional]
        unexpected = [key for key in values if key not in own]
        mismatched = [f"{key}: expected shape {own[key].shape}, got {tuple(values[key].shape)}"
                      for key in own if key in values
                      and tuple(values[key].shape) != own[key].shape]
        problems = []
        if strict and missing:
            problems.append("missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected key(s): " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch(es):\n    " + "\n    ".join(mismatched))
        if problems:
            raise RuntimeError(f"error(s) in loading state_dict for {type(self).__name__} "
                               "(nothing was loaded):\n  " + "\n  ".join(problems))
        for key, tensor in own.items():
            if key in values:
                array = backend.move(values[key], tensor.device).astype(tensor.dtype)
                tensor.data[...] = array  # in place: the same Parameter, the same array
        return IncompatibleKeys(missing, unexpected)

    def _optional_keys_of(self, key):
        """The ``_optional_state_keys`` of the module that owns state-dict ``key``."""
        module = self
        for part in key.split(".")[:-1]:
            module = module._modules[part]
        return module._optional_state_keys

    # ------------------------------------------------------------ modes, devices, dtypes
    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode on this module and all
        descendants; it changes layers such as Dropout and BatchNorm2d. Returns self."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Turn training of every parameter on or off (e.g. to freeze a tower). Returns self."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, device_or_dtype):
        """Move every parameter, gradient and buffer to a device (``"cpu"``, ``"cuda"``),
        or cast the floating ones to a dtype (integer buffers such as
        ``num_batches_tracked`` keep theirs). In place; returns self.

        The Parameter objects stay the same (only their ``.data`` and ``.grad`` arrays
        are replaced), so an optimiser created earlier keeps working.
        """
        if backend.is_dtype(device_or_dtype):
            dtype = np.dtype(device_or_dtype)

            def convert(array):
                return array.astype(dtype) if array.dtype.kind == "f" else array
        else:
            device = backend.get_device(device_or_dtype)

            def convert(array):
                return backend.move(array, device)
        for tensor in [*self.parameters(), *self.buffers()]:  # each shared tensor once
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad = convert(tensor.grad)
        return self

    def float(self):
        return self.to(np.float32)

    def half(self):
        return self.to(np.float16)

    def double(self):
        return self.to(np.float64)

    def zero_grad(self):
        """Forget the gradients of every parameter (``.grad = None``), before a new backward."""
        for param in self.parameters():
            param.grad = None

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant (children first) and then on self,
        e.g. to re-initialise weights. Returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ printing
    def extra_repr(self):
        """Settings shown inside the parentheses of ``repr`` (override in subclasses)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _indent_after_first_line(repr(child), 2))
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _last_part(key):
    return key.rsplit(".", 1)[-1]


def _indent_after_first_line(text, spaces):
    return text.replace("\n", "\n" + " " * spaces)


def as_array(value):
    """The array inside a Tensor, a device array as it is, anything else via NumPy."""
    if isinstance(value, Tensor):
        return value.data
    try:
        backend.device_of(value)
        return value
    except TypeError:
        return np.asarray(value)


def _as_buffer(value):
    """Buffers are stored as tensors that never require grad (None stays None)."""
    if value is None:
        return None
    return Tensor(as_array(value))


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    The submodules are named ``"0"``, ``"1"``, … (so their parameters are ``0.weight``
    and so on), or take the names of an ``OrderedDict`` given as the only argument.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, module in modules[0].items():
                setattr(self, name, module)
        else:
            for module in modules:
                self.append(module)

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(collections.OrderedDict(items[index]))
        return items[index][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list's would
    not be). Submodules are named ``"0"``, ``"1"``, …; there is no ``forward``: the
    owner decides how to call them."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]

    def __setitem__(self, index, module):
        names = list(self._modules)
        setattr(self, names[index], module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for an optional layer)."""

    def forward(self, x):
        return x

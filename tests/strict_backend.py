"""A stand-in for CuPy that runs on the CPU: the ``"strict"`` device.

Its arrays (``StrictArray``) wrap NumPy arrays but, like CuPy's, refuse to be turned
into NumPy arrays implicitly: ``np.asarray(a)``, ``np.exp(a)`` and ``a + numpy_array``
all raise ``TypeError``. Its module (``strict``) offers NumPy's functions the way
``cupy`` does: they accept strict arrays and Python numbers, return strict arrays, and
refuse NumPy arrays. ``strict.asarray(np_array)`` is the explicit host-to-device copy
and ``a.get()`` the explicit copy back, as in CuPy.

Every op and module test runs on this device as well as on the CPU, so code that would
break on a GPU breaks in CI, which has none.
"""
import numbers
import types

import numpy as np

from miniclip import backend


def _unwrap(value, where):
    if isinstance(value, StrictArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(
            f"{where}: got a numpy.ndarray where a device array was expected (implicit "
            "host-to-device conversion is not allowed, as in CuPy); use xp.asarray first"
        )
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, slice):
        return slice(*(_unwrap(v, where) for v in (value.start, value.stop, value.step)))
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return StrictArray(value)
    if isinstance(value, np.generic):  # CuPy reductions give 0-d device arrays, not scalars
        return StrictArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class StrictArray:
    """A device array that lives on the ``"strict"`` device (see the module docstring)."""

    __array_ufunc__ = None  # numpy ufuncs and `numpy_array + self` refuse, as with CuPy

    def __init__(self, array):
        self._a = array

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self):
        """Explicit device-to-host copy, as ``cupy.ndarray.get``."""
        return self._a.copy()

    # attributes and methods that return plain values or new arrays
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: StrictArray(self._a.T))
    flags = property(lambda self: self._a.flags)

    def __getattr__(self, name):
        if name.startswith("__"):  # hide __array_interface__ & co., or NumPy would use them
            raise AttributeError(name)
        attribute = getattr(self._a, name)
        if not callable(attribute):
            return _wrap(attribute)

        def method(*args, **kwargs):
            return _wrap(attribute(*_unwrap(args, f"ndarray.{name}"),
                                   **{k: _unwrap(v, f"ndarray.{name}") for k, v in kwargs.items()}))
        return method

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index, "indexing")])

    def __setitem__(self, index, value):
        self._a[_unwrap(index, "indexing")] = _unwrap(value, "assignment")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __repr__(self):
        return f"strict.array({self._a!r})"

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __bool__(self):
        return bool(self._a)

    def __copy__(self):
        return StrictArray(self._a.copy())


def _binary(name):
    def op(self, other):
        if not isinstance(other, (StrictArray, numbers.Number, np.generic, bool)):
            raise TypeError(f"unsupported operand for {name}: strict array and "
                            f"{type(other).__name__} (as CuPy refuses NumPy arrays)")
        return _wrap(getattr(self._a, name)(_unwrap(other, name)))
    return op


for _name in ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
              "and", "or", "xor", "lt", "le", "gt", "ge", "eq", "ne", "lshift", "rshift"]:
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(np.ndarray, _form):
            setattr(StrictArray, _form, _binary(_form))
for _name in ["__neg__", "__pos__", "__abs__", "__invert__"]:
    setattr(StrictArray, _name, lambda self, _n=_name: StrictArray(getattr(self._a, _n)()))
StrictArray.__hash__ = None


class _Namespace(types.SimpleNamespace):
    """Mirror of a NumPy (sub)module whose functions take and give strict arrays."""

    def __init__(self, module, name):
        super().__init__()
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "__name__", name)

    def __getattr__(self, name):
        attribute = getattr(self._module, name)
        if isinstance(attribute, types.ModuleType):
            return _Namespace(attribute, f"{self.__name__}.{name}")
        if isinstance(attribute, type) or not callable(attribute):
            return attribute  # dtypes (strict.float32), constants (strict.pi, strict.newaxis)

        def function(*args, **kwargs):
            args = _unwrap(args, f"{self.__name__}.{name}")
            kwargs = {k: _unwrap(v, f"{self.__name__}.{name}") for k, v in kwargs.items()}
            return _wrap(attribute(*args, **kwargs))
        function.__name__ = name
        if isinstance(attribute, np.ufunc):  # keep ufunc methods such as add.at
            for method in ("at", "reduce", "accumulate", "outer"):
                setattr(function, method, getattr(_Namespace(attribute, name), method))
        return function


strict = _Namespace(np, "strict")
strict.ndarray = StrictArray


def _asarray(value, dtype=None):
    """Explicit host-to-device copy (``cupy.asarray``): NumPy arrays are accepted here."""
    if isinstance(value, StrictArray):
        return value if dtype is None else StrictArray(value._a.astype(dtype, copy=False))
    return StrictArray(np.array(value, dtype=dtype))


strict.asarray = _asarray
strict.array = lambda value, dtype=None, copy=True: StrictArray(
    np.array(value._a if isinstance(value, StrictArray) else value, dtype=dtype))
strict.asnumpy = lambda a: a.get() if isinstance(a, StrictArray) else np.asarray(a)


STRICT = backend.register_device(backend.Device(
    "strict", lambda: strict, lambda: StrictArray,
    to_device=lambda host: StrictArray(np.array(host)),
    to_host=lambda array: array.get(),
))
STRICT.xp  # loaded at once: the stand-in needs no lazy import

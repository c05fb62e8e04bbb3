"""A fake ``cupy`` for machines without a GPU: CI runs miniclip's real ``"cuda"`` device on it.

``install()`` puts modules named ``cupy``, ``cupyx``, ``cupyx.scipy`` and
``cupyx.scipy.special`` into ``sys.modules`` *before* miniclip first asks for CuPy. From
then on ``device="cuda"`` runs exactly the code it runs on a GPU: the lazy import in
``backend._load_cupy``, ``Device.owns``, the host<->device copies, and every branch that
only CuPy takes (``xp.__name__ == "cupy"``). Only the arrays are fake.

The fake imitates what CuPy does differently from NumPy, because that is what breaks code
written and tested on NumPy (each point was seen, or is documented, on CuPy 14):

* its arrays (``FakeArray``) refuse implicit conversion to NumPy: ``np.asarray(a)``,
  ``np.exp(a)`` and ``a + numpy_array`` raise ``TypeError``; ``cupy.asarray(host)`` and
  ``a.get()`` / ``cupy.asnumpy(a)`` are the explicit copies;
* its functions refuse NumPy arrays, and reductions return 0-d arrays, not scalars;
* only names CuPy really has are offered (``FUNCTIONS``): a NumPy-only function is an
  ``AttributeError``, as it would be on a GPU;
* ``cupyx.scipy.special.erf`` computes float16 input in float64 and returns float64
  (measured on an H100): callers must cast back;
* ``cupy.random`` is a generator of its own, seeded by ``cupy.random.seed``;
* ``cupy.fuse`` first *traces* the function on stand-ins (``FusionArgument``) that allow
  only what a fused kernel can do -- arithmetic, elementwise functions, ``astype``,
  in-place updates of the arguments -- and are not arrays (``backend.get_array_module``
  refuses them, as it refuses CuPy's), then runs it.

``python tests/fake_cupy.py SCRIPT ARGS...`` runs a script with the fake installed, e.g. a
dry run of ``benchmarks/bench_models.py --device cuda --quick`` on a machine without a GPU.

It also counts what a GPU makes expensive, for tests to assert on: ``transfers`` (every
device-to-host read: ``get``, ``item``, ``float``, ``bool``, ``asnumpy``...), and, inside
``record_dtypes()``, the dtype of every array created.
"""
import collections
import contextlib
import numbers
import sys
import types

import numpy as np

#: Device-to-host reads since the counter was last reset (``transfers.clear()``).
transfers = collections.Counter()

_dtype_log = None  # a Counter of created dtypes inside record_dtypes(), else None


@contextlib.contextmanager
def record_dtypes():
    """Count the dtype of every array the fake creates inside the block (yields the Counter)."""
    global _dtype_log
    previous, _dtype_log = _dtype_log, collections.Counter()
    try:
        yield _dtype_log
    finally:
        _dtype_log = previous


def _unwrap(value, where):
    if isinstance(value, FakeArray):
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
        return FakeArray(value)
    if isinstance(value, np.generic):  # CuPy reductions give 0-d device arrays, not scalars
        return FakeArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _read(kind):
    transfers[kind] += 1


class _Flags:
    """CuPy's ``ndarray.flags``: contiguity and ownership only (no ``writeable``)."""

    def __init__(self, array):
        self.c_contiguous = array.flags.c_contiguous
        self.f_contiguous = array.flags.f_contiguous
        self.owndata = array.flags.owndata


class FakeArray:
    """A ``cupy.ndarray`` of the fake (see the module docstring)."""

    __array_ufunc__ = None  # numpy ufuncs and `numpy_array + self` refuse, as with CuPy

    def __init__(self, array):
        self._a = array
        if _dtype_log is not None:
            _dtype_log[array.dtype] += 1

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self):
        """Explicit device-to-host copy, as ``cupy.ndarray.get``."""
        _read("get")
        return self._a.copy()

    # attributes and methods that return plain values or new arrays
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: FakeArray(self._a.T))
    flags = property(lambda self: _Flags(self._a))
    base = property(lambda self: None if self._a.base is None else FakeArray(self._a.base))

    def __getattr__(self, name):
        if name.startswith("__"):  # hide __array_interface__ & co., or NumPy would use them
            raise AttributeError(name)
        if name not in METHODS:
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        attribute = getattr(self._a, name)

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
        return repr(self._a)  # as CuPy prints: array([...])

    def __copy__(self):
        return FakeArray(self._a.copy())


def _host_value(name, kind):
    """The method ``name`` that hands the array's value to Python: a device read, counted
    under ``kind`` (CuPy waits for the GPU there)."""
    def method(self):
        _read(kind)
        return getattr(self._a, name)()
    return method


for _name, _kind in [("item", "item"), ("tolist", "tolist"), ("__float__", "float"),
                     ("__int__", "int"), ("__index__", "index"), ("__bool__", "bool")]:
    setattr(FakeArray, _name, _host_value(_name, _kind))


def _binary(name):
    def op(self, other):
        if not isinstance(other, (FakeArray, numbers.Number, np.generic, bool)):
            raise TypeError(f"unsupported operand for {name}: cupy.ndarray and "
                            f"{type(other).__name__} (CuPy refuses NumPy arrays)")
        return _wrap(getattr(self._a, name)(_unwrap(other, name)))
    return op


for _name in ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
              "and", "or", "xor", "lt", "le", "gt", "ge", "eq", "ne", "lshift", "rshift"]:
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(np.ndarray, _form):
            setattr(FakeArray, _form, _binary(_form))
for _name in ["__neg__", "__pos__", "__abs__", "__invert__"]:
    setattr(FakeArray, _name, lambda self, _n=_name: FakeArray(getattr(self._a, _n)()))
FakeArray.__hash__ = None

#: ``cupy.ndarray`` methods offered (all exist in CuPy 14).
METHODS = frozenset("""
    all any argmax argmin astype clip copy cumsum dot fill max mean min nonzero prod ravel
    repeat reshape round squeeze std sum swapaxes take transpose var view
""".split())

#: Module-level functions offered, as NumPy's (all exist in CuPy 14 with NumPy's meaning).
FUNCTIONS = frozenset("""
    abs absolute add all allclose any arange argmax argmin argsort array_equal broadcast_to
    ceil clip concatenate copy cos cosh cumsum diag divide dot einsum empty empty_like equal
    exp expand_dims expm1 eye flatnonzero floor full full_like greater greater_equal isfinite
    isinf isnan less less_equal linspace log log1p logaddexp logical_and logical_not
    logical_or matmul max maximum mean min minimum moveaxis multiply negative nonzero
    not_equal ones ones_like outer pad power prod ravel repeat reshape rint round sign sin
    sinh split sqrt square squeeze stack std subtract sum swapaxes take tanh tensordot tile
    transpose tril triu var where zeros zeros_like
""".split())

#: The functions a fused kernel may call: NumPy's ufuncs among them, and where / clip.
ELEMENTWISE = frozenset(name for name in FUNCTIONS if isinstance(getattr(np, name), np.ufunc)
                        ) | {"where", "clip"}

#: Names that are not functions (dtypes, constants), passed through as NumPy's.
CONSTANTS = frozenset("""
    bool_ float16 float32 float64 int8 int16 int32 int64 uint8 inf nan pi newaxis e
    dtype integer floating
""".split())


class _Mirror(types.ModuleType):
    """A module whose functions are NumPy's, taking and giving fake device arrays."""

    def __init__(self, name, numpy_module, functions, constants=frozenset()):
        super().__init__(name)
        self._numpy_module, self._functions, self._constants = numpy_module, functions, constants

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._constants:
            return getattr(self._numpy_module, name)
        if name not in self._functions:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}' "
                                 "(the fake offers only what CuPy has: tests/fake_cupy.py)")
        attribute = getattr(self._numpy_module, name)
        where = f"{self.__name__}.{name}"

        def function(*args, **kwargs):
            if _holds_fusion_argument(args):
                if name not in ELEMENTWISE:
                    raise TypeError(f"cupy.fuse: {where} is not supported inside a fused "
                                    "function (only elementwise functions are)")
                return _fused(function(*_unfused(args), **kwargs))
            args = _unwrap(args, where)
            kwargs = {k: _unwrap(v, where) for k, v in kwargs.items()}
            return _wrap(attribute(*args, **kwargs))
        function.__name__ = name
        if isinstance(attribute, np.ufunc):  # keep ufunc methods such as add.at
            function.at = lambda a, indices, values: attribute.at(
                _unwrap(a, where), _unwrap(indices, where), _unwrap(values, where))
            function.reduce = lambda a, *args, **kw: _wrap(attribute.reduce(_unwrap(a, where),
                                                                             *args, **kw))
        return function


class FusionArgument:
    """What a function receives while the fake ``cupy.fuse`` traces it (see ``_fuse``)."""

    __array_ufunc__ = None

    def __init__(self, array):
        self._array = array  # a FakeArray

    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)

    def astype(self, dtype, copy=False):
        return FusionArgument(self._array.astype(dtype))

    def __getattr__(self, name):
        if name.startswith("__"):  # NumPy probing for __array_interface__ & co.
            raise AttributeError(name)
        raise TypeError(f"cupy.fuse: '{name}' is not supported inside a fused function "
                        "(only arithmetic, elementwise functions and astype are)")

    def __getitem__(self, index):
        raise TypeError("cupy.fuse: indexing is not supported inside a fused function")

    def __bool__(self):
        raise TypeError("cupy.fuse: a fused function cannot branch on array values")


def _holds_fusion_argument(value):
    if isinstance(value, (list, tuple)):
        return any(_holds_fusion_argument(v) for v in value)
    return isinstance(value, FusionArgument)


def _unfused(value):
    if isinstance(value, FusionArgument):
        return value._array
    if isinstance(value, tuple):
        return tuple(_unfused(v) for v in value)
    return value


def _fused(value):
    if isinstance(value, FakeArray):
        return FusionArgument(value)
    if isinstance(value, tuple):
        return tuple(_fused(v) for v in value)
    return value


def _fusion_operator(name):
    def op(self, other):
        if not isinstance(other, (FusionArgument, numbers.Number, np.generic, bool)):
            raise TypeError(f"cupy.fuse: unsupported operand {type(other).__name__}")
        result = getattr(self._array, name)(_unfused(other))
        if name.startswith("__i"):  # in place: writes into the argument's array
            self._array = result
            return self
        return _fused(result)
    return op


for _name in ["add", "sub", "mul", "truediv", "pow", "lt", "le", "gt", "ge", "eq", "ne",
              "and", "or"]:
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(np.ndarray, _form):
            setattr(FusionArgument, _form, _fusion_operator(_form))
FusionArgument.__neg__ = lambda self: FusionArgument(-self._array)


def _fuse(*args, kernel_name=None):
    """``cupy.fuse``: trace on copies (nothing is written if the trace fails), then run."""
    def decorate(function):
        def fused(*arguments):
            copies = [FusionArgument(FakeArray(a._a.copy())) if isinstance(a, FakeArray) else a
                      for a in arguments]
            function(*copies)  # the trace: raises on what a kernel cannot do
            return _unfused(function(*_fused(arguments)))
        fused.__name__ = kernel_name or function.__name__
        return fused
    if len(args) == 1 and callable(args[0]):
        return decorate(args[0])
    return decorate


def _asarray(value, dtype=None):
    """Explicit host-to-device copy (``cupy.asarray``): NumPy arrays are accepted here."""
    if isinstance(value, FakeArray):
        return value if dtype is None else FakeArray(value._a.astype(dtype, copy=False))
    return FakeArray(np.array(value, dtype=dtype))


def _asnumpy(array):
    if isinstance(array, FakeArray):
        return array.get()
    return np.asarray(array)


def _erf(x):
    """``cupyx.scipy.special.erf``: float16 is computed, and returned, in float64."""
    import math

    values = _unwrap(x, "cupyx.scipy.special.erf")
    if values.dtype == np.float16:
        values = values.astype(np.float64)
    return FakeArray(np.vectorize(math.erf, otypes=[values.dtype])(values))


def _lib():
    lib = types.ModuleType("cupy.lib")
    lib.stride_tricks = types.ModuleType("cupy.lib.stride_tricks")
    lib.stride_tricks.as_strided = lambda x, shape=None, strides=None: FakeArray(
        np.lib.stride_tricks.as_strided(_unwrap(x, "as_strided"), shape, strides))
    return lib


def _random():
    generator = np.random.RandomState(0)  # a stream of its own, as CuPy's
    random = _Mirror("cupy.random", generator, frozenset(
        "normal rand randn random random_sample randint uniform permutation".split()))
    random.seed = generator.seed
    return random


def _cuda():
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, deviceSynchronize=lambda: None)
    return cuda


class _MemoryPool:
    """``cupy.get_default_memory_pool()``: the fake allocates nothing on a device."""

    def total_bytes(self):
        return 0

    def used_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


def build():
    """The fake modules, by name (not installed)."""
    cupy = _Mirror("cupy", np, FUNCTIONS, CONSTANTS)
    cupy.ndarray = FakeArray
    cupy.asarray = _asarray
    cupy.array = lambda value, dtype=None, copy=True: _asarray(
        value._a.copy() if isinstance(value, FakeArray) else value, dtype)
    cupy.asnumpy = _asnumpy
    cupy.lib = _lib()
    cupy.random = _random()
    cupy.cuda = _cuda()
    cupy.fuse = _fuse
    pool = _MemoryPool()
    cupy.get_default_memory_pool = lambda: pool
    cupy.get_array_module = lambda *arrays: cupy if any(
        isinstance(a, FakeArray) for a in arrays) else np
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
    cupyx.scipy.special.erf = _erf
    return {"cupy": cupy, "cupy.lib": cupy.lib, "cupy.lib.stride_tricks": cupy.lib.stride_tricks,
            "cupy.random": cupy.random, "cupy.cuda": cupy.cuda, "cupyx": cupyx,
            "cupyx.scipy": cupyx.scipy, "cupyx.scipy.special": cupyx.scipy.special}


def install():
    """Put the fake modules into ``sys.modules`` (before miniclip first imports CuPy)."""
    sys.modules.update(build())


if __name__ == "__main__":  # `python tests/fake_cupy.py script.py args...`: run with the fake
    install()
    import runpy

    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")

"""Array backends: one code path for NumPy (CPU) and CuPy (GPU).

Every op in miniclip is written once against an *array module* ``xp`` — ``numpy`` on
the CPU, ``cupy`` on a GPU — found from the arrays it is given::

    xp = get_array_module(x)
    y = xp.exp(x)

Devices are named by strings: ``"cpu"`` and ``"cuda"``. CuPy is imported only when a
``"cuda"`` array is first asked for, so ``import miniclip`` never touches a GPU API.

On machines without a GPU the tests install a fake ``cupy`` module (see
``tests/fake_cupy.py``) before miniclip first asks for it, so the real ``"cuda"`` device
code below -- the lazy import, ``owns``, the host<->device copies and the CuPy-only
branches -- runs in CI, on arrays that refuse implicit conversion to NumPy exactly as
CuPy's do.
"""
import functools
import warnings

import numpy as np

_DEVICES = {}  # name -> Device, filled by register_device


class Device:
    """A place arrays live: its name, its array module, and how to copy arrays in and out.

    ``to_device(np_array)`` copies a host array onto the device; ``to_host(array)``
    copies a device array back into a new ``numpy.ndarray``. Both go through ``xp``, the
    one place the module is loaded, so that ``owns`` knows the device's arrays as soon as
    the first one exists.
    """

    def __init__(self, name, load_module, array_type):
        self.name = name
        self._load_module = load_module
        self._array_type = array_type
        self._module = None

    def to_device(self, host_array):
        """A copy of a host (NumPy) array on this device."""
        return self.xp.asarray(host_array)

    def to_host(self, array):
        """A NumPy copy of one of this device's arrays (a device-to-host transfer)."""
        return self.xp.asnumpy(array)

    @property
    def xp(self):
        """The array module (loaded on first use, so CuPy is imported only when needed)."""
        if self._module is None:
            self._module = self._load_module()
        return self._module

    def owns(self, array):
        """True when ``array`` is an array of this device (never imports the device's module:
        an array of a module that was never loaded cannot exist)."""
        return self._module is not None and isinstance(array, self._array_type())

    def __repr__(self):
        return f"device(type='{self.name}')"


def register_device(device):
    """Make a device known by name (``"cpu"`` and ``"cuda"``)."""
    _DEVICES[device.name] = device
    return device


def _load_cupy():
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed. Install the build for your "
            "CUDA version, e.g. `pip install cupy-cuda12x`, or use device='cpu'."
        ) from error
    return cupy


def _cupy_ndarray():
    import cupy

    return cupy.ndarray


class _HostDevice(Device):
    """The CPU: NumPy arrays, and copies "to" and "from" it are plain copies."""

    def to_device(self, host_array):
        return np.array(host_array)

    def to_host(self, array):
        return np.array(array)


CPU = register_device(_HostDevice("cpu", lambda: np, lambda: np.ndarray))
CUDA = register_device(Device("cuda", _load_cupy, _cupy_ndarray))
CPU._module = np  # numpy is always loaded

# type(array) -> Device, filled as arrays are met: looking a type up is much cheaper than
# asking every device, and device_of runs for every op.
_DEVICE_OF_TYPE = {np.ndarray: CPU}


def get_device(name_or_device):
    """Look up a device by name (``"cpu"``, ``"cuda"``, ``"cuda:0"``) or pass a Device through."""
    if isinstance(name_or_device, Device):
        return name_or_device
    name = str(name_or_device).split(":")[0]
    if name not in _DEVICES:
        raise ValueError(f"unknown device {name_or_device!r}; known devices: {sorted(_DEVICES)}")
    return _DEVICES[name]


def is_dtype(value):
    """True for dtypes (np.float16, "float32"), False for devices ("cpu", "cuda:0"): what
    ``.to(x)`` of a tensor or a module is asked for."""
    if isinstance(value, Device):
        return False
    if isinstance(value, str) and value.split(":")[0] in _DEVICES:
        return False
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def device_of(array):
    """The Device an array lives on. NumPy scalars count as CPU arrays."""
    device = _DEVICE_OF_TYPE.get(type(array))
    if device is not None:
        return device
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    for device in _DEVICES.values():
        if device.owns(array):
            _DEVICE_OF_TYPE[type(array)] = device
            return device
    raise TypeError(f"expected an array of a known device, got {type(array).__name__}")


def get_array_module(array):
    """The array module of ``array``'s device: ``numpy`` or ``cupy`` (the ``xp`` of every op)."""
    return device_of(array).xp


def to_numpy(array):
    """A NumPy copy of any device's array (an explicit device-to-host transfer)."""
    return device_of(array).to_host(array)


def move(array, device):
    """Copy ``array`` onto ``device`` (a no-op when it is already there)."""
    target, source = get_device(device), device_of(array)
    if target is source:
        return array
    host = source.to_host(array)
    return target.to_device(host)


def synchronize(device="cuda"):
    """Wait until ``device`` has finished all the work queued on it (nothing to wait for on
    the CPU). GPU calls return as soon as their kernels are queued, so time GPU code as
    ``synchronize(); start = time.perf_counter(); ...; synchronize()``."""
    device = get_device(device)
    if device is not CPU:
        device.xp.cuda.runtime.deviceSynchronize()


def finite_flags(arrays):
    """A NumPy bool array: for each array (of any one device), whether all its values are finite.

    Every array is tested on its device and the verdicts come back in one transfer, so a
    check of all parameters costs one synchronisation with a GPU, not one per parameter.
    """
    arrays = list(arrays)
    if not arrays:
        return np.ones(0, dtype=bool)
    xp = get_array_module(arrays[0])
    return to_numpy(xp.stack([xp.isfinite(a).all() for a in arrays]))


def all_finite(arrays):
    """Whether every value of every array is finite, as a 0-d bool array on their device.

    Nothing is copied to the host, so a training step can fold this verdict into the one
    transfer it makes anyway (the loss). The test is a sum: an inf or NaN anywhere makes the
    sum of all values inf or NaN (inf - inf is NaN). The converse can fail -- finite values
    whose sum overflows -- so a False here is confirmed with ``finite_flags`` before anyone
    is told about it.
    """
    arrays = list(arrays)
    if not arrays:
        return CPU.xp.asarray(True)
    xp = get_array_module(arrays[0])
    sums = [a.sum(dtype=accumulation_dtype(a.dtype)) for a in arrays]   # P device scalars
    return xp.isfinite(xp.stack(sums).sum())


def flatten(arrays):
    """One 1-D array holding ``arrays`` (one device and dtype) one after the other: a new
    array, or for a single contiguous array a view of it (writing into it writes into it).

    An update written on this flat array is a handful of large array operations, whatever
    the number of parameters: on a GPU that is a handful of kernel launches instead of a
    handful per parameter (what PyTorch's "foreach" and "multi-tensor" optimisers do).
    """
    if len(arrays) == 1:
        return arrays[0].reshape(-1)
    xp = get_array_module(arrays[0])
    return xp.concatenate([a.reshape(-1) for a in arrays])


def unflatten(flat, like):
    """Views of ``flat`` with the shapes of ``like``: the inverse of ``flatten`` (no copy)."""
    views, start = [], 0
    for array in like:
        views.append(flat[start:start + array.size].reshape(array.shape))
        start += array.size
    return views


def fuse(function):
    """Run an elementwise function as one GPU kernel on CuPy, as plain array code elsewhere.

    ``function(xp, *args)`` is written once, on the array module ``xp`` it is given. Each
    ``xp`` operation on a GPU is a kernel that reads its inputs from memory and writes a
    new array back: ``x * (0.5 * (xp.tanh(0.851 * x) + 1.0))`` is five kernels and four
    temporaries. On CuPy the decorated function is compiled by ``cupy.fuse`` into a single
    kernel that reads ``x`` once and writes only the results; on NumPy it is called as it
    is, so the CPU computes exactly what it computed before.

    The body must be what ``cupy.fuse`` can compile: arithmetic, comparisons, ``xp``'s
    elementwise functions (``exp``, ``tanh``, ``sqrt``, ``where``, ``maximum``...),
    ``astype``, in-place updates of the arguments (``m += ...``) and Python numbers; no
    reshaping, indexing or ``backend`` calls (while CuPy traces the function its
    arguments are stand-ins, not arrays: that is why ``xp`` is passed in). It may return
    one array or a tuple. The tests' fake CuPy enforces the same rules.

    If CuPy cannot compile a function, a warning names it and the plain array code runs
    instead: slower, never wrong.
    """
    kernels = {}  # array module -> its compiled kernel, or None when compiling failed

    @functools.wraps(function)
    def call(*args):
        xp = get_array_module(args[0])
        if xp.__name__ != "cupy" or kernels.get(xp, True) is None:
            return function(xp, *args)
        if xp not in kernels:
            def kernel(*arguments):
                return function(xp, *arguments)
            kernel.__name__ = function.__name__
            kernels[xp] = xp.fuse(kernel_name=function.__name__)(kernel)
        try:
            return kernels[xp](*args)
        except Exception as error:  # noqa: BLE001  (any compile failure: fall back, loudly)
            kernels[xp] = None
            warnings.warn(f"cupy.fuse could not compile {function.__qualname__} ({error!r}); "
                          "running it as separate array operations instead", RuntimeWarning,
                          stacklevel=2)
            return function(xp, *args)
    return call


def accumulation_dtype(dtype):
    """The dtype in which to compute sums and statistics of arrays of ``dtype``.

    float16 has an 11-bit mantissa and overflows above 65504, so a mean or a sum of
    squares over a few thousand float16 values loses digits or becomes ``inf``.
    Normalisations, softmax and losses therefore compute in float32 for float16 inputs
    (as CLIP's LayerNorm and PyTorch's GPU kernels do) and cast the result back.
    Every other dtype is kept.
    """
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)

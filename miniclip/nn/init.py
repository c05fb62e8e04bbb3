"""Weight initialisation: fill a Parameter in place with random or constant values.

Random numbers come from NumPy's global generator (``np.random``) on the host, in
float64, and are then cast to the tensor's dtype and copied to its device. So
``manual_seed(0)`` (or ``np.random.seed(0)``) followed by building a model gives the same
weights on every run and on every device. (They are not PyTorch's numbers: the two
libraries have different generators.)

Each function returns the tensor it filled, like ``torch.nn.init``.
"""
import contextlib
import math
import sys

import numpy as np

from .module import Parameter

_skipping_random_init = False


@contextlib.contextmanager
def skip_random_init():
    """Build modules without drawing random weights (they stay zero).

    For when every weight is about to be overwritten from a checkpoint, as in
    ``build_model``: drawing ViT-L/14's 428M random numbers only to throw them away
    would take longer than reading the file. Constant initialisers (``ones_``,
    ``zeros_``) still run, so a skipped module is still well-formed.
    """
    global _skipping_random_init
    previous, _skipping_random_init = _skipping_random_init, True
    try:
        yield
    finally:
        _skipping_random_init = previous


def manual_seed(seed):
    """Seed the global NumPy generator that every miniclip initialiser draws from.

    If CuPy is already in use its generator is seeded too, so anything drawn on the GPU
    (e.g. dropout masks) repeats as well.
    """
    np.random.seed(seed)
    cupy = sys.modules.get("cupy")  # only if imported already: seeding must not load CuPy
    if cupy is not None:
        cupy.random.seed(seed)


def empty(*shape):
    """A new float32 Parameter of ``shape`` (zeros), for an initialiser to fill."""
    return Parameter(np.zeros(shape, dtype=np.float32))


def _fill(tensor, host_values):
    """Write host values into the tensor's own array (same object, same dtype and device)."""
    values = np.asarray(host_values, dtype=tensor.dtype)
    tensor.data[...] = tensor.device.to_device(values)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples of the uniform distribution U(a, b)."""
    if _skipping_random_init:
        return tensor
    return _fill(tensor, np.random.uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples of the normal distribution N(mean, std^2)."""
    if _skipping_random_init:
        return tensor
    return _fill(tensor, np.random.normal(mean, std, size=tensor.shape))


def constant_(tensor, value):
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def fan_in_and_fan_out(shape):
    """How many inputs feed one output unit (fan-in) and how many outputs one input
    feeds (fan-out), for a weight of ``shape``.

    A linear weight is ``[out, in]``: fan-in ``in``, fan-out ``out``. A convolution weight
    ``[out, in, kh, kw]`` multiplies each output by ``in * kh * kw`` inputs, so both fans
    are multiplied by the kernel area.
    """
    if len(shape) < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, "
                         f"got shape {tuple(shape)}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def xavier_uniform_(tensor, gain=1.0):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    The variance of U(-a, a) is a^2 / 3 = 2 / (fan_in + fan_out): a compromise between
    keeping activations' variance constant going forward (needs 1 / fan_in) and keeping
    gradients' variance constant going backward (needs 1 / fan_out).
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def default_uniform_(tensor, fan_in):
    """PyTorch's default for Linear and Conv2d weights and biases: U(±1/sqrt(fan_in)).

    (PyTorch writes this as ``kaiming_uniform_(w, a=sqrt(5))``, whose bound
    sqrt(6 / ((1 + a^2) fan_in)) simplifies to 1 / sqrt(fan_in).) The variance
    1 / (3 fan_in) keeps a layer's outputs at about a third of its inputs' variance.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return uniform_(tensor, -bound, bound)

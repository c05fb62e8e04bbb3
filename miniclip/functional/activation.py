"""Activations (relu, gelu, quick_gelu, sigmoid, log_sigmoid, tanh) and softmax / log_softmax.

Elementwise activations have a diagonal Jacobian, so each backward is
``dL/dx = gy * f'(x)``; the derivations below only work out ``f'``. Where ``f'`` can be
written through the output ``y`` (sigmoid, tanh, softmax) the forward saves ``y`` instead
of ``x``, which is all the backward needs.
"""
import math

from .. import backend
from ..autograd import Function
from .special import erf
from .support import stable_log_softmax, wrap_dim


class ReLU(Function):
    """y = max(x, 0);  f'(x) = 1 for x > 0, else 0 (0 at the kink x = 0, as in PyTorch)."""

    def forward(self, x):
        self.positive = x > 0
        return backend.get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        return gy * self.positive


class GELU(Function):
    """The exact Gaussian Error Linear Unit: y = x Phi(x), Phi the standard normal CDF.

    Phi(x) = (1 + erf(x / sqrt 2)) / 2 and Phi'(x) = phi(x) = exp(-x^2 / 2) / sqrt(2 pi),
    so by the product rule  f'(x) = Phi(x) + x phi(x).
    """

    def forward(self, x):
        self.x = x
        self.cdf = 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
        return x * self.cdf

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        pdf = xp.exp(-0.5 * self.x * self.x) * (1.0 / math.sqrt(2.0 * math.pi))
        return gy * (self.cdf + self.x * pdf)


def _sigmoid(x):
    """1 / (1 + e^-x) written as (1 + tanh(x/2)) / 2: equal, and never overflows."""
    return 0.5 * (backend.get_array_module(x).tanh(0.5 * x) + 1.0)


QUICK_GELU_ALPHA = 1.702


@backend.fuse
def _quick_gelu_forward(xp, x):
    """y = x s(a x) and s(a x), in one GPU kernel (``backend.fuse``; s as in ``_sigmoid``)."""
    s = 0.5 * (xp.tanh((0.5 * QUICK_GELU_ALPHA) * x) + 1.0)
    return x * s, s


@backend.fuse
def _quick_gelu_backward(xp, gy, x, s):
    """dL/dx = gy (s + a x s (1 - s)), in one GPU kernel."""
    return gy * (s + QUICK_GELU_ALPHA * x * s * (1.0 - s))


class QuickGELU(Function):
    """CLIP's cheap GELU approximation: y = x s(a x) with a = 1.702, s the sigmoid.

    s'(z) = s(z)(1 - s(z)), so by the product and chain rules
    f'(x) = s(a x) + a x s(a x)(1 - s(a x)).

    CLIP runs it on the largest activations of every transformer block, so its forward and
    backward are each one fused kernel on a GPU (``backend.fuse``; the same array code on
    the CPU).
    """

    ALPHA = QUICK_GELU_ALPHA

    def forward(self, x):
        self.x = x
        y, self.s = _quick_gelu_forward(x)
        return y

    def backward(self, gy):
        return _quick_gelu_backward(gy, self.x, self.s)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  f'(x) = e^-x / (1 + e^-x)^2 = y (1 - y)."""

    def forward(self, x):
        self.y = _sigmoid(x)
        return self.y

    def backward(self, gy):
        return gy * self.y * (1.0 - self.y)


class LogSigmoid(Function):
    """y = log s(x) = -log(1 + e^-x), the log-probability of a binary "yes" (SigLIP's loss
    and the bag-of-words prediction loss, ``training/siglip.py``, are sums of it).

    Computed as min(x, 0) - log(1 + e^-|x|): for x >= 0 that is the definition, and for
    x < 0 it is x - log(1 + e^x), the same value (log(1 + e^-x) = -x + log(e^x + 1)), so
    no exponent is positive and nothing overflows where log(sigmoid(x)) would give
    log(0) = -inf from x = -750 on (float64), -104 (float32).

    f'(x) = s'(x) / s(x) = s(x)(1 - s(x)) / s(x) = 1 - s(x) = s(-x), saved from the
    forward in the accumulation dtype (float32 for float16 inputs, as softmax does).
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        self.slope = _sigmoid(-x32)
        y = xp.minimum(x32, 0.0) - xp.log1p(xp.exp(-xp.abs(x32)))
        return y.astype(x.dtype)

    def backward(self, gy):
        return gy.astype(self.slope.dtype, copy=False) * self.slope


class Tanh(Function):
    """y = tanh x;  f'(x) = 1 / cosh^2 x = 1 - tanh^2 x = 1 - y^2."""

    def forward(self, x):
        self.y = backend.get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1.0 - self.y * self.y)


@backend.fuse
def _exp_shifted(xp, x, shift):
    """e^(x - shift), in one GPU kernel."""
    return xp.exp(x - shift)


@backend.fuse
def _softmax_grad(xp, y, gy, gy_dot_y):
    """y (gy - sum_i gy_i y_i), in one GPU kernel."""
    return y * (gy - gy_dot_y)


class Softmax(Function):
    """y_i = e^{x_i} / sum_j e^{x_j} along one axis.

    Computed as e^{x_i - m} / sum_j e^{x_j - m} with m = max_j x_j: the same value (the
    factor e^{-m} cancels), and no exponent is positive, so nothing overflows.

    The Jacobian is dy_i/dx_k = y_i (delta_ik - y_k), so
    dL/dx_k = sum_i gy_i y_i (delta_ik - y_k) = y_k (gy_k - sum_i gy_i y_i):
    an elementwise product and one reduction, never the full Jacobian.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        e = _exp_shifted(x32, x32.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y.astype(x.dtype)

    def backward(self, gy):
        # BEGIN SOLUTION assignment linear_softmax, 1c: Softmax.backward
        y = self.y  # kept in the accumulation dtype (float32 for float16 inputs)
        gy = gy.astype(y.dtype, copy=False)
        return _softmax_grad(y, gy, (gy * y).sum(axis=self.axis, keepdims=True))
        # END SOLUTION


class LogSoftmax(Function):
    """y_i = x_i - log sum_j e^{x_j} along one axis.

    dy_i/dx_k = delta_ik - softmax_k, so
    dL/dx_k = sum_i gy_i (delta_ik - softmax_k) = gy_k - softmax_k sum_i gy_i,
    with softmax = e^y recovered from the output.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.y = stable_log_softmax(x, self.axis)
        return self.y.astype(x.dtype)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gy = gy.astype(self.y.dtype, copy=False)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def relu(input):
    return ReLU()(input)


def gelu(input):
    """The exact (erf) GELU, PyTorch's default ``approximate='none'``."""
    return GELU()(input)


def quick_gelu(input):
    """x * sigmoid(1.702 x), the activation of OpenAI's CLIP transformers."""
    return QuickGELU()(input)


def sigmoid(input):
    return Sigmoid()(input)


def log_sigmoid(input):
    """log(sigmoid(input)), computed stably (finite for any finite input)."""
    return LogSigmoid()(input)


def tanh(input):
    return Tanh()(input)


def softmax(input, dim):
    """Softmax along ``dim``: non-negative values that sum to 1 along that axis."""
    return Softmax(wrap_dim(dim, input.ndim, "softmax"))(input)


def log_softmax(input, dim):
    """log(softmax(input, dim)), computed stably (never as the log of a rounded softmax)."""
    return LogSoftmax(wrap_dim(dim, input.ndim, "log_softmax"))(input)

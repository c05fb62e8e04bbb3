"""Elementwise arithmetic, matrix products and dtype/device moves.

Notation in the derivations: ``L`` is the scalar loss, ``gy = dL/dy`` is the gradient
arriving at an op's output ``y``; backward returns ``dL/dx = gy * dy/dx`` for each input.
Broadcasting is undone by the engine (``autograd.sum_to``), so these backwards return
gradients in the broadcast shape.
"""
from .. import backend
from ..autograd import Function, Tensor


class Add(Function):
    """y = a + b;  dy/da = dy/db = 1, so both inputs receive gy unchanged."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    """y = a - b;  dL/da = gy,  dL/db = -gy."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, -gy


class Mul(Function):
    """y = a * b;  dL/da = gy * b,  dL/db = gy * a (each factor's gradient is the other)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        return gy * self.b, gy * self.a


class Div(Function):
    """y = a / b;  dL/da = gy / b,  dL/db = -gy * a / b^2 = -gy * y / b."""

    def forward(self, a, b):
        self.b = b
        self.y = a / b
        return self.y

    def backward(self, gy):
        ga = gy / self.b
        return ga, -ga * self.y


class Neg(Function):
    """y = -x;  dL/dx = -gy."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = a ** b.

    dL/da = gy * b * a^(b-1);  dL/db = gy * y * ln(a)  (only defined for a > 0; where
    a <= 0 the exponent's gradient is taken as 0, as PyTorch does for a == 0).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        ga = gy * self.b * self.a ** (self.b - 1)
        positive = self.a > 0
        gb = gy * self.y * xp.log(xp.where(positive, self.a, 1))
        return ga, xp.where(positive, gb, 0)


class Exp(Function):
    """y = e^x;  dy/dx = e^x = y, so dL/dx = gy * y (reusing the forward's output)."""

    def forward(self, x):
        self.y = backend.get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = ln x;  dL/dx = gy / x."""

    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)."""

    def forward(self, x):
        self.y = backend.get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """y = |x|;  dL/dx = gy * sign(x) (0 at x = 0, the subgradient PyTorch uses)."""

    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * backend.get_array_module(gy).sign(self.x)


class MatMul(Function):
    """Y = A @ B with batching and broadcasting over leading axes, like ``numpy.matmul``.

    For 2-D operands Y[i,j] = sum_k A[i,k] B[k,j], so
    dL/dA[i,k] = sum_j gY[i,j] B[k,j]  ->  dL/dA = gY @ B^T, and likewise dL/dB = A^T @ gY.
    Batched operands do the same per batch (broadcast batch axes are summed by the
    engine). 1-D operands are treated as a row (A) or a column (B) vector and the
    added axis is removed again.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a                    # [.., M, K]
        b2 = b[:, None] if b.ndim == 1 else b                    # [.., K, N]
        g2 = gy
        if b.ndim == 1:  # the N axis first: for vector @ vector gy is 0-d
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]                                # [.., M, N]
        ga = g2 @ b2.swapaxes(-1, -2)                            # [.., M, K]
        gb = a2.swapaxes(-1, -2) @ g2                            # [.., K, N]
        if a.ndim == 1:
            ga = ga[..., 0, :]
        if b.ndim == 1:
            gb = gb[..., 0]
        return ga, gb


class Clamp(Function):
    """y = min(max(x, lo), hi);  gy passes where x is inside [lo, hi], else 0."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            self.inside &= x >= self.lo
        if self.hi is not None:
            self.inside &= x <= self.hi
        return xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        return gy * self.inside


class Where(Function):
    """y = cond ? a : b;  dL/da = gy where cond, dL/db = gy where not cond."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        return backend.get_array_module(a).where(self.condition, a, b)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        zero = xp.zeros((), gy.dtype)
        return xp.where(self.condition, gy, zero), xp.where(self.condition, zero, gy)


class AsType(Function):
    """y = x converted to another dtype; the gradient is converted back (by the engine)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy


class ToDevice(Function):
    """y = x copied to another device; the gradient is copied back to x's device."""

    def __init__(self, device):
        self.device = backend.get_device(device)

    def forward(self, x):
        self.source = backend.device_of(x)
        return backend.move(x, self.device)

    def backward(self, gy):
        return backend.move(gy, self.source)


def add(a, b):
    return Add()(a, b)


def sub(a, b):
    return Sub()(a, b)


def mul(a, b):
    return Mul()(a, b)


def div(a, b):
    return Div()(a, b)


def neg(x):
    return Neg()(x)


def pow(a, b):
    """``a ** b`` elementwise; either may be a tensor or a number."""
    return Pow()(a, b)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def matmul(a, b):
    """Matrix product with NumPy's batching and broadcasting rules (``a @ b``)."""
    _check_matmul_shapes(a, b)
    return MatMul()(a, b)


def _check_matmul_shapes(a, b):
    """Errors that name the op and both shapes (NumPy's would name neither)."""
    a_shape, b_shape = getattr(a, "shape", None), getattr(b, "shape", None)
    if a_shape is None or b_shape is None:
        return  # a Python number or list: NumPy's own check applies
    if not a_shape or not b_shape:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{tuple(a_shape)} and {tuple(b_shape)}")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} are not aligned "
                         f"(inner dimensions {k_a} != {k_b})")


def clamp(x, min=None, max=None):
    """Clip values into [min, max]; the gradient is zero where clipping took effect."""
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min and max")
    return Clamp(min, max)(x)


def where(condition, a, b):
    """``a`` where ``condition`` (a boolean tensor or array) holds, else ``b``."""
    condition = condition.data if isinstance(condition, Tensor) else condition
    return Where(condition)(a, b)


def masked_fill(x, mask, value):
    """``x`` with ``value`` written wherever ``mask`` is True (no gradient flows there)."""
    mask = mask.data if isinstance(mask, Tensor) else mask
    return Where(mask)(value, x)


def astype(x, dtype):
    return AsType(dtype)(x)


def to_device(x, device):
    return ToDevice(device)(x)

"""Reductions: sum, mean, max (and the non-differentiable argmax), L2 norm.

A reduction collapses axes, so its backward must *expand* the gradient back over them.
``keepdims`` in the backward restores the collapsed axes as size 1, after which
broadcasting spreads the gradient over every element that was reduced.
"""
import builtins

from .. import backend
from ..autograd import Function, Tensor


def _axes(dim, ndim):
    """Normalise ``dim`` (None, an int or a tuple, negatives allowed) to a tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    size = builtins.max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    for d in dims:
        if not -size <= d < size:
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(d % size for d in dims if ndim))


def _restore_axes(gy, axes, keepdim):
    """Re-insert the reduced axes as size 1 so ``gy`` broadcasts against the input."""
    if keepdim:
        return gy
    xp = backend.get_array_module(gy)
    return xp.expand_dims(gy, axes) if axes else gy


class Sum(Function):
    """y = sum of x over ``axes``; every summed element has dy/dx = 1, so each receives gy."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.input_shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        return xp.broadcast_to(_restore_axes(gy, self.axes, self.keepdim), self.input_shape)


class Mean(Function):
    """y = sum(x) / n over ``axes``; each element receives gy / n."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.input_shape = x.shape
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        return x.mean(axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = _restore_axes(gy, self.axes, self.keepdim) / self.count
        return xp.broadcast_to(g, self.input_shape)


class Max(Function):
    """y = max of x over ``axes``.

    dy/dx is 1 at the maximum and 0 elsewhere. When several elements tie for the
    maximum the gradient is shared equally among them (a valid subgradient; PyTorch's
    full reduction does the same), so gradient checks should avoid exact ties.
    """

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdim else self.y.squeeze(self.axes)

    def backward(self, gy):
        winners = (self.x == self.y).astype(gy.dtype)
        winners /= winners.sum(axis=self.axes, keepdims=True)
        return _restore_axes(gy, self.axes, self.keepdim) * winners


def sum(x, dim=None, keepdim=False):
    return Sum(_axes(dim, x.ndim), keepdim)(x)


def mean(x, dim=None, keepdim=False):
    return Mean(_axes(dim, x.ndim), keepdim)(x)


def max(x, dim=None, keepdim=False):
    """Largest value over ``dim`` (all axes when None). Unlike ``torch.max(x, dim)``, this
    returns only the values; use ``argmax`` for the indices."""
    if x.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    return Max(_axes(dim, x.ndim), keepdim)(x)


def argmax(x, dim=None):
    """Index of the largest value (the first one on ties), as a tensor of int64; no gradient."""
    data = x.data if isinstance(x, Tensor) else x
    return Tensor(data.argmax(axis=dim))


def norm(x, dim=None, keepdim=False):
    """Euclidean (L2) norm over ``dim``: sqrt(sum(x^2)), built from differentiable ops.

    At x = 0 its gradient is 0/0 = NaN (sqrt'(0) is infinite); to make unit vectors use
    ``normalize``, whose fused backward is finite there.
    """
    return (x * x).sum(dim, keepdim).sqrt()

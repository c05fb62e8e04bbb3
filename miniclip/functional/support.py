"""What several ops share, on raw arrays: checking their arguments and the stable log-softmax.

* ``wrap_dim``             a ``dim`` argument (negative from the end) as an axis index
* ``integer_indices``      index arguments as an integer array on the right device
* ``check_index_range``    every index within [0, size)
* ``stable_log_softmax``   log-softmax that never overflows (softmax, log_softmax and
                           cross_entropy all build on it)
"""
import numpy as np

from .. import backend
from ..autograd import Tensor


def wrap_dim(dim, ndim, op):
    """``dim`` as an axis in [0, ndim), counting negative dims from the end as PyTorch does;
    an ``IndexError`` naming ``op`` when it is out of range."""
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % max(ndim, 1)


def integer_indices(indices, like, op, what):
    """``indices`` (a Tensor, a device array, a list or a NumPy array) as an integer array on
    the device of the tensor ``like``. Host data is copied over explicitly; a Tensor on another
    device is an error, as for every op."""
    if isinstance(indices, Tensor):
        if indices.device is not like.device:
            raise RuntimeError(f"{op}: {what} are on device {indices.device.name} but the "
                               f"tensor they index is on {like.device.name}; move them with .to()")
        indices = indices.data
    else:
        try:
            source = backend.device_of(indices)
        except TypeError:  # a list or a Python int: host data
            indices, source = np.asarray(indices), backend.CPU
        indices = backend.move(indices, like.device) if source is backend.CPU else indices
        if backend.device_of(indices) is not like.device:
            raise RuntimeError(f"{op}: {what} are on device {source.name} but the tensor they "
                               f"index is on {like.device.name}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be integers, got dtype {indices.dtype}")
    return indices


def check_index_range(indices, size, op, what):
    """Raise ``IndexError`` unless every index lies in [0, size)."""
    if indices.size == 0:
        return
    xp = backend.get_array_module(indices)
    low, high = backend.to_numpy(xp.stack([indices.min(), indices.max()])).tolist()  # one read
    if low < 0 or high >= size:
        raise IndexError(f"{op}: {what} must lie in [0, {size}), got values from {low} to {high}")


def stable_log_softmax(x, axis):
    """log softmax(x) = x - m - log(sum(exp(x - m))) with m = max(x) along ``axis``.

    Subtracting the maximum changes nothing mathematically (it cancels between numerator
    and denominator) but keeps every exponent <= 0, so exp never overflows, even for
    logits of 1e4 (float32) or 20 (float16, computed in float32 here).
    """
    xp = backend.get_array_module(x)
    x = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

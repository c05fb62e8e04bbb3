"""Flat buckets: many parameters' arrays laid end to end in a few large flat arrays.

A sweep over every gradient or weight (an optimiser update, a norm, unscaling, a check
for inf, an all-reduce or a broadcast between processes) is then a few large array
operations or messages instead of a few per parameter. The optimisers, the loss scaler
(``amp.py``) and data parallelism (``miniclip/distributed/``) all bucket the same way.
"""
from .. import backend

#: The most elements laid end to end in one flat array (2 MB of float32). A GPU then runs
#: a few kernels per bucket instead of a few per parameter; a CPU keeps a bucket in its
#: cache through all the passes of an update (one flat array for a whole model was slower
#: on a CPU than updating parameter by parameter: each pass went out to main memory).
BUCKET_ELEMENTS = 1 << 19


def buckets(params, key, array_of):
    """``params`` split into lists that share ``key(p)`` and hold at most
    ``BUCKET_ELEMENTS`` elements of ``array_of(p)`` (a larger array is a bucket alone)."""
    by_key = {}
    for p in params:
        by_key.setdefault(key(p), []).append(p)
    for members in by_key.values():
        bucket, size = [], 0
        for p in members:
            n = array_of(p).size
            if bucket and size + n > BUCKET_ELEMENTS:
                yield bucket
                bucket, size = [], 0
            bucket.append(p)
            size += n
        if bucket:
            yield bucket


def flat_grads(params):
    """The gradients of ``params`` as flat arrays, by dtype and ``buckets``:
    ``[(params, flat), ...]``. A sweep over all gradients (a norm, a rescaling, a check
    for inf) is then a few large array operations (see the module docstring)."""
    return [(bucket, backend.flatten([p.grad for p in bucket]))
            for bucket in buckets(params, lambda p: p.grad.dtype, lambda p: p.grad)]


def set_flat_grads(params, flat):
    """Make each parameter's ``.grad`` its view of ``flat`` (laid out as ``flat_grads``)."""
    for p, grad in zip(params, backend.unflatten(flat, [p.grad for p in params])):
        p.grad = grad

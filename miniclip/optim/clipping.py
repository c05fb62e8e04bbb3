"""Gradient-norm clipping over all parameters at once, in flat buckets (``buckets.py``)."""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from .buckets import flat_grads, set_flat_grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale all gradients by one factor so that their global norm is at most ``max_norm``.

    The global norm treats every gradient of every parameter as one long vector:
    ``‖g‖ = sqrt(Σ_p ‖g_p‖²)`` (``norm_type=inf``: the largest absolute entry). When it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (‖g‖ + 1e-6)``, so
    the update keeps its direction and only its length is capped. As in
    ``torch.nn.utils.clip_grad_norm_``, the factor is min(1, that ratio) and is applied
    even when it is 1.

    Returns the norm *before* clipping as a 0-d ``Tensor`` on the gradients' device, as
    PyTorch does (``float(norm)`` to log it: spikes in the gradient norm are the first sign
    of an unstable run). It is not read here, because reading a GPU value makes the host
    wait for the GPU; read it only when you log it. A non-finite norm (an inf or NaN
    gradient) turns every gradient non-finite; in mixed precision the loss scaler
    detects that and skips the step.
    """
    params = [parameters] if hasattr(parameters, "data") else list(parameters)
    params = [p for p in params if p.grad is not None]
    if not params:
        return Tensor(0.0)
    if norm_type not in (2.0, math.inf):
        raise ValueError(f"clip_grad_norm_: norm_type must be 2.0 or inf, got {norm_type}")
    flats = flat_grads(params)
    xp = backend.get_array_module(flats[0][1])
    # the norm in the widest accumulation dtype of the gradients (float32 for float16 ones)
    dtype = np.result_type(*[backend.accumulation_dtype(g.dtype) for _, g in flats])
    if norm_type == math.inf:
        total = xp.stack([xp.abs(g).max().astype(dtype) for _, g in flats]).max()
    else:
        total = xp.sqrt(xp.stack([(g.astype(dtype, copy=False) ** 2).sum() for _, g in flats]
                                 ).sum())
    factor = xp.minimum(max_norm / (total + 1e-6), 1.0)  # a device scalar: no host sync
    for bucket, grad in flats:
        # a new array, not `*=`: the engine may hand one gradient array to several
        # tensors (``a + b`` passes the same gy to both), or a read-only broadcast view
        set_flat_grads(bucket, grad * factor.astype(grad.dtype))
    return Tensor(total)

"""Mixed-precision training: float16 arithmetic, float32 weights, dynamic loss scaling.

float16 numbers take half the memory of float32 and a GPU multiplies them several times
faster (tensor cores). Training *only* in float16 fails, though, for three reasons, and
each has its remedy here:

1. **Updates vanish.** float16 has 11 significant bits: adding an update of 1e-4 to a
   weight of 1.0 changes nothing. So the weights the optimiser updates — the *master*
   weights — stay float32; the forward pass uses float16 copies made from them.
2. **Sums and exponentials overflow or lose digits.** The numerically sensitive parts
   run in float32: softmax, log-softmax and the layer-norm statistics upcast float16
   inputs internally (``backend.accumulation_dtype``); normalisation layers and the
   temperature ``logit_scale`` keep float32 parameters; the loss is computed in float32.
3. **Small gradients underflow.** float16 has no numbers below 6e-8, and many gradients
   are smaller. So the loss is multiplied by a large *scale* S before ``backward()``,
   which multiplies every gradient by S and lifts them into float16's range; they are
   divided by S again, in float32, before the optimiser sees them. If S is too large
   some gradient overflows to inf: that step is skipped and S halved. After a run of
   good steps S is doubled, so it stays near the largest value that does not overflow
   (*dynamic loss scaling*, ``GradScaler``).

How the float16 copies are made (``float16_parameters``): for the duration of a forward
pass each float32 Parameter in the model is replaced by ``param.to(float16)``. That cast
is an op of the autograd graph whose backward casts the gradient back to float32, so
after ``backward()`` each master Parameter holds a float32 ``.grad`` — exactly what the
optimiser needs — and the model's own code is unchanged. (The copies are re-made every
step; a separate float16 model that is synced after each update would do the same work
with more bookkeeping.)

One step, in order (``mixed_precision_step`` does everything after the forward)::

    with float16_parameters(model):
        logits_per_image, logits_per_text = model(images.half(), texts)
    loss = clip_loss(logits_per_image, logits_per_text)      # float32
    scaler.scale(loss).backward()                            # gradients × S
    scaler.unscale_(optimizer)                               # ÷ S; found an inf/NaN?
    clip_grad_norm_(params, max_norm)                        # on the true gradients
    scaler.step(optimizer)                                   # skipped if found
    scaler.update()                                          # halve S, or grow it
    optimizer.zero_grad()

On NumPy this is correct but slow (CPUs have no fast float16 matrix product; NumPy
converts every element); on CuPy it is where the speed comes from.
"""
import contextlib

import numpy as np

from .. import backend
from ..nn.layers import BatchNorm2d, LayerNorm
from .buckets import flat_grads, set_flat_grads
from .clipping import clip_grad_norm_

# Parameters left in float32 by ``float16_parameters``: those of normalisation layers
# (their statistics are computed in float32 anyway) and the learned temperature, whose
# gradient sums over every entry of the n x n logit matrix.
FLOAT32_MODULES = (LayerNorm, BatchNorm2d)
FLOAT32_PARAMETERS = ("logit_scale",)


def keeps_float32(module, name):
    """The default rule: does parameter ``name`` of ``module`` stay float32 in the forward?"""
    return isinstance(module, FLOAT32_MODULES) or name in FLOAT32_PARAMETERS


@contextlib.contextmanager
def float16_parameters(model, dtype=np.float16, keep_float32=keeps_float32, enabled=True):
    """Inside this block the model's floating parameters appear as float16 copies
    (unless ``enabled`` is false: then it changes nothing, as a disabled ``GradScaler``).

    Each Parameter ``p`` for which ``keep_float32(module, name)`` is false is swapped,
    in its module, for ``p.to(dtype)`` — a differentiable cast — and swapped back on
    leaving the block. Everything computed inside therefore uses float16 weights, while
    the gradients flow back through the casts into the float32 ``p.grad``. A parameter
    shared by several modules is cast once, so its gradient is still summed over all
    its uses. Inputs are not touched: pass float16 images (``images.half()``); integer
    token ids need no cast.
    """
    casts, swapped = {}, []
    for _, module in model.named_modules() if enabled else ():
        for name, param in module._parameters.items():
            if param is None or param.dtype.kind != "f" or keep_float32(module, name):
                continue
            if id(param) not in casts:
                casts[id(param)] = param.to(dtype)
            swapped.append((module, name, param))
            module._parameters[name] = casts[id(param)]
    try:
        yield
    finally:
        for module, name, param in swapped:
            module._parameters[name] = param


class GradScaler:
    """Dynamic loss scaling (see the module docstring, point 3), like ``torch.amp.GradScaler``.

    * ``scale(loss)`` returns ``loss × S``; call ``backward()`` on that.
    * ``unscale_(optimizer)`` divides every gradient by S (in float32) and records whether
      any of them is inf or NaN. Call it before clipping, so that the clipping threshold
      applies to the true gradients; ``step`` calls it if you did not.
    * ``step(optimizer)`` calls ``optimizer.step()`` unless a non-finite gradient was
      found; a skipped step leaves weights and optimiser moments untouched. Returns
      whether the step was taken.
    * ``update()`` adjusts S: ×``backoff_factor`` (½) after a skipped step, ×
      ``growth_factor`` (2) after ``growth_interval`` good steps in a row.

    S starts high (2¹⁶ = 65536): a few steps are skipped while it falls to a workable
    value, which is cheaper than losing small gradients for the whole run.
    """

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not (growth_factor > 1 and 0 < backoff_factor < 1 and growth_interval >= 1):
            raise ValueError("GradScaler: need growth_factor > 1, 0 < backoff_factor < 1 and "
                             "growth_interval >= 1")
        self.enabled = enabled
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self._scale = float(init_scale)
        self._good_steps = 0            # finite steps since S last changed
        self._found_inf = None          # None: this step's gradients are not unscaled yet

    def get_scale(self):
        """The current loss scale S (1.0 when disabled)."""
        return self._scale if self.enabled else 1.0

    def scale(self, loss):
        """``loss × S``, to call ``backward()`` on."""
        return loss * self._scale if self.enabled else loss

    def unscale_(self, optimizer):
        """Divide every gradient by S, once per step, and note whether any is non-finite."""
        if not self.enabled or self._found_inf is not None:
            return
        inverse = 1.0 / self._scale
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        unscaled = []
        for bucket, grad in flat_grads(params):
            # a new array: gradient arrays may be shared or read-only views
            unscaled.append(grad * inverse)
            set_flat_grads(bucket, unscaled[-1])
        # one device-to-host transfer for all parameters, not one per parameter
        self._found_inf = not backend.finite_flags(unscaled).all()

    def step(self, optimizer):
        """``optimizer.step()`` unless the (unscaled) gradients hold inf or NaN."""
        if not self.enabled:
            optimizer.step()
            return True
        self.unscale_(optimizer)
        if self._found_inf:
            return False
        optimizer.step()
        return True

    def update(self):
        """Shrink S after an overflow, grow it after ``growth_interval`` clean steps."""
        if not self.enabled:
            return
        if self._found_inf is None:
            raise RuntimeError("GradScaler.update() called before unscale_() or step() "
                               "for this step")
        if self._found_inf:
            self._scale *= self.backoff_factor
            self._good_steps = 0
        else:
            self._good_steps += 1
            if self._good_steps == self.growth_interval:
                self._scale *= self.growth_factor
                self._good_steps = 0
        self._found_inf = None

    def state_dict(self):
        """Scale and growth progress, to resume a run exactly."""
        return {"scale": self._scale, "good_steps": self._good_steps}

    def load_state_dict(self, state):
        self._scale, self._good_steps = float(state["scale"]), int(state["good_steps"])


def mixed_precision_step(loss, optimizer, scaler, max_grad_norm=None):
    """Everything after the forward pass of one mixed-precision step (module docstring).

    Back-propagates ``loss × S``, then ``scaled_update``. Returns ``(stepped, grad_norm)``;
    ``grad_norm`` is the norm of the unscaled gradients before clipping (None when not
    clipping, inf/NaN on an overflow).
    """
    scaler.scale(loss).backward()
    return scaled_update(optimizer, scaler, max_grad_norm)


def scaled_update(optimizer, scaler, max_grad_norm=None):
    """The update from gradients of ``loss × S``: unscale them, clip their global norm to
    ``max_grad_norm`` (if given), step unless a gradient overflowed, update S and clear
    the gradients. Returns ``(stepped, grad_norm)`` as ``mixed_precision_step``.

    The gradients may be changed between the backward pass and this, as long as they stay
    scaled: data parallelism averages them over the processes there
    (``miniclip/training/step.py``)."""
    scaler.unscale_(optimizer)
    grad_norm = None
    if max_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = clip_grad_norm_(params, max_grad_norm)
    stepped = scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
    return stepped, grad_norm

"""Optimisers, gradient clipping, the learning-rate schedule and mixed precision.

* ``optimizers.py`` ``AdamW``, Adam with decoupled weight decay (CLIP's), and ``SGD`` with
                    (Nesterov) momentum, for comparison
* ``clipping.py``   ``clip_grad_norm_``: rescale all gradients so that their global norm is
                    at most ``max_norm``
* ``schedules.py``  ``WarmupCosine``: linear warm-up, then cosine decay of the learning rate
* ``buckets.py``    parameters' arrays laid end to end in a few flat arrays, for the sweeps
                    over all of them (updates, norms, unscaling, all-reduce)
* ``amp.py``        mixed precision: float16 copies of the weights for the forward pass and
                    the dynamic loss scaler ``GradScaler``

The CLIP paper's choices (which parameters decay, β and ε per image tower) are a recipe,
not an optimiser: ``miniclip/training/recipe.py``. The one training step that puts these
together is ``miniclip/training/step.py``::

    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    clip_grad_norm_(model.parameters(), max_norm=1.0)   # optional
    schedule(step)                                      # set this step's learning rate
    scaler.step(optimizer)                              # optimizer.step() unless inf/NaN
    scaler.update()
    optimizer.zero_grad()
"""
from .amp import GradScaler, float16_parameters, mixed_precision_step, scaled_update
from .buckets import BUCKET_ELEMENTS, buckets, flat_grads, set_flat_grads
from .clipping import clip_grad_norm_
from .optimizers import SGD, AdamW, Optimizer
from .schedules import WarmupCosine

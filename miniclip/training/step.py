"""One training step, the one every caller takes: the program, data parallelism, the
notebooks and the tests.

In order::

    with float16_parameters(model, enabled=scaler.enabled):   # float16 copies under --amp
        loss = clip_loss(*model(images, tokens))               # [N, N] logits each way
    scaler.scale(loss).backward()       # gradients × S (S = 1 when the scaler is off)
    check_finite(model, step, loss)     # stop, naming the step, on an inf/NaN
    reduce_gradients(parameters)        # data parallelism: the mean over the ranks
    scaled_update(optimizer, scaler, max_grad_norm):
        scaler.unscale_(optimizer)      # ÷ S; an inf/NaN found here skips the step
        clip_grad_norm_(parameters, max_grad_norm)
        scaler.step(optimizer)          # optimizer.step() unless skipped
        scaler.update()                 # halve S after an overflow, grow it after a run
        optimizer.zero_grad()
    clamp_logit_scale_(model)           # the logit scale never exceeds 100

There is one precision path: float32 training is the same step with a disabled
``GradScaler`` (S = 1, nothing skipped, as nanoGPT runs PyTorch's), and ``--amp`` enables
it. The gradients are reduced over the ranks *before* the scaler unscales them, so every
rank unscales, clips and steps the same mean gradient, and an overflow on any rank is an
inf on every rank: they all skip the same steps and keep the same scale.
"""
import numpy as np

from ..autograd import Tensor
from ..optim import float16_parameters, scaled_update
from .loss import clamp_logit_scale_, clip_loss
from .state import check_finite


def contrastive_loss(model, images, tokens):
    """The paper's loss of one process's batch: ``clip_loss`` of the model's logits."""
    logits_per_image, logits_per_text = model(images, tokens)   # [N, N] each
    return clip_loss(logits_per_image, logits_per_text)


def train_step(model, optimizer, scaler, images, tokens, step, device, max_grad_norm,
               loss=contrastive_loss, reduce_gradients=None):
    """One optimiser step on a batch (NumPy ``images [N, 3, R, R]``, ``tokens [N, C]``);
    returns this process's loss as a float. ``step`` (counted from 1) names the step in
    errors; ``max_grad_norm`` 0 or None turns clipping off.

    ``loss(model, images, tokens)`` is the loss of the batch (``contrastive_loss``; a
    data-parallel rank's, ``distributed.data_parallel``); ``reduce_gradients(parameters)``,
    if given, replaces each gradient by its reduction over the processes (the all-reduce).
    """
    # The token ids stay on the host: the text tower checks their range there, for free,
    # before copying them to the model's device.
    images = Tensor(images, device=device)
    with float16_parameters(model, enabled=scaler.enabled):
        value = loss(model, images, tokens)   # float32: clip_loss upcasts float16 logits
    # Scaled float16 gradients overflow now and then by design: the scaler sees the inf,
    # skips the step and lowers the scale. NumPy's warnings about it are noise.
    with np.errstate(over="ignore", invalid="ignore"):
        scaler.scale(value).backward()
        # One read of the loss and the verdicts (a GPU waits once), before the update: the
        # weights are still good. Scaled gradients are the scaler's to judge.
        local = check_finite(model, step, value, gradients=not scaler.enabled)
        if reduce_gradients is not None:
            reduce_gradients(model.parameters())
        scaled_update(optimizer, scaler, max_grad_norm or None)  # unscale, clip, step, zero
    if hasattr(model, "logit_scale"):  # a model trained without a temperature has none to cap
        clamp_logit_scale_(model)
    return local

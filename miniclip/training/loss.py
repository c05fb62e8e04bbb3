"""CLIP's symmetric contrastive loss, and its learned temperature.

A batch holds n matching (image, text) pairs. CLIP embeds both sides into one space and
scores every image against every text: an n x n matrix of scaled cosine similarities
whose diagonal holds the n true pairs and whose other n² - n entries are mismatches.
The loss is an n-way classification read in both directions — for each text, which of
the n images is its own? for each image, which of the n texts? — so it pulls the true
pairs together and pushes every mismatch in the batch apart.

The paper gives the whole method as numpy-like pseudocode (Radford et al. 2021, Fig. 3)::

    # image_encoder - ResNet or Vision Transformer
    # text_encoder  - CBOW or Text Transformer
    # I[n, h, w, c] - minibatch of aligned images
    # T[n, l]       - minibatch of aligned texts
    # W_i[d_i, d_e] - learned proj of image to embed
    # W_t[d_t, d_e] - learned proj of text to embed
    # t             - learned temperature parameter
    # extract feature representations of each modality
    I_f = image_encoder(I) #[n, d_i]
    T_f = text_encoder(T)  #[n, d_t]
    # joint multimodal embedding [n, d_e]
    I_e = l2_normalize(np.dot(I_f, W_i), axis=1)
    T_e = l2_normalize(np.dot(T_f, W_t), axis=1)
    # scaled pairwise cosine similarities [n, n]
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    # symmetric loss function
    labels = np.arange(n)
    loss_i = cross_entropy_loss(logits, labels, axis=0)
    loss_t = cross_entropy_loss(logits, labels, axis=1)
    loss = (loss_i + loss_t)/2

``clip_loss_from_features`` is that code from ``I_e`` on, line for line with the
paper's names; ``clip_loss`` is the same loss for the two logit matrices that
``CLIP.forward`` returns (the model does the projection, normalisation and scaling).

**The temperature.** Softmax over ``logits / τ`` is sharper the smaller τ is, and CLIP
learns τ. It is stored as ``t = log(1/τ)`` (the *logit scale* is ``exp(t) = 1/τ``):
the exponential keeps the scale positive whatever the optimiser does to ``t``, and
equal steps in ``t`` change the scale by equal *factors*. It starts at τ = 0.07
(``LOGIT_SCALE_INIT = ln(1/0.07)``, a scale of 14.3), and the paper clips it "to prevent
scaling the logits by more than 100": ``t <= ln 100`` (``LOGIT_SCALE_MAX``).

We clip the way open_clip does: the trainer calls ``clamp_logit_scale_(model)`` after
every optimiser step, which writes the bound into the parameter. Clamping inside the
forward pass instead (``t.clamp(max=...)``) would zero t's gradient whenever it sits at
the bound, so the optimiser could never learn to move it back down. OpenAI's released
model code has no clamp at all; their released models sit at the bound (scale 100).
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # t at the start: temperature 0.07, scale 14.29
LOGIT_SCALE_MAX = math.log(100.0)      # t never exceeds this: the scale is at most 100


def cross_entropy_loss(logits, labels, axis):
    """The pseudocode's ``cross_entropy_loss``: mean cross-entropy with softmax along ``axis``.

    ``axis=1`` takes the softmax along each row (one term per row, the usual
    classification layout); ``axis=0`` along each column, which is the same as the
    rows of ``logits.T``.
    """
    if axis not in (0, 1):
        raise ValueError(f"cross_entropy_loss: axis must be 0 or 1, got {axis}")
    return F.cross_entropy(logits if axis == 1 else logits.T, labels)


def clip_loss_from_features(I_f, T_f, W_i, W_t, t):
    """The paper's pseudocode (module docstring) from the features on; returns the loss.

    I_f [n, d_i] image features, T_f [n, d_t] text features, W_i [d_i, d_e] and
    W_t [d_t, d_e] the learned projections, t the log of the logit scale (a 0-d tensor).
    Row k of I_f and row k of T_f are a matching pair.
    """
    # BEGIN SOLUTION assignment clip_adamw, 6a: clip_loss_from_features
    n = I_f.shape[0]
    # joint multimodal embedding [n, d_e]
    I_e = F.normalize(I_f @ W_i, dim=1)             # I_e = l2_normalize(np.dot(I_f, W_i), axis=1)
    T_e = F.normalize(T_f @ W_t, dim=1)             # T_e = l2_normalize(np.dot(T_f, W_t), axis=1)
    # scaled pairwise cosine similarities [n, n]
    logits = (I_e @ T_e.T) * t.exp()                # logits = np.dot(I_e, T_e.T) * np.exp(t)
    # symmetric loss function
    labels = _arange(n, logits)                     # labels = np.arange(n)
    loss_i = cross_entropy_loss(logits, labels, axis=0)  # for each text: which image?
    loss_t = cross_entropy_loss(logits, labels, axis=1)  # for each image: which text?
    loss = (loss_i + loss_t) / 2                    # loss = (loss_i + loss_t)/2
    return loss
    # END SOLUTION


def clip_loss(logits_per_image, logits_per_text=None):
    """The symmetric loss from ``CLIP.forward``'s outputs: ½ (CE(rows) + CE(columns)).

    ``logits_per_image`` [n, n] is the pseudocode's ``logits`` (row = image, column =
    text) and ``logits_per_text`` its transpose (computed if not given), so with
    row-wise cross-entropy CE and labels 0..n-1::

        loss_t = CE(logits_per_image, labels)    # softmax over the texts of each image
        loss_i = CE(logits_per_text, labels)     # softmax over the images of each text

    float16 logits (mixed precision) are upcast first: the loss is always computed, and
    returned, in float32 or wider, because the loss scaler multiplies it by up to 2¹⁶.
    """
    n = logits_per_image.shape[0]
    if logits_per_image.ndim != 2 or logits_per_image.shape[1] != n:
        raise ValueError(f"clip_loss: logits_per_image must be a square [n, n] matrix of n "
                         f"matching pairs, got shape {logits_per_image.shape}")
    if logits_per_text is None:
        logits_per_text = logits_per_image.T
    logits_per_image = _at_least_float32(logits_per_image)
    logits_per_text = _at_least_float32(logits_per_text)
    labels = _arange(n, logits_per_image)
    loss_t = F.cross_entropy(logits_per_image, labels)
    loss_i = F.cross_entropy(logits_per_text, labels)
    return (loss_i + loss_t) / 2


def clamp_logit_scale_(model_or_parameter, max_value=LOGIT_SCALE_MAX):
    """Clip the learned log-scale ``t`` to at most ``max_value`` (ln 100), in place, and
    return the parameter.

    Takes a model with a ``logit_scale`` parameter or the parameter itself; call it after
    each ``optimizer.step()``. Nothing is read back from the device, so a GPU need not
    finish the step first: read the scale only when you log it,
    ``math.exp(clamp_logit_scale_(model).item())``.
    """
    param = getattr(model_or_parameter, "logit_scale", model_or_parameter)
    xp = backend.get_array_module(param.data)
    param.data[...] = xp.minimum(param.data, max_value)  # on the array: no graph involved
    return param


def _arange(n, like):
    """labels = 0, 1, ..., n-1 on the device of ``like``."""
    return Tensor(like.device.to_device(np.arange(n)))


def _at_least_float32(logits):
    dtype = backend.accumulation_dtype(logits.dtype)
    return logits if dtype == logits.dtype else logits.to(dtype)

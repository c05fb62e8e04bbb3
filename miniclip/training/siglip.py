"""SigLIP's pairwise sigmoid loss (Zhai et al. 2023), with its learned temperature and bias.

CLIP's loss (``loss.py``) is a softmax over the batch: each image must pick its text out
of the n texts of the batch, so every term depends on the whole row (and column) of the
n x n similarity matrix. SigLIP instead asks one yes/no question per pair: *do image i and
text j belong together?* Every one of the n² entries is a binary logistic regression of
its own, with label z_ij = +1 on the diagonal and -1 elsewhere::

    ℓ_ij = exp(t) · x_i · y_j + b           x, y: unit-length embeddings, [n, n]
    L    = -(1/n) Σ_i Σ_j log σ(z_ij ℓ_ij)  z = 2 I - 1

Nothing couples the entries of a row, so no normalisation over the batch is needed; the
paper's claim is that this works better than the softmax at small batches and as well at
large ones. Of the n² pairs only n are positives, so at the start every logit is pulled
down hard; the learned bias ``b``, started at -10 (with ``t = log 10``: the paper's
initialisation), makes the prior "almost no pair matches" right from the first step.

**The gradient.** With s = σ, d/dℓ log s(zℓ) = z s(-zℓ); for z = +1 that is 1 - s(ℓ)
and for z = -1 it is -s(ℓ), so in both cases::

    dL/dℓ_ij = (s(ℓ_ij) - [i = j]) / n          (predicted minus true, as for softmax)
    dL/db    = Σ_ij dL/dℓ_ij
    dL/dt    = Σ_ij dL/dℓ_ij · exp(t) x_i · y_j
    dL/dx_i  = exp(t) Σ_j dL/dℓ_ij y_j,   dL/dy_j = exp(t) Σ_i dL/dℓ_ij x_i

The engine composes these from ``F.log_sigmoid``'s backward (s(-u) at u = zℓ) and the
backward of the product, sum and exponential; ``tests/test_siglip.py`` checks them against
finite differences and against the closed form of dL/dℓ.

The same sum of binary log-likelihoods, :func:`sigmoid_loss`, is the loss of the
bag-of-words predictor (``bag_of_words.py``): there the "pairs" are (image, word).
"""
import math

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor

SIGLIP_LOGIT_SCALE_INIT = math.log(10.0)  # t at the start: the scale exp(t) is 10
SIGLIP_LOGIT_BIAS_INIT = -10.0            # b at the start: every pair looks like a mismatch


def sigmoid_loss(logits, signs):
    """-(1/N) Σ_i Σ_j log σ(signs_ij · logits_ij) of ``logits [N, M]`` and ``signs [N, M]``
    (+1 for a "yes", -1 for a "no"): the mean over rows of each row's summed binary
    cross-entropy. float16 logits are upcast first, as ``clip_loss`` does."""
    dtype = backend.accumulation_dtype(logits.dtype)
    logits = logits if logits.dtype == dtype else logits.to(dtype)
    return -F.log_sigmoid(logits * signs).sum() / logits.shape[0]


def pair_signs(n, like):
    """z = 2 I - 1 ``[n, n]``: +1 for the n matching pairs, -1 for the rest, on ``like``'s
    device in its dtype (at least float32)."""
    dtype = backend.accumulation_dtype(like.dtype)
    return Tensor(like.device.to_device((2 * np.eye(n) - 1).astype(dtype)))


def siglip_loss(logits_per_image, logit_bias):
    """SigLIP's loss of ``CLIP.forward``'s scaled similarities ``exp(t) x yᵀ [n, n]`` and the
    learned bias ``b`` (a 0-d tensor): the module docstring's L with ℓ = logits + b."""
    n = logits_per_image.shape[0]
    if logits_per_image.ndim != 2 or logits_per_image.shape[1] != n:
        raise ValueError(f"siglip_loss: logits_per_image must be a square [n, n] matrix of n "
                         f"matching pairs, got shape {logits_per_image.shape}")
    logits = logits_per_image + logit_bias
    return sigmoid_loss(logits, pair_signs(n, logits))


def siglip_loss_from_features(I_f, T_f, W_i, W_t, t, b):
    """The loss from the features on, in the names of CLIP's pseudocode (``loss.py``):
    ``I_f [n, d_i]``, ``T_f [n, d_t]`` features of n matching pairs, ``W_i [d_i, d_e]``,
    ``W_t [d_t, d_e]`` projections, ``t`` the log-scale and ``b`` the bias (0-d tensors)."""
    I_e = F.normalize(I_f @ W_i, dim=1)             # [n, d_e]
    T_e = F.normalize(T_f @ W_t, dim=1)             # [n, d_e]
    logits = (I_e @ T_e.T) * t.exp() + b            # [n, n]
    return sigmoid_loss(logits, pair_signs(I_f.shape[0], logits))


class SigmoidLoss(nn.Module):
    """SigLIP's loss as a module holding the learned bias ``logit_bias`` (a parameter to
    train with the model's): ``loss(logits_per_image, logits_per_text=None)``, the same call
    as ``clip_loss``. Call :func:`init_siglip_scale_` on the model first."""

    def __init__(self, bias=SIGLIP_LOGIT_BIAS_INIT):
        super().__init__()
        self.logit_bias = nn.Parameter(np.array(bias, dtype=np.float32))

    def forward(self, logits_per_image, logits_per_text=None):
        return siglip_loss(logits_per_image, self.logit_bias)


def sigmoid_contrastive_loss(sigmoid, model, images, tokens):
    """SigLIP's loss of a batch, for ``training.step.train_step(..., loss=...)`` with
    ``functools.partial(sigmoid_contrastive_loss, SigmoidLoss())``."""
    return sigmoid(*model(images, tokens))


def init_siglip_scale_(model, value=SIGLIP_LOGIT_SCALE_INIT):
    """Set the model's learned log-scale ``logit_scale`` to SigLIP's start, log 10, in
    place (CLIP starts at log(1/0.07)); returns the model."""
    model.logit_scale.data[...] = value
    return model

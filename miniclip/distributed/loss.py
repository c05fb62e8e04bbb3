"""The paper's contrastive loss over a batch split across ranks, in its two forms.

W ranks hold b pairs each, N = W b in all. Rank r's unit-length features are
``I_r, T_r [b, E]``; gathered (``gather.all_gather``), ``I, T [N, E]`` are the global
batch in rank order, so rank r's pairs are the global rows ``r b .. r b + b - 1``. With
``s = exp(t)`` the single-process loss of the global batch (``training.loss.clip_loss``)
is, writing ce_i for the cross-entropy of row i of ``s I Tᵀ`` (image i against every text)
and ce'_j for that of column j (text j against every image), with the diagonal as labels::

    L = ½ [ (1/N) Σ_i ce_i + (1/N) Σ_j ce'_j ]

**``global_loss``** builds that whole ``[N, N]`` matrix on every rank: each rank computes
the same L. It is the simplest form and N/b = W times the work and memory of

**``local_loss``**, open_clip's ``local_loss=True``: rank r builds only the rows of its own
images and the columns of its own texts, two ``[b, N]`` matrices (its images against all
texts, its texts against all images), with labels ``r b + (0 .. b-1)``::

    L_r = ½ [ (1/b) Σ_{i of r} ce_i + (1/b) Σ_{j of r} ce'_j ]

Every row and every column belongs to exactly one rank and N = W b, so
``L = (1/W) Σ_r L_r``: the mean of the local losses *is* the global loss. The data-parallel
step averages the ranks' gradients, i.e. descends (1/W) Σ_r L_r (``gather.py`` derives the
backward): exactly L, as it descends (1/W) Σ_r L = L for ``global_loss``. Both forms take
the single-process step on the global batch, to round-off; their memory differs. At the
paper's N = 32,768 on 256 GPUs (b = 128) the full float32 matrix is 4.3 GB per GPU, the
two local blocks 34 MB.

The logit scale ``t`` is a parameter of every rank's model: its gradient reaches it
directly from each rank's own loss, never through a gather.
"""
import numpy as np

from .. import functional as F
from ..autograd import Tensor
from ..training.loss import clip_loss
from .gather import all_gather


def local_loss(world, image_features, text_features, logit_scale):
    """L_r: this rank's images against all texts and its texts against all images
    (module docstring). Features ``[b, E]`` with unit rows; ``logit_scale`` is t (0-d)."""
    b = image_features.shape[0]
    images, texts = all_gather(world, image_features), all_gather(world, text_features)  # [N, E]
    scale = logit_scale.exp()
    logits_per_image = scale * image_features @ texts.T            # [b, N]
    logits_per_text = scale * text_features @ images.T             # [b, N]
    labels = Tensor(logits_per_image.device.to_device(world.rank * b + np.arange(b)))  # [b]
    return (F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_text, labels)) / 2


def global_loss(world, image_features, text_features, logit_scale):
    """L: the whole ``[N, N]`` matrix of the global batch on every rank (module docstring)."""
    images, texts = all_gather(world, image_features), all_gather(world, text_features)  # [N, E]
    return clip_loss(logit_scale.exp() * images @ texts.T)         # [N, N]

"""The bag-of-words prediction objective: say from the image which words its caption holds.

``models.BagOfWordsPredictor`` gives one logit s_nw per image n and vocabulary word w.
Each is a binary logistic regression, "does caption n say w?", with the sign
z_nw = +1 if it does and -1 if not (from the multi-hot bag B: z = 2B - 1)::

    L = -(1/N) Σ_n Σ_w log σ(z_nw s_nw)

which is ``siglip.sigmoid_loss`` with (image, word) pairs in place of (image, text) pairs,
and so has its gradient: dL/ds_nw = (σ(s_nw) - B_nw) / N.

**Zero-shot.** A class is its words ("red circle": "red" and "circle"), so it scores the
log-probability that the caption holds all of them, Σ_{w in class} log σ(s_nw). Words every
prompt shares ("a", "photo") would add the same to every class, so they are left out.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from .siglip import sigmoid_loss


def bag_of_words_loss(word_logits, bags):
    """The loss L above of ``word_logits [N, V]`` and multi-hot ``bags [N, V]`` (a host
    array, 1 where the caption holds the word)."""
    dtype = backend.accumulation_dtype(word_logits.dtype)
    signs = (2 * np.asarray(bags) - 1).astype(dtype)                       # [N, V]
    return sigmoid_loss(word_logits, Tensor(word_logits.device.to_device(signs)))


def class_word_scores(word_logits, class_words):
    """Zero-shot scores ``[N, K]`` of ``word_logits [N, V]`` (both NumPy): for each of the K
    classes, given as a list of its word ids, Σ_w log σ(s_nw) over its words."""
    with no_grad():
        log_yes = F.log_sigmoid(Tensor(np.asarray(word_logits))).numpy()    # [N, V]
    return np.stack([log_yes[:, list(words)].sum(axis=1) for words in class_words], axis=1)

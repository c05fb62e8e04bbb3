"""The captioning objective: the language-model loss of ``models.ImageCaptioner``, and its
zero-shot scores.

For a caption of tokens t_0 (start) .. t_e (end-of-text), then padding, the decoder gives
next-token logits u_j ``[V]`` for j = 1..L-1 (``ImageCaptioner.forward``). The loss is the
mean cross-entropy over the M real targets of the batch (padding after t_e is no target)::

    L = -(1/M) Σ_n Σ_{j=1..e_n} log softmax(u_nj)[t_nj]

It is ``F.cross_entropy`` on the rows of the real targets, so its gradient is that op's:
dL/du_nj = (softmax(u_nj) - onehot(t_nj)) / M for a real target, 0 for padding.

**Zero-shot.** A class scores the log-likelihood of its prompt given the image,
Σ_j log p(t_j | image, t_<j), averaged over the prompt templates (``caption_scores``):
the caption the model would most readily write names the class. The end-of-text token is
scored too, so "a photo of a red circle." must end where the prompt ends.
"""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..functional.support import stable_log_softmax


def target_mask(tokens):
    """Which next-token targets ``tokens[:, 1:]`` are real, ``bool [N, L-1]``: those up to
    and including each row's end-of-text token (its largest id, as the text tower finds it)."""
    tokens = np.asarray(tokens)
    eot = tokens.argmax(axis=1)                                            # [N]
    return np.arange(1, tokens.shape[1])[None, :] <= eot[:, None]


def captioning_loss(logits, tokens):
    """The loss L above of next-token ``logits [N, L-1, V]`` for host ``tokens [N, L]``."""
    tokens = np.asarray(tokens)
    rows = np.flatnonzero(target_mask(tokens))                             # [M]
    flat = logits.reshape(-1, logits.shape[-1])                            # [N (L-1), V]
    picked = flat[Tensor(flat.device.to_device(rows))]                     # [M, V]
    dtype = backend.accumulation_dtype(picked.dtype)
    picked = picked if picked.dtype == dtype else picked.to(dtype)
    return F.cross_entropy(picked, tokens[:, 1:].reshape(-1)[rows])


def caption_log_likelihood(logits, tokens):
    """log p(caption | image) ``[N]`` (NumPy): each row's summed log-probabilities of its
    real targets, from next-token ``logits [N, L-1, V]`` (a Tensor) and ``tokens [N, L]``."""
    tokens = np.asarray(tokens)
    log_probs = backend.to_numpy(stable_log_softmax(logits.data, axis=-1))  # [N, L-1, V]
    targets = tokens[:, 1:]
    picked = np.take_along_axis(log_probs, targets[:, :, None], axis=2)[:, :, 0]  # [N, L-1]
    return (picked * target_mask(tokens)).sum(axis=1)


def caption_scores(model, images, prompts, batch_size=256):
    """Zero-shot scores ``[N, K]`` of images under ``model`` (an ``ImageCaptioner``):
    ``prompts`` holds K arrays of token ids ``[T, L]``, one row per template of a class,
    and class k scores the mean over its T prompts of log p(prompt | image)."""
    scores = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            prefixes = model.prefixes(images[start:start + batch_size])    # [n, W]
            n = prefixes.shape[0]
            columns = []
            for class_prompts in prompts:
                likelihoods = [caption_log_likelihood(
                    model.decode(prefixes, np.repeat(prompt[None], n, axis=0)),
                    np.repeat(prompt[None], n, axis=0)) for prompt in class_prompts]
                columns.append(np.mean(likelihoods, axis=0))               # [n]
            scores.append(np.stack(columns, axis=1))                       # [n, K]
    return np.concatenate(scores)

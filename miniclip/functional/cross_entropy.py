"""cross_entropy: softmax and negative log-likelihood in one op (the loss of a classifier;
CLIP's contrastive loss, ``miniclip/training/loss.py``, is built from it)."""
from .. import backend
from ..autograd import Function
from .support import check_index_range, integer_indices, stable_log_softmax


class CrossEntropy(Function):
    """L = -(1/N) sum_n log p_n[y_n], with p_n = softmax(x_n) over the C classes.

    Fusing log_softmax and the label pick is both stabler (log_softmax never takes the
    log of a rounded probability) and gives a famously simple gradient. With
    log p_n[c] = x_n[c] - log sum_k e^{x_n[k]},
        d(-log p_n[y_n]) / dx_n[c] = softmax(x_n)[c] - [c = y_n],
    so dL/dx = gL (softmax(x) - onehot(y)) / N: predicted minus true distribution.
    """

    def __init__(self, labels):
        self.labels = labels                                     # [N] integers

    def forward(self, logits):
        xp = backend.get_array_module(logits)
        self.log_probs = stable_log_softmax(logits, axis=1)      # [N, C]
        self.rows = xp.arange(logits.shape[0])
        picked = self.log_probs[self.rows, self.labels]          # [N]
        return (-picked.mean()).astype(logits.dtype)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = xp.exp(self.log_probs)                               # softmax [N, C]
        g[self.rows, self.labels] -= 1.0
        return g * (gy.astype(g.dtype) / g.shape[0])


def cross_entropy(input, target):
    """Mean cross-entropy of logits ``input`` [N, C] against class indices ``target`` [N]
    (integers in [0, C), a Tensor, array or list), as ``torch.nn.functional.cross_entropy``."""
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: input must be logits of shape [N, C], got "
                         f"{input.shape}")
    labels = integer_indices(target, input, "cross_entropy", "target class indices")
    if tuple(labels.shape) != input.shape[:1]:
        raise ValueError(f"cross_entropy: target must have shape ({input.shape[0]},) for "
                         f"input of shape {input.shape}, got {tuple(labels.shape)}")
    check_index_range(labels, input.shape[1], "cross_entropy", "target class indices")
    return CrossEntropy(labels)(input)

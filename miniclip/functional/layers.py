"""The ops behind the basic layers: linear (fully connected), embedding lookup, dropout."""

from .. import backend
from ..autograd import Function
from .shape import GetItem
from .support import check_index_range, integer_indices


class Linear(Function):
    """y = x W^T + b, with W of shape [out, in] and any number of leading batch axes in x.

    The leading axes are flattened so the whole layer is one matrix product
    X [M, in] @ W^T [in, out]. Writing Y = X W^T + b elementwise,
    Y[m, o] = sum_i X[m, i] W[o, i] + b[o], gives

    * dL/dX[m, i] = sum_o gY[m, o] W[o, i]   ->  dL/dX = gY W        [M, in]
    * dL/dW[o, i] = sum_m gY[m, o] X[m, i]   ->  dL/dW = gY^T X      [out, in]
    * dL/db[o]    = sum_m gY[m, o]           (b is added to every row)
    """

    def forward(self, x, weight, *bias):
        self.batch_shape = x.shape[:-1]
        self.x = x.reshape(-1, x.shape[-1])                      # [M, in]
        self.weight = weight                                     # [out, in]
        self.has_bias = bool(bias)
        y = self.x @ weight.T                                    # [M, out]
        if self.has_bias:
            y += bias[0]
        return y.reshape(self.batch_shape + (weight.shape[0],))

    def backward(self, gy):
        # BEGIN SOLUTION assignment linear_softmax, 1a-1b: Linear.backward
        gy = gy.reshape(-1, gy.shape[-1])                        # [M, out]
        gx = (gy @ self.weight).reshape(self.batch_shape + (self.weight.shape[1],))
        gw = gy.T @ self.x                                       # [out, in]
        return (gx, gw, gy.sum(axis=0)) if self.has_bias else (gx, gw)
        # END SOLUTION


class Dropout(Function):
    """Inverted dropout: y = x * m / (1 - p), where each m_i is 1 with probability 1 - p.

    Dividing by 1 - p keeps E[y] = x, so nothing needs rescaling at evaluation time.
    y is linear in x with the mask fixed, so dL/dx = gy * m / (1 - p): the same mask,
    saved from the forward pass.
    """

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        xp = backend.get_array_module(x)
        keep = xp.random.random(x.shape) >= self.p               # drawn on x's device
        factor = 1.0 / (1.0 - self.p) if self.p < 1 else 0.0     # p = 1 drops everything
        self.scale = keep.astype(x.dtype) * factor
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: input [..., in], weight [out, in], bias [out] or None."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} needs weight [out, "
                         f"{input.shape[-1] if input.ndim else '?'}], got weight {weight.shape}")
    if bias is None:
        return Linear()(input, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) for weight "
                         f"{weight.shape}, got {bias.shape}")
    return Linear()(input, weight, bias)


def embedding(input, weight):
    """Rows of ``weight`` [num_embeddings, dim] picked by integer ids of any shape.

    ``embedding(ids, W)[..., :] = W[ids[...], :]``, so the result has shape
    ``ids.shape + (dim,)``. This is indexing with an integer array, so it *is* the
    ``GetItem`` op: its backward scatter-adds each gradient row into the row of W it came
    from, summing over repeated ids (``xp.add.at``), which is the derivative of a lookup.
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D [num_embeddings, dim], got {weight.shape}")
    ids = integer_indices(input, weight, "embedding", "ids")
    check_index_range(ids, weight.shape[0], "embedding", "ids")
    return GetItem(ids)(weight)


def dropout(input, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    The identity (the very same tensor) when ``training`` is False or ``p`` is 0.
    Seed with ``numpy.random.seed`` (CPU) or ``cupy.random.seed`` (GPU) for repeatability.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0:
        return input
    return Dropout(p)(input)

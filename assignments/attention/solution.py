"""Assignment 4: multi-head attention, forward (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: miniclip's attention is
left out of the library while your file is graded. Sequences are batch-first, [N, L, D].
"""
import numpy as np


def softmax(x, axis=-1):
    """softmax along ``axis``; an entry of -inf gets weight exactly 0. (Given.)"""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def causal_mask(length):
    """The additive mask [length, length] that lets query i see keys 0..i only: 0 where
    key j <= query i, -inf where j > i."""
    # BEGIN SOLUTION A4a: causal_mask
    return np.triu(np.full((length, length), -np.inf), k=1)
    # END SOLUTION


def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(dh) + mask) v over the last two axes, batched over the leading
    ones: q [..., Lq, dh], k [..., Lk, dh], v [..., Lk, dv], mask None or additive and
    broadcasting to [..., Lq, Lk]. Returns (out [..., Lq, dv], weights [..., Lq, Lk])."""
    # BEGIN SOLUTION A4b: scaled_dot_product_attention
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    weights = softmax(scores if mask is None else scores + mask, axis=-1)
    return weights @ v, weights
    # END SOLUTION


def split_heads(x, num_heads):
    """[N, L, D] -> [N, h, L, D/h]: head j takes features j D/h ... (j + 1) D/h - 1."""
    # BEGIN SOLUTION A4c: split_heads
    n, length, width = x.shape
    return x.reshape(n, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)
    # END SOLUTION


def merge_heads(x):
    """[N, h, L, dh] -> [N, L, h dh], the inverse of split_heads."""
    # BEGIN SOLUTION A4c: merge_heads
    n, heads, length, head_dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, length, heads * head_dim)
    # END SOLUTION


def multi_head_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                              out_proj_bias, num_heads, mask=None):
    """PyTorch's nn.MultiheadAttention on x [N, L, D], batch-first, attending to itself.

    in_proj_weight [3D, D] packs the query, key and value projections (rows 0..D-1,
    D..2D-1, 2D..3D-1), in_proj_bias [3D] their biases; out_proj_weight [D, D] and
    out_proj_bias [D] project the concatenated heads. Returns [N, L, D].
    """
    # BEGIN SOLUTION A4d: multi_head_self_attention
    q, k, v = np.split(x @ in_proj_weight.T + in_proj_bias, 3, axis=-1)
    heads = [split_heads(t, num_heads) for t in (q, k, v)]
    out, _ = scaled_dot_product_attention(*heads, mask=mask)
    return merge_heads(out) @ out_proj_weight.T + out_proj_bias
    # END SOLUTION

"""Multi-head attention, written once and shared by every attention layer in CLIP.

For one head, with queries Q ``[Lq, dh]``, keys K ``[Lk, dh]`` and values V ``[Lk, dh]``:

    scores  = Q K^T / sqrt(dh) + mask        [Lq, Lk]   how well query i matches key j
    weights = softmax(scores, over j)        [Lq, Lk]   each row sums to 1
    out     = weights V                      [Lq, dh]   a weighted average of the values

Dividing by sqrt(dh) keeps the scores' variance near 1 when q and k have unit-variance
entries (a dot product of dh such terms has variance dh), so the softmax does not start
out saturated. An additive mask of -inf at (i, j) gives weight exactly 0 to key j for
query i (e.g. the future tokens in CLIP's text encoder).

*Multi*-head attention cuts the width D into h contiguous chunks of dh = D/h features
(head j gets features j·dh … j·dh+dh-1), runs the formula above on every head at once
with batched matrix products, and concatenates the heads again. The layers around it
differ only in where Q, K, V come from and how the result is projected:

* ``MultiheadAttention`` (the transformer blocks): PyTorch's ``nn.MultiheadAttention``
  parameters — one packed ``in_proj_weight [3D, D]`` (rows: Q, then K, then V),
  ``in_proj_bias [3D]`` and ``out_proj``.
* ``AttentionPool2d`` (the ResNet tower, in ``miniclip.models``): separate ``q_proj``,
  ``k_proj``, ``v_proj`` and ``c_proj`` layers, and a single query token. It calls
  ``multi_head_attention`` below, so the attention itself exists only once.

Layout: miniclip is **batch-first** everywhere: sequences are ``[N, L, D]`` (batch,
length, width). OpenAI's CLIP code is sequence-first (``[L, N, D]``, PyTorch's default
for ``nn.MultiheadAttention``) and permutes around every transformer; here nothing needs
permuting. PyTorch's ``nn.MultiheadAttention(..., batch_first=True)`` matches this module.
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from . import init
from .layers import Linear
from .module import Module, as_array


def scaled_dot_product_attention(q, k, v, attn_mask=None, need_weights=False):
    """softmax(q k^T / sqrt(dh) + attn_mask) v over the last two axes.

    ``q`` is ``[..., Lq, dh]``, ``k`` ``[..., Lk, dh]``, ``v`` ``[..., Lk, dv]``; the leading
    axes (batch, heads) are batched. ``attn_mask`` is an additive float mask or a boolean
    mask (True = not allowed to attend) that broadcasts to ``[..., Lq, Lk]``, usually
    ``[Lq, Lk]``. Returns ``out [..., Lq, dv]``, and the attention weights
    ``[..., Lq, Lk]`` too when ``need_weights``.

    For float16 inputs the softmax is computed in float32 (``F.softmax`` does that) and the
    weights are cast back to float16 for the product with v.
    """
    # BEGIN SOLUTION assignment attention, 4b: scaled_dot_product_attention
    scale = 1.0 / math.sqrt(q.shape[-1])
    # Scaling q before the product rather than the scores after it: the same numbers,
    # but smaller intermediate values, which matters in float16.
    scores = (q * scale) @ k.transpose(-2, -1)                   # [..., Lq, Lk]
    if attn_mask is not None:
        scores = scores + _additive_mask(attn_mask, scores)
    weights = F.softmax(scores, dim=-1)                          # [..., Lq, Lk]
    out = weights @ v                                            # [..., Lq, dv]
    return (out, weights) if need_weights else out
    # END SOLUTION


def _additive_mask(mask, scores):
    """The mask as a constant tensor on the scores' device and dtype; a boolean mask
    becomes 0 where attending is allowed and -inf where it is not."""
    array = as_array(mask)  # a Tensor's array, a device array, or a list as NumPy
    # A mask kept elsewhere is copied over (keep it on the model's device, e.g. as a
    # buffer, to avoid one copy per call).
    array = backend.move(array, scores.device)
    if array.dtype == bool:
        xp = backend.get_array_module(array)
        array = xp.where(array, -np.inf, 0.0)
    return Tensor(array.astype(scores.dtype))


def split_heads(x, num_heads):
    """``[N, L, D]`` -> ``[N, h, L, D/h]``: head j takes features j·D/h … (j+1)·D/h - 1."""
    # BEGIN SOLUTION assignment attention, 4c: split_heads
    n, length, width = x.shape
    return x.reshape(n, length, num_heads, width // num_heads).transpose(1, 2)
    # END SOLUTION


def merge_heads(x):
    """``[N, h, L, dh]`` -> ``[N, L, h·dh]``: the heads concatenated in order (inverse of
    ``split_heads``)."""
    # BEGIN SOLUTION assignment attention, 4c: merge_heads
    n, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * head_dim)
    # END SOLUTION


def multi_head_attention(q, k, v, num_heads, attn_mask=None, need_weights=False):
    """Attention of already-projected queries ``q [N, Lq, D]`` over keys ``k [N, Lk, D]``
    and values ``v [N, Lk, D]`` with ``num_heads`` heads of width D/num_heads.

    Returns the concatenated heads ``[N, Lq, D]`` (before any output projection), and the
    per-head weights ``[N, num_heads, Lq, Lk]`` too when ``need_weights``.
    """
    width = q.shape[-1]
    if width % num_heads:
        raise ValueError(f"multi_head_attention: width {width} is not divisible by "
                         f"num_heads={num_heads}")
    if k.shape != v.shape or k.shape[0] != q.shape[0] or k.shape[-1] != width:
        raise ValueError(f"multi_head_attention: expected q [N, Lq, D] and k, v [N, Lk, D], got "
                         f"q {q.shape}, k {k.shape}, v {v.shape}")
    heads = [split_heads(t, num_heads) for t in (q, k, v)]         # each [N, h, L, dh]
    out, weights = scaled_dot_product_attention(*heads, attn_mask=attn_mask, need_weights=True)
    out = merge_heads(out)                                        # [N, Lq, D]
    return (out, weights) if need_weights else out


class MultiheadAttention(Module):
    """PyTorch's ``nn.MultiheadAttention`` (no dropout), batch-first: inputs ``[N, L, D]``.

    Parameters (the keys of CLIP checkpoints): ``in_proj_weight [3D, D]`` whose rows
    0..D-1 project the queries, D..2D-1 the keys and 2D..3D-1 the values;
    ``in_proj_bias [3D]``; ``out_proj`` (a Linear D -> D). PyTorch's initialisation:
    ``in_proj_weight`` Xavier-uniform, both biases 0, ``out_proj.weight`` U(±1/sqrt(D)).

    ``forward(query, key, value, attn_mask=None, need_weights=False)`` returns the output
    ``[N, Lq, D]``, or ``(output, weights)`` with the per-head attention weights
    ``[N, heads, Lq, Lk]`` when ``need_weights`` (PyTorch would average them over the heads
    by default; take ``weights.mean(1)`` for that).
    """

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = init.empty(3 * embed_dim, embed_dim)
        self.in_proj_bias = init.empty(3 * embed_dim)
        self.out_proj = Linear(embed_dim, embed_dim)
        init.xavier_uniform_(self.in_proj_weight)
        init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, attn_mask=None, need_weights=False):
        d, weight, bias = self.embed_dim, self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            # Self-attention: one matrix product makes q, k and v together.
            q, k, v = F.split(F.linear(query, weight, bias), d, dim=-1)   # each [N, L, D]
        else:
            q = F.linear(query, weight[:d], bias[:d])                      # [N, Lq, D]
            k = F.linear(key, weight[d:2 * d], bias[d:2 * d])              # [N, Lk, D]
            v = F.linear(value, weight[2 * d:], bias[2 * d:])              # [N, Lk, D]
        out, weights = multi_head_attention(q, k, v, self.num_heads, attn_mask,
                                            need_weights=True)
        out = self.out_proj(out)                                           # [N, Lq, D]
        return (out, weights) if need_weights else out

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"

"""The transformer both CLIP towers are built from: pre-LayerNorm residual blocks.

One block (``ResidualAttentionBlock``) of width d does::

    x = x + Attention(LN_1(x))                 # tokens exchange information
    x = x + c_proj(QuickGELU(c_fc(LN_2(x))))   # each token alone, through a 4d-wide MLP

"Pre-LN": each branch normalises its *input* and the residual stream ``x`` itself is never
normalised, so every block adds a correction to an untouched copy of its input. The
gradient reaches early blocks through the additions unchanged, which is why deep stacks
of such blocks train without warm-up tricks.

``Transformer`` is just ``layers`` blocks in a row. The text tower passes a causal mask
(each token sees only itself and earlier tokens); the image tower passes none.

Shapes are batch-first, ``[N, L, d]`` (see ``miniclip.nn.attention``). Parameter names
match OpenAI's checkpoints: ``resblocks.{i}.ln_1``, ``.attn``, ``.ln_2``, ``.mlp.c_fc``,
``.mlp.c_proj``.
"""
import collections

from .. import nn


class ResidualAttentionBlock(nn.Module):
    """One pre-LN transformer block of width ``d_model`` with ``n_head`` attention heads.

    ``attn_mask`` (optional) is an additive ``[L, L]`` float array: 0 where query i may
    attend to key j and -inf where it may not. For an input shorter than L the top-left
    ``[n, n]`` corner is used (for a causal mask that is the causal mask of length n).
    """

    def __init__(self, d_model, n_head, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        # An ordered container so the keys read mlp.c_fc.weight, mlp.c_proj.weight, as in
        # the checkpoints; "gelu" has no parameters.
        self.mlp = nn.Sequential(collections.OrderedDict([
            ("c_fc", nn.Linear(d_model, 4 * d_model)),
            ("gelu", nn.QuickGELU()),
            ("c_proj", nn.Linear(4 * d_model, d_model)),
        ]))
        self.ln_2 = nn.LayerNorm(d_model)
        # Not saved with the weights (it is rebuilt from the configuration), but a buffer so
        # that it follows the model to the GPU once instead of being copied at every call.
        self.register_buffer("attn_mask", attn_mask, persistent=False)

    def attention(self, x):
        mask = None
        if self.attn_mask is not None:
            n = x.shape[1]
            mask = self.attn_mask.data[:n, :n]                    # [n, n]
        return self.attn(x, x, x, attn_mask=mask)

    def forward(self, x):                                         # x: [N, L, d]
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x                                                  # [N, L, d]


class Transformer(nn.Module):
    """``layers`` residual attention blocks of width ``width`` applied in order.

    There is no final LayerNorm here: each tower adds its own (``ln_final``, ``ln_post``).
    """

    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers))

    def forward(self, x):                                         # x: [N, L, width]
        for block in self.resblocks:
            x = block(x)
        return x

"""CLIP's text encoder: token ids ``[N, L]`` -> one feature vector per caption ``[N, E]``.

1. Look up each id's embedding and add a learned embedding of its position.
2. Run a transformer with a *causal* mask: token i attends to tokens 0..i only, like a
   language model. The last token therefore is the only one that has seen the whole
   caption.
3. LayerNorm every position (``ln_final``), then keep only the end-of-text (EOT)
   position, the caption's last token. The EOT id is the largest id in the vocabulary,
   so ``argmax`` over a row finds it (the first occurrence, should there be several).
4. Project linearly into the joint embedding space (``text_projection`` ``[Wt, E]``,
   applied as ``x @ P``, no bias). The result is not normalised.

Whatever follows the EOT (padding, id 0) cannot reach the EOT position: the causal mask
gives every position after it weight exactly 0 (exp(-inf)) in the attention of every
earlier position, in every layer, and the other layers act on each position alone. So
``encode_text`` runs the tower only over the positions up to the batch's last EOT
(``L' = max(argmax) + 1``) and drops the rest before the embedding: the features are those
of the full context up to float32 round-off (the matrix products sum the same terms over
fewer rows). Eight ordinary prompts fill at most 19 of OpenAI's 77 positions, so this
does about a quarter of the work. Inputs shorter than the context length are accepted
for the same reason: they give the features of the same ids zero-padded to full length.
In training the dropped positions would get zero gradient anyway; the positional
embedding's rows past ``L'`` get exactly 0.

OpenAI keeps these parameters at the top level of the CLIP model (``token_embedding``,
``positional_embedding``, ``transformer``, ``ln_final``, ``text_projection``), not
under a prefix. ``CLIP`` therefore *is* a ``TextTransformer`` (it subclasses it) with an
image tower and a temperature added, which reproduces the checkpoint names exactly.
"""
import numpy as np

from .. import backend, nn
from ..autograd import Tensor
from ..functional.support import integer_indices
from .transformer import Transformer


def causal_mask(length):
    """The additive mask ``[length, length]``: 0 on and below the diagonal (key j <= query
    i may be attended to), -inf above it (the future)."""
    # BEGIN SOLUTION assignment attention, 4a: causal_mask
    return np.triu(np.full((length, length), -np.inf, dtype=np.float32), k=1)
    # END SOLUTION


def trim_padding(tokens):
    """Drop the columns ``tokens [N, C]`` holds only padding (id 0) in: ``[N, L]``, L <= C.

    The text tower pools at the end-of-text token, and its causal mask lets no position
    see the positions after it, so padding after the end-of-text token cannot change the
    text features: the model gives the same features for ``[N, L]`` as for ``[N, C]``
    (module docstring). Short captions then cost the text tower only the positions they
    fill: the synthetic shapes' captions fill at most 13 of the tiny model's 32.
    """
    used = np.flatnonzero(tokens.any(axis=0))  # columns holding a real token in some row
    return tokens[:, :used[-1] + 1]


class TextTransformer(nn.Module):
    """The text tower: ``encode_text(tokens [N, L]) -> [N, embed_dim]`` with L <= context_length.

    Parameters (OpenAI's names and shapes, V = vocab_size, C = context_length,
    W = width): ``token_embedding.weight [V, W]``, ``positional_embedding [C, W]``,
    ``transformer.resblocks.{i}.*``, ``ln_final.{weight,bias} [W]``,
    ``text_projection [W, E]``. Initialised as OpenAI's ``CLIP.initialize_parameters``.
    """

    def __init__(self, embed_dim, context_length, vocab_size, width, heads, layers):
        super().__init__()
        self.context_length, self.vocab_size = context_length, vocab_size
        self.transformer = Transformer(width, layers, heads, attn_mask=causal_mask(context_length))
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.init.empty(context_length, width)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.init.empty(width, embed_dim)
        self._initialize_text_parameters()

    def _initialize_text_parameters(self):
        """Small normal embeddings; in the blocks, standard deviations that keep the
        residual stream's variance from growing with depth: the projections that write
        into it (``out_proj``, ``c_proj``) get an extra factor 1/sqrt(2 * layers), since
        each of the 2 * layers branches adds its output to the stream."""
        width, layers = self.transformer.width, self.transformer.layers
        attn_std = width ** -0.5
        proj_std = width ** -0.5 * (2 * layers) ** -0.5
        fc_std = (2 * width) ** -0.5
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def encode_text(self, tokens):
        """Features ``[N, E]`` of token ids ``[N, L]`` (integers, 0 <= id < vocab_size,
        L <= context_length; a Tensor or an array of any device)."""
        ids, length = self._token_ids(tokens)  # [N, L] int; L' = the last EOT's position + 1
        ids = ids[:, :length]                  # [N, L']: the causal mask hides the rest
        n = ids.shape[0]
        x = self.token_embedding(ids) + self.positional_embedding[:length]   # [N, L', W]
        x = self.transformer(x)                                        # [N, L', W]
        x = self.ln_final(x)                                           # [N, L', W]
        xp = backend.get_array_module(ids)
        eot = ids.argmax(axis=-1)                                      # [N]
        x = x[xp.arange(n), eot]                                       # [N, W]
        return x @ self.text_projection                                # [N, E]

    def forward(self, tokens):
        return self.encode_text(tokens)

    def _token_ids(self, tokens):
        """``(ids, length)``: the ids as an integer array on the model's device, after
        checking their shape and range (an out-of-range id would otherwise fail deep
        inside, or silently wrap around on a GPU), and the number of positions up to the
        batch's last end-of-text token, the largest id of a row (``argmax``)."""
        weight = self.token_embedding.weight
        if isinstance(tokens, Tensor):
            tokens = tokens.data
        try:
            backend.device_of(tokens)
        except TypeError:  # a list of lists
            tokens = np.asarray(tokens)
        if tokens.dtype.kind not in "iu":
            raise TypeError(f"encode_text: token ids must be integers, got dtype {tokens.dtype} "
                            "(use the tokenizer's output, e.g. miniclip.tokenize(texts))")
        if tokens.ndim != 2:
            raise ValueError(f"encode_text: token ids must be 2-D [N, L] (one row per caption), "
                             f"got shape {tuple(tokens.shape)}")
        n, length = tokens.shape
        if length > self.context_length:
            raise ValueError(f"encode_text: token sequences of length {length} are longer than "
                             f"the model's context length {self.context_length}")
        if n == 0 or length == 0:
            raise ValueError(f"encode_text: got an empty batch of token ids, shape "
                             f"{tuple(tokens.shape)}")
        xp = backend.get_array_module(tokens)
        last_eot = tokens.argmax(axis=-1).max()
        low, high, last_eot = backend.to_numpy(  # one read from the device
            xp.stack([tokens.min(), tokens.max(), last_eot])).tolist()
        if low < 0 or high >= self.vocab_size:
            raise ValueError(f"encode_text: token ids must lie in [0, {self.vocab_size}) for "
                             f"this model's vocabulary of {self.vocab_size} ids, got values "
                             f"from {low} to {high}")
        return integer_indices(tokens, weight, "encode_text", "token ids"), last_eot + 1

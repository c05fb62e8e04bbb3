"""The captioning language model of the paper's Figure 2: CLIP's image tower, then a causal
transformer that writes the caption, the image's features being its first token.

The paper's first attempt (section 2.3) was to train an image CNN and a text transformer
together "to predict the caption of an image", as VirTex does; it learned ImageNet zero-shot
three times slower than predicting a bag of words. Here the image tower's features
``[N, E]`` go through a linear layer to the decoder's width and sit in front of the
caption as a *prefix*: every caption token attends to it (and, through the causal mask of
``text_transformer.causal_mask``, to the tokens before it), and predicts the next token::

    input      [prefix, SOT, w1, ..., wk, EOT]      (the last token is never an input)
    predicts   [  -   ,  w1, w2, ..., EOT]

The output layer is the token embedding read backwards (``logits = h Eᵀ``, weights tied as
in GPT-2), so the decoder has no second ``[W, V]`` table to learn from few examples.
The loss and the zero-shot scores are in ``training/captioning.py``.
"""
from .. import functional as F
from .. import nn
from .image_tower import images_like
from .text_transformer import causal_mask
from .transformer import Transformer


class ImageCaptioner(nn.Module):
    """``visual`` (an image tower ``[N, 3, R, R] -> [N, E]``) and a causal transformer decoder
    over BPE tokens of ``vocab_size`` ids, at most ``context_length`` per caption.

    ``forward(images, tokens [N, L]) -> logits [N, L - 1, V]`` of tokens 1..L-1 (the start
    token is not predicted). The embeddings start as the text tower's (N(0, 0.02²) and
    N(0, 0.01²)); the blocks keep their layers' default initialisation.
    """

    def __init__(self, visual, context_length, vocab_size, width, heads, layers):
        super().__init__()
        self.context_length, self.vocab_size = context_length, vocab_size
        self.visual = visual
        self.prefix = nn.Linear(visual.output_dim, width)
        self.token_embedding = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        # one position more than a caption: the prefix's
        self.positional_embedding = nn.init.normal_(nn.init.empty(context_length + 1, width),
                                                    std=0.01)
        self.transformer = Transformer(width, layers, heads,
                                       attn_mask=causal_mask(context_length + 1))
        self.ln_final = nn.LayerNorm(width)

    def encode_image(self, images):
        """The image tower's features ``[N, E]``."""
        return self.visual(images_like(images, self.prefix.weight))

    def prefixes(self, images):
        """The decoder's first token for each image, ``[N, W]``."""
        return self.prefix(self.encode_image(images))

    def decode(self, prefixes, tokens):
        """Next-token logits ``[N, L - 1, V]`` of ``tokens [N, L]`` after ``prefixes [N, W]``
        (so that one image's prefix can be reused for every prompt)."""
        n, length = tokens.shape
        if length > self.context_length:
            raise ValueError(f"ImageCaptioner: captions of {length} tokens are longer than "
                             f"the context length {self.context_length}")
        words = self.token_embedding(tokens[:, :-1])                        # [N, L-1, W]
        x = F.cat([prefixes.reshape(n, 1, -1), words], dim=1)               # [N, L, W]
        x = self.ln_final(self.transformer(x + self.positional_embedding[:length]))
        return x[:, 1:] @ self.token_embedding.weight.T                     # [N, L-1, V]

    def forward(self, images, tokens):
        return self.decode(self.prefixes(images), tokens)

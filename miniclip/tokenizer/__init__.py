"""CLIP's byte-level BPE tokenizer, from scratch.

Read the modules in this order:

* ``pretokenizer``: clean-up, pre-tokenisation and the byte -> character mapping;
* ``bpe``: merging symbol pairs, and learning which pairs to merge;
* ``bpe_tokenizer``: :class:`BPETokenizer`, which puts them together (encode,
  decode, the padded batch call, training, merges files);
* ``pretrained``: miniclip's shipped vocabulary and OpenAI's.

Quick start::

    from miniclip.tokenizer import tokenize, load_tokenizer
    ids = tokenize(["a photo of a red circle"])   # miniclip's vocabulary, [1, 77] int64
    clip_tokenizer = load_tokenizer()              # OpenAI's, if clip/open_clip is installed
"""

from .bpe_tokenizer import BPETokenizer
from .pretokenizer import clean_text, pretokenize
from .pretrained import default_tokenizer, load_tokenizer, tokenize

__all__ = [
    "BPETokenizer",
    "clean_text",
    "default_tokenizer",
    "load_tokenizer",
    "pretokenize",
    "tokenize",
]

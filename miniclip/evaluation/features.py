"""Frozen features for evaluation: image files -> embeddings, and the right tokenizer.

Every evaluation here works on the model's unit-length embeddings, computed once: the
zero-shot classifier, retrieval and the linear probe are all cheap arithmetic on them.
"""
import functools

import numpy as np

from ..data import Skipped
from ..data.images import preprocess_in_batches
from ..tokenizer import default_tokenizer, load_tokenizer
from .zeroshot import encode_images

#: The vocabulary size of OpenAI's released models (its tokenizer is not shipped).
OPENAI_VOCAB_SIZE = 49408


def tokenizer_for(model, merges=None):
    """``texts -> int64 [n, C]`` for ``model``'s vocabulary and context length ``C``.

    The vocabulary is told by its size: miniclip's own (4,096 ids, the tiny models) or
    OpenAI's (49,408 ids, the released models, whose merges file ``load_tokenizer`` finds
    in an installed ``clip``/``open_clip`` package, or at ``merges``: a file or a Hugging
    Face folder). Texts longer than ``C`` are cut, as evaluation suites do.
    """
    vocab_size = model.vocab_size
    if merges is not None or vocab_size == OPENAI_VOCAB_SIZE:
        tokenizer = load_tokenizer(merges)
    elif vocab_size == default_tokenizer().vocab_size:
        tokenizer = default_tokenizer()
    else:
        raise ValueError(f"the model's vocabulary has {vocab_size:,} ids, which is neither "
                         f"miniclip's ({default_tokenizer().vocab_size:,}) nor OpenAI's "
                         f"({OPENAI_VOCAB_SIZE:,}); pass the merges file it was trained with")
    if tokenizer.vocab_size != vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size:,} ids but the model "
                         f"{vocab_size:,}: they were not trained together")
    return functools.partial(tokenizer, context_length=model.context_length, truncate=True)


def encode_image_files(model, preprocess, paths, batch_size=256):
    """Unit-length embeddings of the image files that can be read.

    Returns ``(features [n, E] float32, indices [n] int64, skipped)``: ``indices`` are the
    positions in ``paths`` of the ``n`` readable images, ``skipped`` a
    :class:`~miniclip.data.problems.Skipped` of the rest (also issued as a
    warning). Images are decoded ``batch_size`` at a time, so memory holds one batch of
    pixels, not the whole folder.
    """
    skipped = Skipped()
    features, indices = [], []
    for batch_indices, images in preprocess_in_batches(paths, preprocess, batch_size, skipped):
        features.append(encode_images(model, images, batch_size))  # [b, E]
        indices.append(batch_indices)
    skipped.warn(len(paths))
    if not features:
        raise ValueError(f"none of the {len(paths)} image files could be read: "
                         f"{skipped.message(len(paths))}")
    return np.concatenate(features), np.concatenate(indices), skipped

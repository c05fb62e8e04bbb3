"""Whole words as tokens, for the bag-of-words objectives (``models/bag_of_words.py``).

A bag-of-words model sees which words a caption holds and nothing of their order, so it
wants one id per *word*. CLIP's byte-level BPE would not do: its pieces are not words
("coloured" is four pieces in miniclip's vocabulary, the last of which is "red"), so a
bag of BPE pieces would claim that every "green coloured square" mentions red.

Words are the runs of letters of the lower-cased text; id 0 is padding, and the words of
the vocabulary get the ids 1, 2, ... in alphabetical order. A word outside the vocabulary
is dropped (a bag has no "unknown" word to learn from).
"""
import re

import numpy as np

_WORD = re.compile(r"[a-z]+")

#: The id of padding (and of no word).
PAD_ID = 0


def split_words(text):
    """The words of ``text``: its runs of letters, lower-cased."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Texts -> word ids ``int64 [N, context_length]``, zero-padded.

    ``words``: the vocabulary (any iterable of words; duplicates are fine). Build one from
    example texts with :meth:`from_texts`.
    """

    def __init__(self, words):
        self.words = ("<pad>",) + tuple(sorted(set(words)))
        self.ids = {word: index for index, word in enumerate(self.words)}

    @classmethod
    def from_texts(cls, texts):
        """The vocabulary of every word in ``texts``."""
        return cls(word for text in texts for word in split_words(text))

    @property
    def vocab_size(self):
        """Ids in all, padding included."""
        return len(self.words)

    def encode(self, text):
        """The ids of the vocabulary words of ``text``, in order (a list of ints)."""
        return [self.ids[word] for word in split_words(text) if word in self.ids]

    def __call__(self, texts, context_length=16):
        """Ids ``int64 [N, context_length]`` of a list of texts, each row zero-padded; a
        text of more than ``context_length`` vocabulary words is an error."""
        ids = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            encoded = self.encode(text)
            if len(encoded) > context_length:
                raise ValueError(f"WordTokenizer: {text!r} has {len(encoded)} words, more "
                                 f"than context_length={context_length}; raise it")
            ids[row, :len(encoded)] = encoded
        return ids

    def bags(self, ids):
        """The multi-hot bags ``float32 [N, vocab_size]`` of word ids ``[N, L]``: 1 where a
        row holds the word (padding's column stays 0)."""
        ids = np.asarray(ids)
        bags = np.zeros((len(ids), self.vocab_size), dtype=np.float32)
        bags[np.arange(len(ids))[:, None], ids] = 1.0
        bags[:, PAD_ID] = 0.0
        return bags

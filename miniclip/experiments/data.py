"""The data every experiment shares, drawn once per seed: training pictures with their
captions in the three forms the objectives read, and the test pictures.

* ``images [N, 3, R, R]`` preprocessed as CLIP's, ``labels [N]`` (the 30 colour-shape
  classes, for the supervised classifier);
* ``tokens [N, L]``: BPE ids (CLIP, SigLIP, and, through ``caption_ids``, the captioner);
* ``words [N, W]``: word ids (``tokenizer.words``) for the bag-of-words objectives.

The captioner predicts only among the BPE ids the captions use (``CaptionVocabulary``):
a softmax over 40 ids instead of 4,096 makes its zero-shot scoring, one decoder pass per
(image, prompt) pair, a hundred times cheaper at the output layer, and changes nothing
else (every other id has no training example).
"""
import functools

import numpy as np

from ..data import ArrayDataset, CLIPCollate, SyntheticShapes
from ..data.synthetic import COLOURS, NOUN_PHRASES, OPENINGS, POSITIONS, SHAPES, SIZES
from ..evaluation.shapes import ShapesBenchmark
from ..models import TINY_CONFIGS
from ..tokenizer.words import WordTokenizer

#: The model every experiment trains (its image tower is the one all objectives share).
MODEL = "tiny-vit"

#: Word ids per caption: the longest synthetic caption has 12 words.
WORD_CONTEXT = 16

#: The single prompt template of "one template" (and of the objectives comparison).
ONE_TEMPLATE = ("a photo of a {}.",)


def caption_words():
    """Every word a synthetic caption can use (the vocabulary of the bag-of-words models)."""
    phrases = OPENINGS + NOUN_PHRASES + tuple(COLOURS) + SHAPES + tuple(SIZES) + tuple(
        text for _, text in POSITIONS.values())
    return WordTokenizer.from_texts(
        [phrase.format(colour="", shape="") for phrase in phrases])


class CaptionVocabulary:
    """The sorted BPE ids ``ids`` the captions use, and the map from BPE ids to their
    places in it (an order-preserving map, so the end-of-text token stays the largest)."""

    def __init__(self, tokens):
        self.ids = np.unique(tokens)

    def __len__(self):
        return len(self.ids)

    def __call__(self, tokens):
        """``tokens [N, L]`` as places in :attr:`ids`; an id outside it is an error."""
        places = np.searchsorted(self.ids, tokens)
        places = np.minimum(places, len(self.ids) - 1)
        if not np.array_equal(self.ids[places], tokens):
            raise ValueError("CaptionVocabulary: a prompt uses a token that no caption does")
        return places


class ShapesData:
    """One seed's training set (``train_size`` pictures, varied captions) and test
    benchmark (``test_size`` pictures, ``shifted_size`` per shifted set)."""

    def __init__(self, seed, train_size, test_size, shifted_size):
        config = TINY_CONFIGS[MODEL]
        self.seed = seed
        self.image_size = config["image_resolution"]
        self.collate = CLIPCollate.for_model(self.image_size, config["context_length"])
        self.word_tokenizer = caption_words()
        train_set = SyntheticShapes(train_size, self.image_size, split="train", seed=seed,
                                    captions="varied")
        word_ids = functools.partial(self.word_tokenizer, context_length=WORD_CONTEXT)
        images, tokens, words = ArrayDataset.prepare(
            train_set, lambda pairs: self.collate(pairs) + (word_ids([c for _, c in pairs]),)
        ).arrays
        used = np.flatnonzero(tokens.any(axis=0))  # padding-only columns change nothing
        self.images, self.tokens, self.words = images, tokens[:, :used[-1] + 1], words
        self.labels = train_set.labels()
        self.caption_vocabulary = CaptionVocabulary(self.tokens)
        self.benchmark = ShapesBenchmark(self.image_size, self.collate, test_size,
                                         shifted_size, seed=seed)
        self.classnames = self.benchmark.classnames
        #: the word ids of each class name ("red circle": those of "red" and "circle")
        self.class_words = [self.word_tokenizer.encode(name) for name in self.classnames]

    def batch(self, indices):
        """The training arrays of these items: a dict of images, tokens, words, labels."""
        return {"images": self.images[indices], "tokens": self.tokens[indices],
                "words": self.words[indices], "labels": self.labels[indices]}

    def prompt_tokens(self, templates):
        """BPE ids ``[K, T, L]`` of every class (K) in every template (T)."""
        sentences = [t.format(name) for name in self.classnames for t in templates]
        tokens = np.asarray(self.collate.tokenize(sentences))
        used = np.flatnonzero(tokens.any(axis=0))
        return tokens[:, :used[-1] + 1].reshape(len(self.classnames), len(templates), -1)

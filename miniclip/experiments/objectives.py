"""The training objectives the experiments compare, each on the same image tower and data.

An :class:`Objective` says how to build its model, what its loss of a batch is, and how
its model scores test pictures against the 30 classes (zero-shot, from prompts), so that
one training loop (``training.py``) and one evaluation serve them all:

==================  ========================================  ==============================
name                text side and loss                        zero-shot score of a class
==================  ========================================  ==============================
clip                text transformer, softmax contrast        cosine to its prompt embedding
siglip              text transformer, pairwise sigmoid        cosine to its prompt embedding
siglip-log-n        the same, its bias started at -log n      cosine to its prompt embedding
bow-contrastive     mean of word embeddings, softmax contrast cosine to its prompt embedding
bow-prediction      none: predict the caption's words         Σ log σ over its words
captioning          causal LM with the image as a prefix      log p(prompt | image)
supervised          none: cross-entropy on the 30 labels      the classifier's logit
==================  ========================================  ==============================

SigLIP's bias starts at -10 in the paper, about -log n of its batches of n = 32,768, where
it makes the prior "one pair in n matches" right (σ(-log n) ≈ 1/n). Adam moves a parameter
by about the learning rate per step, so in a few hundred steps at 1e-3 the bias stays near
where it starts; ``siglip-log-n`` starts it at -log n of the batch actually trained on.
"""
import dataclasses
import functools
import math
from typing import Callable

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad
from ..evaluation.zeroshot import encode_images, zero_shot_classifier
from ..models import TINY_CONFIGS, create_model
from ..models.bag_of_words import BagOfWordsCLIP, BagOfWordsPredictor
from ..models.captioner import ImageCaptioner
from ..models.image_tower import ImageClassifier, image_tower
from ..training.bag_of_words import bag_of_words_loss, class_word_scores
from ..training.captioning import caption_scores, captioning_loss
from ..training.loss import clip_loss
from ..training.siglip import SIGLIP_LOGIT_BIAS_INIT, SigmoidLoss, init_siglip_scale_
from .data import MODEL, WORD_CONTEXT

#: Test pictures are scored this many at a time.
CHUNK = 256


@dataclasses.dataclass(frozen=True)
class Objective:
    """``build(data, batch_size) -> model`` (an ``nn.Module`` holding every trained parameter),
    ``loss(model, data, batch) -> Tensor`` (``batch``: ``ShapesData.batch``), and
    ``scores(model, data, images, templates) -> [N, 30]`` NumPy zero-shot scores."""

    name: str
    label: str
    build: Callable
    loss: Callable
    scores: Callable


class SigLIP(nn.Module):
    """A CLIP trained with SigLIP's loss: ``clip`` (scale started at 10) and ``loss``
    (the learned bias, started at ``bias``), so that one optimiser trains both."""

    def __init__(self, bias=SIGLIP_LOGIT_BIAS_INIT):
        super().__init__()
        self.clip = init_siglip_scale_(create_model(MODEL))
        self.loss = SigmoidLoss(bias)

    @property
    def logit_scale(self):
        """The CLIP's learned log-scale (which the training step caps)."""
        return self.clip.logit_scale


def contrastive_scores(model, images, classnames, templates, tokenize):
    """Cosine similarities ``[N, K]`` of the images to each class's prompt embedding."""
    classifier = zero_shot_classifier(model, classnames, templates, tokenize)   # [E, K]
    return encode_images(model, images, CHUNK) @ classifier


def image_outputs(forward, images):
    """``forward`` (images -> Tensor [n, K]) of ``images`` in chunks, as NumPy ``[N, K]``."""
    with no_grad():
        return np.concatenate([forward(images[start:start + CHUNK]).numpy()
                               for start in range(0, len(images), CHUNK)])


def _clip_scores(model, data, images, templates):
    return contrastive_scores(model, images, data.classnames, templates, data.collate.tokenize)


def _siglip_loss(model, data, batch):
    return model.loss(*model.clip(batch["images"], batch["tokens"]))


def _siglip_scores(model, data, images, templates):
    return _clip_scores(model.clip, data, images, templates)


def _word_ids(data):
    return functools.partial(data.word_tokenizer, context_length=WORD_CONTEXT)


def _captioner(data, batch_size):
    config = TINY_CONFIGS[MODEL]
    return ImageCaptioner(image_tower(MODEL), config["context_length"],
                          len(data.caption_vocabulary), config["transformer_width"],
                          config["transformer_heads"], config["transformer_layers"])


def _caption_loss(model, data, batch):
    tokens = data.caption_vocabulary(batch["tokens"])
    return captioning_loss(model(batch["images"], tokens), tokens)


def _caption_scores(model, data, images, templates):
    prompts = [data.caption_vocabulary(p) for p in data.prompt_tokens(templates)]  # K x [T, L]
    return caption_scores(model, images, prompts, CHUNK)


OBJECTIVES = {objective.name: objective for objective in [
    Objective("clip", "CLIP (transformer, softmax)",
              build=lambda data, batch_size: create_model(MODEL),
              loss=lambda model, data, batch: clip_loss(*model(batch["images"], batch["tokens"])),
              scores=_clip_scores),
    Objective("siglip", "SigLIP (transformer, sigmoid)",
              build=lambda data, batch_size: SigLIP(), loss=_siglip_loss, scores=_siglip_scores),
    Objective("siglip-log-n", "SigLIP, bias started at -log n",
              build=lambda data, batch_size: SigLIP(-math.log(batch_size)), loss=_siglip_loss,
              scores=_siglip_scores),
    Objective("bow-contrastive", "bag-of-words contrastive",
              build=lambda data, batch_size: BagOfWordsCLIP(image_tower(MODEL),
                                                            data.word_tokenizer.vocab_size),
              loss=lambda model, data, batch: clip_loss(*model(batch["images"], batch["words"])),
              scores=lambda model, data, images, templates: contrastive_scores(
                  model, images, data.classnames, templates, _word_ids(data))),
    Objective("bow-prediction", "bag-of-words prediction",
              build=lambda data, batch_size: BagOfWordsPredictor(
                  image_tower(MODEL), data.word_tokenizer.vocab_size),
              loss=lambda model, data, batch: bag_of_words_loss(
                  model(batch["images"]), data.word_tokenizer.bags(batch["words"])),
              scores=lambda model, data, images, templates: class_word_scores(
                  image_outputs(model, images), data.class_words)),
    Objective("captioning", "transformer captioning LM",
              build=_captioner, loss=_caption_loss, scores=_caption_scores),
    Objective("supervised", "supervised classifier (30 labels)",
              build=lambda data, batch_size: ImageClassifier(image_tower(MODEL),
                                                             len(data.classnames)),
              loss=lambda model, data, batch: F.cross_entropy(model(batch["images"]),
                                                              batch["labels"]),
              scores=lambda model, data, images, templates: image_outputs(model, images)),
]}


def image_features(model, images):
    """Unit-length image-tower features ``[N, E]`` of any objective's model (for the linear
    probes): every model here has ``encode_image``, or holds a CLIP that does."""
    return encode_images(getattr(model, "clip", model), images, CHUNK)

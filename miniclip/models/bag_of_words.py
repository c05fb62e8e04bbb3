"""Two bag-of-words models on CLIP's image tower: the paper's Figure 2 baselines.

The paper's path to CLIP went through cheaper text sides (section 2.3, Figure 2): first a
model that *predicts* the words of the caption from the image, then one that only tells
which caption of the batch goes with the image, its text encoded as a bag of words. Both
forget word order, as a bag does; ids come from ``tokenizer.words.WordTokenizer``
(0 is padding).

* :class:`BagOfWordsPredictor` — image features -> one logit per vocabulary word, trained
  to say which words the caption holds (``training/bag_of_words.py``). Zero-shot: a class
  scores the summed log-probabilities of its own words ("red", "circle").
* :class:`BagOfWordsCLIP` — CLIP with the continuous bag of words (CBOW) as its text
  encoder: the mean of the caption's word embeddings, trained with CLIP's loss.
"""
import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor
from ..tokenizer.words import PAD_ID
from .image_tower import ImageClassifier, images_like


class BagOfWordsEncoder(nn.Module):
    """The CBOW text tower: word ids ``[N, L]`` -> the mean of their embeddings ``[N, E]``.

    With m_nl = 1 for a word and 0 for padding and c_n = max(Σ_l m_nl, 1)::

        y_n = Σ_l m_nl e[ids_nl] / c_n

    Its backward is that of the ops it is made of (embedding, product, sum, division):
    dL/de[w] = Σ over the places (n, l) holding w of m_nl dL/dy_n / c_n, so every word of a
    caption gets an equal share of the caption's gradient and padding none.
    """

    def __init__(self, vocab_size, embed_dim):
        super().__init__()
        self.vocab_size = vocab_size
        self.word_embedding = nn.Embedding(vocab_size, embed_dim)
        nn.init.normal_(self.word_embedding.weight, std=embed_dim ** -0.5)

    def forward(self, ids):                                          # ids: [N, L] int
        ids = backend.to_numpy(ids.data if isinstance(ids, Tensor) else np.asarray(ids))
        weight = self.word_embedding.weight
        mask = (ids != PAD_ID).astype(weight.dtype)                  # [N, L]
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1.0)    # [N, 1]
        mask = Tensor(weight.device.to_device(mask[:, :, None]))    # [N, L, 1]
        counts = Tensor(weight.device.to_device(counts))
        return (self.word_embedding(ids) * mask).sum(dim=1) / counts  # [N, E]


class BagOfWordsCLIP(nn.Module):
    """CLIP with a bag-of-words text encoder: ``visual`` (an image tower ``[N, 3, R, R] ->
    [N, E]``) and a :class:`BagOfWordsEncoder`, scored as CLIP scores (``models/clip.py``):
    ``exp(logit_scale)`` times the cosine similarities, the scale starting at 1/0.07."""

    def __init__(self, visual, vocab_size):
        super().__init__()
        self.visual = visual
        self.text = BagOfWordsEncoder(vocab_size, visual.output_dim)
        self.logit_scale = nn.Parameter(np.array(np.log(1 / 0.07), dtype=np.float32))

    def encode_image(self, images):
        return self.visual(images_like(images, self.logit_scale))            # [N, E]

    def encode_text(self, ids):
        return self.text(ids)                                        # [N, E]

    def forward(self, images, ids):
        """``(logits_per_image [N, N], logits_per_text [N, N])``, as ``CLIP.forward``."""
        image_features = F.normalize(self.encode_image(images), dim=-1)
        text_features = F.normalize(self.encode_text(ids), dim=-1)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.T
        return logits_per_image, logits_per_image.T


class BagOfWordsPredictor(ImageClassifier):
    """Image tower + a linear layer: images ``[N, 3, R, R]`` -> word logits ``[N, V]``,
    the logit of word w being how sure the model is that the caption says w (the
    supervised classifier's network, with one output per vocabulary word)."""

    def __init__(self, visual, vocab_size):
        super().__init__(visual, vocab_size)


"""Zero-shot classification: the classifier is the normalised mean of normalised prompt
embeddings, predictions are a softmax over scaled cosine similarities."""
import numpy as np
import pytest
from tolerances import assert_close_to_round_off

from miniclip import nn
from miniclip.evaluation.zeroshot import (
    accuracy,
    similarity_matrix,
    zero_shot_classifier,
    zero_shot_predict,
)


class LookupCLIP(nn.Module):
    """A hand-built "CLIP" whose encoders are linear maps we can compute by hand.

    A text's embedding is the sum of its tokens' rows of ``text_table`` (token 0, padding,
    embeds to zero); an image's embedding is its mean pixel per channel times ``image_map``.
    """

    def __init__(self, text_table, image_map, logit_scale, device="cpu"):
        super().__init__()
        self.text_table = nn.Parameter(np.asarray(text_table, dtype=np.float32))  # [V, E]
        self.image_map = nn.Parameter(np.asarray(image_map, dtype=np.float32))    # [3, E]
        self.logit_scale = nn.Parameter(np.float32(logit_scale))
        self.to(device)

    def encode_text(self, tokens):  # [N, C] -> [N, E]
        return self.text_table[tokens.data].sum(dim=1)

    def encode_image(self, images):  # [N, 3, R, R] -> [N, E]
        return images.mean(dim=(2, 3)) @ self.image_map


def word_tokenizer(vocabulary):
    """Sentences -> [N, 4] ids: one id per known word (1-based), 0-padded."""
    def tokenize(sentences):
        ids = np.zeros((len(sentences), 4), dtype=np.int64)
        for row, sentence in enumerate(sentences):
            words = [w for w in sentence.replace(".", "").split() if w in vocabulary]
            ids[row, :len(words)] = [vocabulary.index(w) + 1 for w in words]
        return ids
    return tokenize


VOCABULARY = ["a", "photo", "red", "blue", "drawing"]
LOG_TEN = float(np.log(10.0))


def build(device="cpu", logit_scale=LOG_TEN):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(VOCABULARY) + 1, 3))
    table[0] = 0  # padding
    return LookupCLIP(table, rng.normal(size=(3, 3)), logit_scale, device), table


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_classifier_is_normalised_mean_of_normalised_template_embeddings(device):
    model, table = build(device)
    templates = ["a photo {}", "a drawing {}"]
    classifier = zero_shot_classifier(model, ["red", "blue"], templates, word_tokenizer(VOCABULARY))
    ids = {w: i + 1 for i, w in enumerate(VOCABULARY)}
    expected = []
    for name in ["red", "blue"]:
        per_template = [unit(table[[ids[w] for w in t.format(name).split()]].sum(0))
                        for t in templates]
        expected.append(unit(np.mean(per_template, axis=0)))
    assert classifier.shape == (3, 2)
    assert_close_to_round_off(classifier, np.stack(expected, axis=1))
    np.testing.assert_allclose(np.linalg.norm(classifier, axis=0), 1.0, rtol=1e-6)


def test_predict_is_softmax_of_scaled_cosine_similarities(device):
    model, _ = build(device, logit_scale=np.log(10.0))
    classifier = zero_shot_classifier(model, ["red", "blue"], ["a photo {}"],
                                      word_tokenizer(VOCABULARY))
    images = np.random.default_rng(1).normal(size=(5, 3, 4, 4)).astype(np.float32)
    probabilities = zero_shot_predict(model, images, classifier, batch_size=2)
    features = unit(images.mean(axis=(2, 3)) @ model.image_map.numpy())
    logits = 10.0 * features @ classifier
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)


def test_accuracy_counts_labels_among_the_top_k_scores():
    scores = np.array([[0.7, 0.2, 0.1],   # top-1 0, top-2 {0, 1}
                       [0.1, 0.3, 0.6],   # top-1 2, top-2 {2, 1}
                       [0.5, 0.1, 0.4]])  # top-1 0, top-2 {0, 2}
    labels = np.array([0, 1, 2])
    assert accuracy(scores, labels) == pytest.approx(1 / 3)
    assert accuracy(scores, labels, k=2) == pytest.approx(1.0)


def test_similarity_matrix_is_cosine_of_image_and_text_embeddings(device):
    model, table = build(device)
    images = np.random.default_rng(2).normal(size=(3, 3, 2, 2)).astype(np.float32)
    tokens = np.array([[1, 3, 0, 0], [4, 0, 0, 0]])
    similarity = similarity_matrix(model, images, tokens)
    image_features = unit(images.mean(axis=(2, 3)) @ model.image_map.numpy())
    text_features = unit(np.stack([table[[1, 3]].sum(0), table[4]]))
    assert similarity.shape == (3, 2)
    assert_close_to_round_off(similarity, image_features @ text_features.T)
    assert np.all(np.abs(similarity) <= 1 + 1e-6)

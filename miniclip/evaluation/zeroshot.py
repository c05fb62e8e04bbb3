"""Zero-shot classification with a CLIP model, as in the CLIP paper (section 3.1).

CLIP was never trained to classify, yet it can: write each class name into a sentence
("a photo of a {red circle}."), embed the sentences with the text encoder, and give an
image the class whose sentence embedding is most similar to the image embedding. The
text embeddings act as the weights of a linear classifier that nobody trained.

The paper improves this with *prompt ensembling*: embed each class with several
templates, L2-normalise every embedding, average them and normalise the average. The
average points at what the phrasings have in common — the class — and washes out what
depends on one wording.

Everything here runs without recording a graph and returns NumPy (host) arrays, ready
to print or plot:

* :func:`zero_shot_classifier` — class names x templates -> classifier ``[E, K]``;
* :func:`zero_shot_predict` — images -> class probabilities ``[N, K]``;
* :func:`accuracy` — top-k accuracy of probabilities (or logits) against labels;
* :func:`similarity_matrix` — cosine similarities of images and texts ``[N_img, N_txt]``.
"""
import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad


def _model_device(model):
    """The device of the model's parameters (where its inputs must go)."""
    return next(iter(model.parameters())).device


def _normalized_rows(x):
    """Each row of the array ``x [N, E]`` divided by its Euclidean norm."""
    xp = backend.get_array_module(x)
    return x / xp.sqrt((x * x).sum(axis=-1, keepdims=True))


def _encode_in_chunks(encode, inputs, device, batch_size):
    """``encode`` applied to ``inputs`` (a NumPy array) ``batch_size`` rows at a time;
    the L2-normalised features ``[N, E]`` as float32 NumPy."""
    features = []
    with no_grad():
        for start in range(0, len(inputs), batch_size):
            chunk = Tensor(np.asarray(inputs[start:start + batch_size]), device=device)
            out = encode(chunk).data.astype("float32")  # [n, E] on the device
            features.append(backend.to_numpy(_normalized_rows(out)))
    return np.concatenate(features)


def encode_images(model, images, batch_size=256):
    """Unit-length image embeddings ``[N, E]`` of preprocessed images ``[N, 3, R, R]``."""
    return _encode_in_chunks(model.encode_image, images, _model_device(model), batch_size)


def encode_texts(model, tokens, batch_size=256):
    """Unit-length text embeddings ``[N, E]`` of token ids ``[N, C]``, in their order.

    The rows are encoded in chunks of similar length: sorted by the position of their
    end-of-text token (the largest id of a row), since ``encode_text`` runs the text tower
    only up to the last one of its batch, so one long prompt widens only its own chunk.
    """
    tokens = np.asarray(tokens)
    order = np.argsort(tokens.argmax(axis=-1), kind="stable")           # shortest first
    sorted_features = _encode_in_chunks(model.encode_text, tokens[order], _model_device(model),
                                        batch_size)                      # [N, E], sorted
    features = np.empty_like(sorted_features)
    features[order] = sorted_features                                   # the caller's order
    return features


def zero_shot_classifier(model, classnames, templates, tokenizer):
    """The zero-shot classifier: one unit-length text embedding per class, ``[E, K]``.

    For class ``k`` every template is filled in (``template.format(classnames[k])``), the
    ``T`` sentences are embedded and normalised, averaged, and the average normalised again.

    Args:
        model: a CLIP model (``encode_text``).
        classnames: ``K`` class names, e.g. ``["red circle", "blue square"]``.
        templates: ``T`` format strings with one ``{}``, e.g. ``["a photo of a {}."]``.
        tokenizer: list of sentences -> token ids ``[n, C]`` matching the model's context
            length, e.g. ``functools.partial(miniclip.tokenize, context_length=C)``.

    Returns a float32 NumPy array ``[E, K]``: column ``k`` is class ``k``'s embedding, so
    ``image_features @ classifier`` gives cosine similarities ``[N, K]``.
    """
    sentences = [template.format(name) for name in classnames for template in templates]
    features = encode_texts(model, np.asarray(tokenizer(sentences)))  # [K*T, E]
    per_class = features.reshape(len(classnames), len(templates), -1)   # [K, T, E]
    return _normalized_rows(per_class.mean(axis=1)).T                  # [E, K]


def zero_shot_predict(model, images, classifier, batch_size=256):
    """Class probabilities ``[N, K]`` of preprocessed images ``[N, 3, R, R]``.

    The logits are the cosine similarities times the model's learned scale
    ``exp(logit_scale)`` — the same logits CLIP was trained on — and the probabilities their
    softmax over the ``K`` classes. (The ranking, and so the accuracy, does not depend on
    the scale; the probabilities' confidence does.)
    """
    scale = float(np.exp(model.logit_scale.item()))
    logits = scale * (encode_images(model, images, batch_size) @ classifier)  # [N, K]
    logits -= logits.max(axis=1, keepdims=True)  # softmax is shift-invariant; exp can't overflow
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def accuracy(scores, labels, k=1):
    """Fraction of rows whose true label is among the ``k`` highest ``scores``.

    ``scores [N, K]`` may be probabilities or logits (only their order matters);
    ``labels [N]`` are class indices.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    top_k = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # [N, k]
    return float((top_k == labels[:, None]).any(axis=1).mean())


def similarity_matrix(model, images, tokens, batch_size=256):
    """Cosine similarity of every image with every text, ``[N_img, N_txt]`` in [-1, 1].

    ``images [N_img, 3, R, R]`` are preprocessed images, ``tokens [N_txt, C]`` token ids.
    Plot it with ``matplotlib.pyplot.imshow`` to see which captions CLIP matches to which
    pictures: after training, the diagonal of matching pairs lights up.
    """
    return encode_images(model, images, batch_size) @ encode_texts(model, tokens, batch_size).T


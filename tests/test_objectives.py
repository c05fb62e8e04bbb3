"""The paper's Figure 2 objectives beside CLIP's: bag-of-words prediction and contrast, and
the captioning language model (``models/bag_of_words.py``, ``models/captioner.py``,
``training/bag_of_words.py``, ``training/captioning.py``, ``tokenizer/words.py``).
Every new gradient is checked in float64 against finite differences on both devices."""
import math

import numpy as np
import pytest

from miniclip import backend, nn
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import gradcheck
from miniclip.models import VisionTransformer
from miniclip.models.bag_of_words import BagOfWordsCLIP, BagOfWordsEncoder, BagOfWordsPredictor
from miniclip.models.captioner import ImageCaptioner
from miniclip.models.image_tower import image_tower
from miniclip.tokenizer.words import WordTokenizer, split_words
from miniclip.training.bag_of_words import bag_of_words_loss, class_word_scores
from miniclip.training.captioning import (
    caption_log_likelihood,
    caption_scores,
    captioning_loss,
    target_mask,
)
from miniclip.training.loss import clip_loss

#: Token rows as the BPE tokenizer makes them: start 9, words, end-of-text 10 (the largest
#: id), then padding 0.
TOKENS = np.array([[9, 3, 4, 10, 0], [9, 5, 10, 0, 0], [9, 1, 2, 6, 10]])
VOCAB = 11


def micro_tower(device, dtype=np.float64):
    """A one-layer ViT of 8x8 pictures in 4x4 patches, features of size 6."""
    return VisionTransformer(input_resolution=8, patch_size=4, width=8, layers=1, heads=2,
                             output_dim=6).to(dtype).to(device)


def micro_images(count=3, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((count, 3, 8, 8)).astype(dtype)


def tensor(array, device, requires_grad=False):
    return Tensor(backend.get_device(device).to_device(np.asarray(array)),
                  requires_grad=requires_grad)


# ------------------------------------------------------------------ words
def test_words_are_the_lower_cased_runs_of_letters():
    assert split_words("There is a Circle that is red.") == ["there", "is", "a", "circle",
                                                             "that", "is", "red"]


def test_word_ids_are_alphabetical_from_1_and_padded_with_0():
    tokenizer = WordTokenizer.from_texts(["a red circle.", "a blue square"])
    assert tokenizer.words == ("<pad>", "a", "blue", "circle", "red", "square")
    np.testing.assert_array_equal(tokenizer(["red circle", "a green square."], 4),
                                  [[4, 3, 0, 0], [1, 5, 0, 0]])  # "green" is unknown: dropped


def test_coloured_does_not_put_red_in_the_bag():
    tokenizer = WordTokenizer.from_texts(["a green coloured square", "a red circle"])
    bag = tokenizer.bags(tokenizer(["a green coloured square"]))[0]
    assert bag[tokenizer.ids["red"]] == 0 and bag[tokenizer.ids["coloured"]] == 1
    assert bag.sum() == 4 and bag[0] == 0


def test_a_caption_longer_than_the_context_is_an_error_naming_the_fix():
    with pytest.raises(ValueError, match="raise it"):
        WordTokenizer(["a"])(["a a a"], context_length=2)


# ------------------------------------------------------------------ bag-of-words models
def test_bag_of_words_encoder_is_the_mean_of_the_word_embeddings_ignoring_padding(device):
    encoder = BagOfWordsEncoder(5, 3).to(np.float64).to(device)
    table = encoder.word_embedding.weight.numpy()
    out = encoder(np.array([[1, 2, 2, 0], [4, 0, 0, 0], [0, 0, 0, 0]])).numpy()
    np.testing.assert_allclose(out[0], (table[1] + 2 * table[2]) / 3, rtol=1e-12)
    np.testing.assert_allclose(out[1], table[4], rtol=1e-12)
    np.testing.assert_array_equal(out[2], 0.0)  # no word: zeros, not 0/0


def test_bag_of_words_encoder_gradients(device):
    nn.manual_seed(0)
    encoder = BagOfWordsEncoder(6, 4).to(np.float64).to(device)
    ids = np.array([[1, 3, 3, 0], [5, 2, 0, 0]])  # a repeated word gets twice the share
    gradcheck(encoder, [ids], params=encoder.named_parameters())


def test_bag_of_words_clip_loss_gradients(device):
    nn.manual_seed(0)
    model = BagOfWordsCLIP(micro_tower(device), vocab_size=7).to(np.float64).to(device)
    images = tensor(micro_images(), device, requires_grad=True)
    ids = np.array([[1, 2, 0], [3, 4, 5], [6, 1, 0]])
    gradcheck(lambda x: clip_loss(*model(x, ids)), [images], params=model.named_parameters(),
              mode="directional")


def test_bag_of_words_prediction_gradient_is_sigmoid_minus_the_bag_over_n(device):
    logits = tensor(np.random.default_rng(0).standard_normal((3, 5)), device, requires_grad=True)
    bags = np.array([[0, 1, 1, 0, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]], dtype=np.float64)
    bag_of_words_loss(logits, bags).backward()
    expected = (1 / (1 + np.exp(-logits.numpy())) - bags) / 3
    np.testing.assert_allclose(backend.to_numpy(logits.grad), expected, rtol=1e-12)


def test_bag_of_words_prediction_loss_gradients(device):
    nn.manual_seed(0)
    model = BagOfWordsPredictor(micro_tower(device), vocab_size=5).to(np.float64).to(device)
    images = tensor(micro_images(), device, requires_grad=True)
    bags = np.array([[0, 1, 1, 0, 0], [1, 0, 0, 0, 1], [0, 0, 1, 1, 1]])
    gradcheck(lambda x: bag_of_words_loss(model(x), bags), [images],
              params=model.named_parameters(), mode="directional")


def test_a_class_scores_the_log_probability_of_its_own_words():
    logits = np.array([[2.0, -1.0, 0.0]])
    scores = class_word_scores(logits, [[0, 2], [1]])
    sig = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.0])))
    np.testing.assert_allclose(scores, [[math.log(sig[0] * sig[2]), math.log(sig[1])]])


# ------------------------------------------------------------------ captioning
def micro_captioner(device, dtype=np.float64):
    nn.manual_seed(0)
    return ImageCaptioner(micro_tower(device, dtype), context_length=5, vocab_size=VOCAB,
                          width=8, heads=2, layers=1).to(dtype).to(device)


def test_the_targets_are_the_tokens_after_the_start_up_to_the_end_of_text():
    np.testing.assert_array_equal(target_mask(TOKENS), [[1, 1, 1, 0], [1, 1, 0, 0],
                                                        [1, 1, 1, 1]])


def test_captioning_loss_gradients(device):
    model = micro_captioner(device)
    images = tensor(micro_images(), device, requires_grad=True)
    gradcheck(lambda x: captioning_loss(model(x, TOKENS), TOKENS), [images],
              params=model.named_parameters(), mode="directional")


def test_captioning_loss_is_the_mean_negative_log_likelihood_per_target_token(device):
    model = micro_captioner(device)
    logits = model(micro_images(), TOKENS)
    assert logits.shape == (3, 4, VOCAB)
    per_caption = caption_log_likelihood(logits, TOKENS)                 # [3]
    targets = target_mask(TOKENS).sum()                                   # 3 + 2 + 4
    assert captioning_loss(logits, TOKENS).item() == pytest.approx(
        -per_caption.sum() / targets, rel=1e-10)


def test_padding_and_later_tokens_do_not_change_the_likelihood_of_the_caption(device):
    model = micro_captioner(device)
    padded = TOKENS.copy()
    padded[1, 3:] = [7, 8]  # after the end of text: neither targets nor seen by earlier ones
    np.testing.assert_allclose(caption_log_likelihood(model(micro_images(), padded), padded),
                               caption_log_likelihood(model(micro_images(), TOKENS), TOKENS),
                               rtol=1e-12)


def test_the_caption_depends_on_the_image_through_the_prefix(device):
    model = micro_captioner(device)
    one = caption_log_likelihood(model(micro_images(seed=0), TOKENS), TOKENS)
    other = caption_log_likelihood(model(micro_images(seed=1), TOKENS), TOKENS)
    assert np.abs(one - other).min() > 1e-6


def test_caption_scores_average_the_templates_of_each_class(device):
    model = micro_captioner(device)
    images = micro_images()
    prompts = [TOKENS[:2], TOKENS[2:]]  # class 0: two templates; class 1: one
    scores = caption_scores(model, images, prompts, batch_size=2)
    every = [caption_log_likelihood(model(images, np.repeat(row[None], 3, axis=0)),
                                    np.repeat(row[None], 3, axis=0)) for row in TOKENS]
    np.testing.assert_allclose(scores, np.stack([(every[0] + every[1]) / 2, every[2]], 1),
                               rtol=1e-10)


def test_every_objective_starts_from_the_same_image_tower_for_one_seed():
    nn.manual_seed(3)
    first = image_tower().conv1.weight.numpy()
    nn.manual_seed(3)
    from miniclip.models import create_model
    np.testing.assert_array_equal(create_model("tiny-vit").visual.conv1.weight.numpy(), first)

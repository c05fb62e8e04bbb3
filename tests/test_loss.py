"""CLIP's symmetric contrastive loss (paper Fig. 3) and its learned temperature."""
import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import gradcheck
from miniclip.nn import Parameter
from miniclip.training.loss import (
    LOGIT_SCALE_INIT,
    LOGIT_SCALE_MAX,
    clamp_logit_scale_,
    clip_loss,
    clip_loss_from_features,
    cross_entropy_loss,
)

N, D_I, D_T, D_E = 4, 5, 3, 6


def tensor(array, device, requires_grad=False):
    return Tensor(backend.get_device(device).to_device(np.asarray(array)),
                  requires_grad=requires_grad)


def pseudocode_inputs(device, seed=0):
    """I_f, T_f, W_i, W_t, t in float64 (for finite differences), all requiring grad."""
    rng = np.random.default_rng(seed)
    shapes = [(N, D_I), (N, D_T), (D_I, D_E), (D_T, D_E)]
    arrays = [rng.standard_normal(s) for s in shapes] + [np.array(LOGIT_SCALE_INIT)]
    return [tensor(a, device, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name, index", [("I_f", 0), ("T_f", 1), ("W_i", 2), ("W_t", 3),
                                         ("t", 4)])
def test_gradient_of_the_pseudocode_loss_matches_finite_differences(device, name, index):
    inputs = pseudocode_inputs(device)
    for i, x in enumerate(inputs):
        x.requires_grad = i == index
    report = gradcheck(clip_loss_from_features, inputs)
    assert report.passed, f"gradient with respect to {name}:\n{report}"


def test_swapping_images_and_texts_gives_the_same_loss(device):
    I_f, T_f, W_i, W_t, t = pseudocode_inputs(device)
    forward = clip_loss_from_features(I_f, T_f, W_i, W_t, t).item()
    swapped = clip_loss_from_features(T_f, I_f, W_t, W_i, t).item()
    assert swapped == pytest.approx(forward, rel=1e-12)


def test_loss_from_logits_is_symmetric_in_its_two_matrices(device):
    logits = tensor(np.random.default_rng(1).standard_normal((N, N)), device)
    assert clip_loss(logits, logits.T).item() == pytest.approx(clip_loss(logits.T, logits).item())
    assert clip_loss(logits).item() == pytest.approx(clip_loss(logits, logits.T).item())


def test_loss_from_logits_equals_the_pseudocode_loss(device):
    I_f, T_f, W_i, W_t, t = pseudocode_inputs(device)
    I_e = (I_f @ W_i).numpy()
    T_e = (T_f @ W_t).numpy()
    I_e /= np.linalg.norm(I_e, axis=1, keepdims=True)
    T_e /= np.linalg.norm(T_e, axis=1, keepdims=True)
    logits_per_image = tensor(I_e @ T_e.T * np.exp(LOGIT_SCALE_INIT), device)
    expected = clip_loss_from_features(I_f, T_f, W_i, W_t, t).item()
    assert clip_loss(logits_per_image, logits_per_image.T).item() == pytest.approx(expected,
                                                                                  rel=1e-12)


def test_value_equals_cross_entropy_by_hand(device):
    # logits[i, j]: image i against text j. Rows: each image's softmax over the 2 texts;
    # columns: each text's softmax over the 2 images. -log(e^a / (e^a + e^b)) = log(1 + e^(b-a)).
    logits = tensor([[2.0, 0.0], [1.0, 3.0]], device)
    row_image_0 = math.log(1 + math.exp(0.0 - 2.0))   # true text 0 scores 2, text 1 scores 0
    row_image_1 = math.log(1 + math.exp(1.0 - 3.0))
    col_text_0 = math.log(1 + math.exp(1.0 - 2.0))    # true image 0 scores 2, image 1 scores 1
    col_text_1 = math.log(1 + math.exp(0.0 - 3.0))
    loss_t = (row_image_0 + row_image_1) / 2
    loss_i = (col_text_0 + col_text_1) / 2
    assert clip_loss(logits).item() == pytest.approx((loss_i + loss_t) / 2, rel=1e-6)
    labels = [0, 1]
    assert cross_entropy_loss(logits, labels, axis=1).item() == pytest.approx(loss_t, rel=1e-6)
    assert cross_entropy_loss(logits, labels, axis=0).item() == pytest.approx(loss_i, rel=1e-6)


def test_aligned_embeddings_drive_the_loss_to_zero_as_the_scale_grows(device):
    # Each image feature equals its text's and the pairs are orthogonal: cosine 1 on the
    # diagonal, 0 elsewhere, so every softmax term is -log(e^s / (e^s + (n-1))).
    features = tensor(np.eye(N), device)
    W = tensor(np.eye(N), device)
    losses = []
    for scale in (1.0, 10.0, 30.0, 100.0):
        t = tensor(np.array(math.log(scale)), device)
        loss = clip_loss_from_features(features, features, W, W, t).item()
        assert loss == pytest.approx(math.log(1 + (N - 1) * math.exp(-scale)), rel=1e-9, abs=1e-15)
        losses.append(loss)
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-40


def test_mismatched_pairs_are_penalised_more_than_matched_ones(device):
    t = tensor(np.array(LOGIT_SCALE_INIT), device)
    features = tensor(np.eye(N), device)
    W = tensor(np.eye(N), device)
    matched = clip_loss_from_features(features, features, W, W, t).item()
    shuffled = tensor(np.eye(N)[[1, 0, 3, 2]], device)       # text k describes image k xor 1
    assert clip_loss_from_features(features, shuffled, W, W, t).item() > matched + 1


def test_float16_logits_give_a_float32_loss(device):
    logits = np.random.default_rng(2).standard_normal((N, N)) * 20
    half = clip_loss(tensor(logits.astype(np.float16), device))
    assert half.dtype == np.float32
    exact = clip_loss(tensor(logits.astype(np.float16).astype(np.float64), device)).item()
    assert half.item() == pytest.approx(exact, rel=1e-6)


def test_non_square_logits_are_rejected():
    with pytest.raises(ValueError, match="square"):
        clip_loss(Tensor(np.zeros((3, 4), np.float32)))


# ------------------------------------------------------------------ the learned temperature
def test_temperature_starts_at_0_07_and_the_scale_is_capped_at_100():
    assert math.exp(LOGIT_SCALE_INIT) == pytest.approx(1 / 0.07)
    assert math.exp(LOGIT_SCALE_MAX) == pytest.approx(100.0)


def test_clamp_logit_scale_caps_the_parameter_in_place(device):
    t = Parameter(backend.get_device(device).to_device(np.array(5.0, np.float32)))
    data = t.data
    assert clamp_logit_scale_(t) is t
    assert t.data is data and float(t.data) == pytest.approx(math.log(100), rel=1e-6)


def test_clamp_logit_scale_leaves_a_smaller_scale_alone(device):
    class Model:
        logit_scale = Parameter(backend.get_device(device).to_device(
            np.array(LOGIT_SCALE_INIT, np.float32)))

    assert math.exp(clamp_logit_scale_(Model()).item()) == pytest.approx(1 / 0.07, rel=1e-6)


def test_temperature_still_has_a_gradient_at_the_bound(device):
    # The bound is applied to the parameter after each step, not inside the loss, so the
    # optimiser can still lower t once it has reached ln(100).
    I_f, T_f, W_i, W_t, _ = pseudocode_inputs(device)
    t = tensor(np.array(LOGIT_SCALE_MAX), device, requires_grad=True)
    clip_loss_from_features(I_f, T_f, W_i, W_t, t).backward()
    assert abs(float(t.grad)) > 1e-3

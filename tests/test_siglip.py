"""SigLIP's pairwise sigmoid loss and its learned bias (``miniclip/training/siglip.py``)."""
import math

import numpy as np
import pytest
from test_loss import D_E, D_I, D_T, N, tensor  # the same small feature sizes and helper

from miniclip import backend
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import gradcheck
from miniclip.models import create_model
from miniclip.training.siglip import (
    SIGLIP_LOGIT_BIAS_INIT,
    SIGLIP_LOGIT_SCALE_INIT,
    SigmoidLoss,
    init_siglip_scale_,
    siglip_loss,
    siglip_loss_from_features,
    sigmoid_loss,
)


def feature_inputs(device, seed=0):
    """I_f, T_f, W_i, W_t, t, b in float64, all requiring grad; b near its start of -10
    would make every σ tiny, so it is drawn near 0 to exercise both signs of the slope."""
    rng = np.random.default_rng(seed)
    shapes = [(N, D_I), (N, D_T), (D_I, D_E), (D_T, D_E)]
    arrays = [rng.standard_normal(s) for s in shapes]
    arrays += [np.array(SIGLIP_LOGIT_SCALE_INIT), np.array(-1.5)]
    return [tensor(a, device, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name, index", [("I_f", 0), ("T_f", 1), ("W_i", 2), ("W_t", 3),
                                         ("t", 4), ("b", 5)])
def test_gradient_of_the_loss_from_features_matches_finite_differences(device, name, index):
    inputs = feature_inputs(device)
    for i, x in enumerate(inputs):
        x.requires_grad = i == index
    report = gradcheck(siglip_loss_from_features, inputs)
    assert report.passed, f"gradient with respect to {name}:\n{report}"


def test_gradient_of_the_logits_is_sigmoid_minus_the_identity_over_n(device):
    rng = np.random.default_rng(1)
    logits = tensor(rng.standard_normal((N, N)) * 3, device, requires_grad=True)
    bias = tensor(np.array(0.7), device, requires_grad=True)
    siglip_loss(logits, bias).backward()
    shifted = logits.numpy() + 0.7
    expected = (1 / (1 + np.exp(-shifted)) - np.eye(N)) / N
    np.testing.assert_allclose(backend.to_numpy(logits.grad), expected, rtol=1e-12)
    assert float(backend.to_numpy(bias.grad)) == pytest.approx(expected.sum(), rel=1e-12)


def test_value_equals_the_binary_cross_entropies_by_hand(device):
    # ℓ = [[2, -1], [0, 3]] + b with b = -1 is [[1, -2], [-1, 2]]; z ℓ = [[1, 2], [1, 2]]
    logits = tensor([[2.0, -1.0], [0.0, 3.0]], device)
    loss = siglip_loss(logits, tensor(np.array(-1.0), device)).item()

    def log_sigmoid(u):
        return -math.log1p(math.exp(-u))

    by_hand = -(log_sigmoid(1.0) + log_sigmoid(2.0) + log_sigmoid(1.0) + log_sigmoid(2.0)) / 2
    assert loss == pytest.approx(by_hand, rel=1e-12)


def test_sigmoid_loss_sums_each_row_and_averages_the_rows(device):
    logits = tensor([[0.0, 0.0, 0.0]], device)
    signs = tensor([[1.0, -1.0, 1.0]], device)
    assert sigmoid_loss(logits, signs).item() == pytest.approx(3 * math.log(2), rel=1e-12)
    two_rows = tensor([[0.0, 0.0, 0.0], [50.0, -50.0, 50.0]], device)
    assert sigmoid_loss(two_rows, tensor([[1.0, -1.0, 1.0]] * 2, device)).item() == \
        pytest.approx(3 * math.log(2) / 2, rel=1e-9)


def test_aligned_embeddings_drive_the_loss_to_zero_as_the_scale_grows(device):
    # cosine 1 on the diagonal and 0 elsewhere; a bias of -scale/2 separates the two
    losses = [siglip_loss(tensor(np.eye(N) * scale, device),
                          tensor(np.array(-scale / 2), device)).item()
              for scale in (1.0, 10.0, 100.0)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[-1] < 1e-20


def test_it_starts_at_scale_10_and_bias_minus_10_as_the_paper():
    model = init_siglip_scale_(create_model("tiny-vit"))
    assert math.exp(float(model.logit_scale.data)) == pytest.approx(10.0, rel=1e-6)
    assert SIGLIP_LOGIT_BIAS_INIT == -10.0
    loss = SigmoidLoss()
    assert [name for name, _ in loss.named_parameters()] == ["logit_bias"]
    assert float(loss.logit_bias.data) == -10.0


def test_the_module_gives_the_loss_of_its_bias(device):
    logits = tensor(np.random.default_rng(2).standard_normal((N, N)), device)
    module = SigmoidLoss(bias=-2.0).to(device)
    assert module(logits, logits.T).item() == pytest.approx(
        siglip_loss(logits, tensor(np.array(-2.0), device)).item(), rel=1e-6)


def test_float16_logits_give_a_float32_loss(device):
    logits = tensor(np.random.default_rng(3).standard_normal((N, N)).astype(np.float16), device)
    loss = siglip_loss(logits, tensor(np.array(-10.0, np.float32), device))
    assert loss.dtype == np.float32


def test_non_square_logits_are_rejected():
    with pytest.raises(ValueError, match="square"):
        siglip_loss(Tensor(np.zeros((2, 3))), Tensor(np.array(0.0)))

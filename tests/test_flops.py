"""The FLOP counts of ``miniclip.models.flops`` against the products a forward really runs."""
import numpy as np
import pytest
from test_models import MICRO_RN, MICRO_VIT, micro_inputs, micro_model

from miniclip import autograd
from miniclip.autograd import no_grad
from miniclip.models import RELEASED_CONFIGS, flops


def product_flops(function, inputs):
    """2 x the multiply-adds of one matrix-product op (Linear, MatMul, Conv2d) on ``inputs``."""
    name = type(function).__name__
    if name == "Linear":
        x, weight = inputs[:2]
        return 2 * x.size // x.shape[-1] * weight.shape[1] * weight.shape[0]
    if name == "MatMul":
        a, b = inputs
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return 2 * int(np.prod(batch)) * a.shape[-2] * a.shape[-1] * b.shape[-1]
    if name == "Conv2d":
        x, weight = inputs[:2]
        (ph, pw), (sh, sw) = function.padding, function.stride
        out_h = (x.shape[2] + 2 * ph - weight.shape[2]) // sh + 1
        out_w = (x.shape[3] + 2 * pw - weight.shape[3]) // sw + 1
        return 2 * x.shape[0] * out_h * out_w * weight.size
    return 0


def counted_flops(monkeypatch, run):
    """The FLOPs of every matrix-product op called by ``run()``."""
    total = []
    call = autograd.Function.__call__

    def counting_call(self, *inputs):
        total.append(product_flops(self, inputs))
        return call(self, *inputs)

    monkeypatch.setattr(autograd.Function, "__call__", counting_call)
    run()
    monkeypatch.undo()
    return sum(total)


@pytest.mark.parametrize("config", [MICRO_VIT, MICRO_RN], ids=["vit", "resnet"])
def test_image_flops_count_every_product_of_encode_image(monkeypatch, config):
    model = micro_model(config).eval()
    images, _ = micro_inputs(config, n=2)
    with no_grad():
        measured = counted_flops(monkeypatch, lambda: model.encode_image(images))
    assert flops.image_flops(config) * 2 == measured


def test_text_flops_count_the_products_over_the_trimmed_positions(monkeypatch):
    model = micro_model(MICRO_VIT).eval()
    _, tokens = micro_inputs(MICRO_VIT, n=3)
    tokens[:, 6:] = 0  # every row now ends by position 5: 6 positions run
    tokens[2, 5] = MICRO_VIT["vocab_size"] - 1
    with no_grad():
        measured = counted_flops(monkeypatch, lambda: model.encode_text(tokens))
    assert flops.text_flops(MICRO_VIT, 6) * 3 == measured


def test_a_training_step_is_three_forwards_of_both_towers_and_the_logits():
    config = RELEASED_CONFIGS["ViT-B/32"]
    pair = flops.image_flops(config) + flops.text_flops(config, 20)
    logits = 2 * 8 * 8 * config["embed_dim"]
    assert flops.training_step_flops(config, 8, 20) == 3 * (8 * pair + logits)


def test_vit_b32_image_count_agrees_with_the_published_multiply_adds():
    """ViT-B/32: 4.41 G multiply-adds per image (the model profile of OpenCLIP), 8.8 GFLOPs."""
    assert flops.image_flops(RELEASED_CONFIGS["ViT-B/32"]) / 2e9 == pytest.approx(4.41, abs=0.01)

"""Every op computes in the dtype it is given: float32 never widens to float64, float16
activations stay float16 under mixed precision (only the statistics the design upcasts
are float32). A silent upcast costs a GPU twice the memory traffic, or turns its tensor
cores off, while every number stays correct; so it is tested on every device.

What is recorded: the output of every op's forward and every gradient a backward hands
to the engine (before the engine casts it to its input's dtype), on every device; on the
fake CuPy also every array created anywhere, intermediates included.
"""
import numpy as np
import pytest
from conftest import recorded_dtypes, where

from miniclip import nn
from miniclip.autograd import Tensor
from miniclip.models.configs import create_model
from miniclip.optim import float16_parameters
from miniclip.training.loss import clip_loss


def batch(model, device, dtype=np.float32, n=4):
    rng = np.random.default_rng(0)
    size = model.input_resolution
    images = Tensor(rng.standard_normal((n, 3, size, size)).astype(dtype), device=device)
    tokens = Tensor(rng.integers(1, 50, (n, 8)), device=device)
    return images, tokens


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-rn"])
def test_a_float32_model_creates_no_float64_array_forward_or_backward(device, name):
    nn.manual_seed(0)
    model = create_model(name).to(device).train()
    images, tokens = batch(model, device)
    with recorded_dtypes(device) as seen:
        clip_loss(*model(images, tokens)).backward()
    assert len(seen) > 20  # the recording saw the model's ops
    assert where(seen, np.float64) == []


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-rn"])
def test_a_float16_forward_keeps_float16_activations(device, name):
    nn.manual_seed(0)
    model = create_model(name).to(device).train()
    images, tokens = batch(model, device, np.float16)
    with recorded_dtypes(device) as seen:
        with float16_parameters(model):
            image_features = model.encode_image(images)
            text_features = model.encode_text(tokens)
    assert image_features.dtype == text_features.dtype == np.float16
    assert where(seen, np.float64) == []
    # Only ops that meet a float32 parameter kept by design (the normalisations' gains
    # and biases) may give float32 -- and they don't: their outputs are cast back.
    float32_ops = set(where(seen, np.float32)) - {"any array created"}
    assert float32_ops <= {"AsType"}, float32_ops

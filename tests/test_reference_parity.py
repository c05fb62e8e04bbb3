"""miniclip's CLIP against OpenAI's reference implementation, through golden outputs.

``tests/fixtures/reference_models.npz`` was written by ``scripts/make_model_fixtures.py``
with OpenAI's ``clip/model.py`` (see its docstring): two micro CLIP models, one per image
tower, stored the way released checkpoints store weights (float16 projections, the extra
scalar entries), with the reference's outputs in eval and train mode, the BatchNorm
running statistics after a training pass, and float64 gradients of the paper's loss.
It also holds the reference's embeddings for the TorchScript checkpoints of
``scripts/make_checkpoint_fixtures.py``, for the end-to-end test through ``miniclip.load``.
No torch is needed here.
"""
import hashlib
import os

import numpy as np
import pytest
from tolerances import assert_close_to_round_off as assert_close

from miniclip import backend
from miniclip.autograd import no_grad
from miniclip.models import build_model, load
from miniclip.training.loss import clip_loss

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
GOLDEN = np.load(os.path.join(FIXTURES, "reference_models.npz"))
KINDS = ["vit", "rn"]


def golden(prefix):
    """The fixture entries under ``prefix`` (without it)."""
    return {k[len(prefix):]: GOLDEN[k] for k in GOLDEN.files if k.startswith(prefix)}


def checkpoint(kind):
    """The model's state dict as stored: the shared text tower plus its own entries."""
    return golden("text/") | golden(f"{kind}/state/")


def images(kind):
    return GOLDEN[f"{kind}/images"].astype(np.float32)


TOKENS = GOLDEN["inputs/tokens"]


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_names_match_the_reference(kind):
    stored = {k for k in checkpoint(kind) if k not in ("input_resolution", "context_length",
                                                       "vocab_size")}
    model = build_model(checkpoint(kind))
    assert set(model.state_dict()) == stored
    reference_params = set(golden(f"{kind}/grad/"))
    names = {name for name, _ in model.named_parameters()}
    if kind == "rn":  # the fixture leaves out the text blocks' gradients (size budget)
        names = {n for n in names if not n.startswith("transformer.resblocks.")}
    assert names == reference_params


@pytest.mark.parametrize("kind", KINDS)
def test_eval_mode_outputs_match_the_reference(kind, device):
    model = build_model(checkpoint(kind)).to(device)
    with no_grad():
        assert_close(model.encode_image(images(kind)).numpy(),
                     GOLDEN[f"{kind}/eval/image_features"], 1e-4)
        assert_close(model.encode_text(TOKENS).numpy(), GOLDEN[f"{kind}/eval/text_features"], 1e-4)
        assert_close(model(images(kind), TOKENS)[0].numpy(),
                     GOLDEN[f"{kind}/eval/logits_per_image"], 1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_train_mode_outputs_and_running_statistics_match_the_reference(kind, device):
    model = build_model(checkpoint(kind)).to(device).train()
    with no_grad():
        assert_close(model.encode_image(images(kind)).numpy(),
                     GOLDEN[f"{kind}/train/image_features"], 1e-4)
    running = golden(f"{kind}/train/running/")
    buffers = dict(model.named_buffers())
    assert set(running) == {n for n in buffers if n.endswith(("running_mean", "running_var"))}
    for name, expected in running.items():
        assert_close(buffers[name].numpy(), expected, 1e-5)
    model = build_model(checkpoint(kind)).to(device).train()
    with no_grad():
        assert_close(model(images(kind), TOKENS)[0].numpy(),
                     GOLDEN[f"{kind}/train/logits_per_image"], 1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_gradients_match_the_reference_autograd(kind, device):
    model = build_model(checkpoint(kind)).double().to(device).train()
    logits_per_image, logits_per_text = model(images(kind).astype(np.float64), TOKENS)
    loss = clip_loss(logits_per_image, logits_per_text)
    loss.backward()
    assert_close(logits_per_image.numpy(), GOLDEN[f"{kind}/train64/logits_per_image"], 1e-10)
    assert loss.item() == pytest.approx(float(GOLDEN[f"{kind}/train64/loss"]), rel=1e-12)
    params = dict(model.named_parameters())
    for name, expected in golden(f"{kind}/grad/").items():
        # the reference's float64 gradients were stored rounded to float32
        assert params[name].grad.shape == expected.shape, name
        assert_close(backend.to_numpy(params[name].grad), expected, 1e-6)


@pytest.mark.parametrize("stem", ["vit_micro_jit", "rn_micro_jit"])
def test_torchscript_checkpoint_loads_to_the_reference_embeddings(stem):
    path = os.path.join(FIXTURES, f"{stem}.pt")
    with open(path, "rb") as file:
        sha256 = hashlib.sha256(file.read()).hexdigest()
    assert sha256 == str(GOLDEN[f"jit/{stem}/sha256"]), (
        f"{stem}.pt changed since the golden outputs were made: rerun "
        "scripts/make_model_fixtures.py")
    model, preprocess = load(path)
    assert model.training is False and preprocess.n_px == model.input_resolution
    expected = golden(f"jit/{stem}/")
    with no_grad():
        image_input = expected["images"].astype(np.float32)
        assert_close(model.encode_image(image_input).numpy(), expected["image_features"], 1e-4)
        assert_close(model.encode_text(expected["tokens"]).numpy(), expected["text_features"], 1e-4)
        assert_close(model(image_input, expected["tokens"])[0].numpy(),
                     expected["logits_per_image"], 1e-4)

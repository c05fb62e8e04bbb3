"""The one training step (``miniclip/training/step.py``): what it reads from the device, that
it updates every weight and leaves no gradient behind, in float32 and mixed precision."""
import fake_cupy
import numpy as np
import pytest
from conftest import GPU

from miniclip import nn
from miniclip.models import create_model
from miniclip.optim import GradScaler
from miniclip.training.recipe import paper_optimizer
from miniclip.training.step import train_step


@pytest.mark.skipif(GPU, reason="counts the fake CuPy's device reads")
@pytest.mark.parametrize("amp, reads", [(False, 4), (True, 5)])
def test_a_training_step_reads_the_device_only_for_its_checks(amp, reads):
    # Each read of a GPU value makes the host wait until the GPU has finished everything
    # queued before it. A step reads: the loss with its finite checks (together), the range
    # of the embedding's ids and of each cross-entropy's labels (a GPU would index out of
    # range silently), and with mixed precision the loss scaler's inf check. Not per
    # parameter, not the gradient norm, not the logit scale.
    nn.manual_seed(0)
    model = create_model("tiny-vit").to("cuda")
    optimizer = paper_optimizer(model, 1e-3, "vit")
    scaler = GradScaler(enabled=amp)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    tokens = rng.integers(1, 50, (4, 8))
    for step in (1, 2):  # the first step also creates the optimiser's state
        fake_cupy.transfers.clear()
        loss = train_step(model, optimizer, scaler, images, tokens, step, "cuda",
                          max_grad_norm=1.0)
        assert sum(fake_cupy.transfers.values()) == reads, dict(fake_cupy.transfers)
    assert np.isfinite(loss)


def one_step(seed=0):
    """A tiny-vit, its optimiser, and its weights before one ``train_step`` on a random batch."""
    nn.manual_seed(seed)
    model = create_model("tiny-vit")
    optimizer = paper_optimizer(model, 1e-3, "vit")
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)  # [4, 3, 32, 32]
    tokens = rng.integers(1, 50, (4, 8))                              # [4, 8]
    train_step(model, optimizer, GradScaler(enabled=False), images, tokens, 1, "cpu",
               max_grad_norm=1.0)
    return model, before


def test_a_training_step_updates_every_weight():
    # A step that forgot optimizer.step() would leave them all as they were.
    model, before = one_step()
    unchanged = [name for name, p in model.named_parameters()
                 if np.array_equal(p.numpy(), before[name])]
    assert not unchanged


def test_a_training_step_leaves_no_gradient_behind():
    # A step that forgot zero_grad() would add every batch's gradient to the last ones'.
    model, _ = one_step()
    stale = [name for name, p in model.named_parameters()
             if p.grad is not None and np.any(p.grad)]
    assert not stale

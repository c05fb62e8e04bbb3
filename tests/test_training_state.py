"""Saving and restoring a training run; reporting inf/NaN in plain float32 training."""
import os
import zipfile

import numpy as np
import pytest

from miniclip import backend, nn
from miniclip import functional as F
from miniclip.autograd import Tensor
from miniclip.optim import SGD, AdamW, GradScaler, WarmupCosine
from miniclip.training.recipe import paper_param_groups
from miniclip.training.state import (
    NonFiniteError,
    check_finite,
    load_training_state,
    save_training_state,
)
from miniclip.weights import CheckpointError

# Several tests compute with inf/NaN on purpose; NumPy warns about each such operation.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered",
                                        "ignore:invalid value encountered")


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.norm = nn.LayerNorm(8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.norm(self.fc1(x))))


def setup(device, seed=0):
    nn.manual_seed(seed)
    model = Classifier().to(device)
    optimizer = AdamW(paper_param_groups(model, weight_decay=0.2), lr=1e-2, betas=(0.9, 0.98),
                      eps=1e-6)
    return model, optimizer


def batch(device, step):
    rng = np.random.default_rng(step)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    return Tensor(backend.get_device(device).to_device(x)), x[:, :3].argmax(axis=1)


def train_steps(model, optimizer, device, steps):
    schedule = WarmupCosine(optimizer, warmup_steps=2, total_steps=10)
    for step in steps:
        x, y = batch(device, step)
        F.cross_entropy(model(x), y).backward()
        schedule(step)
        optimizer.step()
        optimizer.zero_grad()


def weights(model):
    return {name: p.numpy() for name, p in model.named_parameters()}


# ------------------------------------------------------------------ save and resume
def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(device, tmp_path):
    model, optimizer = setup(device)
    train_steps(model, optimizer, device, range(6))
    expected = weights(model)

    model, optimizer = setup(device)
    train_steps(model, optimizer, device, range(3))
    scaler = GradScaler(init_scale=512.0)
    path = tmp_path / "run.npz"
    save_training_state(path, model, optimizer, step=3, scaler=scaler, extra={"epoch": 1})

    model, optimizer = setup(device, seed=1)                    # different initial weights
    resumed_scaler = GradScaler()
    info = load_training_state(path, model, optimizer, scaler=resumed_scaler)
    assert info == {"step": 3, "extra": {"epoch": 1}}
    assert resumed_scaler.get_scale() == 512.0
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.98)
    assert optimizer.param_groups[0]["names"] == ["fc1.weight", "fc2.weight"]
    assert all(backend.device_of(s["exp_avg"]) is backend.get_device(device)
               for s in optimizer.state.values())
    train_steps(model, optimizer, device, range(info["step"], 6))
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_saving_replaces_the_file_atomically_and_leaves_no_temporary_files(tmp_path):
    model, optimizer = setup("cpu")
    path = tmp_path / "run.npz"
    save_training_state(path, model, optimizer, step=1)
    train_steps(model, optimizer, "cpu", range(1))
    save_training_state(path, model, optimizer, step=2)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert load_training_state(path, *setup("cpu"))["step"] == 2


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer = setup("cpu")
    path = tmp_path / "run.npz"
    save_training_state(path, model, optimizer, step=1)
    original = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_training_state(path, model, optimizer, step=2)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["run.npz"]


def test_a_file_that_is_not_a_training_state_is_rejected(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"format": "something else"}'))
    with pytest.raises(ValueError, match="not a miniclip training state"):
        load_training_state(path, Classifier())


def overwrite(path, member, offset, data):
    """Overwrite bytes of ``path`` at ``offset`` into the stored member ``member``'s data."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + offset
    raw[start:start + len(data)] = data
    path.write_bytes(bytes(raw))


def test_resuming_from_a_damaged_checkpoint_names_the_file_member_and_fix_and_changes_nothing(tmp_path):
    model, optimizer = setup("cpu")
    path = tmp_path / "checkpoint.npz"
    save_training_state(path, model, optimizer, step=3)
    overwrite(path, "model/fc1.weight.npy", 130, b"\xff" * 8)  # 8 bytes of its data
    damaged = path.read_bytes()
    fresh, fresh_optimizer = setup("cpu", seed=1)
    before = weights(fresh)
    with pytest.raises(CheckpointError) as caught:
        load_training_state(path, fresh, fresh_optimizer)
    assert str(caught.value) == (f"{path}, member 'model/fc1.weight.npy': fails its CRC-32 "
                                 "check; the checkpoint is damaged: restore a copy of it, or "
                                 "start the run afresh (--overwrite replaces it)")
    assert isinstance(caught.value.__cause__, zipfile.BadZipFile)
    assert path.read_bytes() == damaged
    for name, value in weights(fresh).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


@pytest.mark.parametrize("meta, problem", [
    ('{"format": "miniclip-training-state", "version": 1, "step": ', "member 'meta.npy': is not valid JSON"),
    ('{"format": "miniclip-training-state", "version": 1, "step": "3", "extra": null, '
     '"scaler": null, "optimizer": null}', "field 'step': is str"),
    ('{"format": "miniclip-training-state", "version": 9, "step": 3, "extra": null, '
     '"scaler": null, "optimizer": null}', "field 'version': is 9; this miniclip reads version 1"),
    ('{"format": "miniclip-training-state", "version": 1, "step": 3, "extra": null, '
     '"scaler": null, "optimizer": {"param_groups": 5, "scalars": {}}}', "field 'optimizer'"),
], ids=["json", "step", "version", "optimizer"])
def test_a_damaged_meta_entry_names_the_field(tmp_path, meta, problem):
    path = tmp_path / "checkpoint.npz"
    np.savez(path, meta=np.array(meta))
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_training_state(path, Classifier(), setup("cpu")[1])
    assert str(caught.value).startswith(str(path))


def test_a_checkpoint_of_another_model_says_to_resume_with_that_runs_settings(tmp_path):
    model, optimizer = setup("cpu")
    path = tmp_path / "checkpoint.npz"
    save_training_state(path, model, optimizer, step=1)
    other = nn.Sequential(nn.Linear(6, 4))
    with pytest.raises(CheckpointError, match="the model's tensors: do not fit this model .*"
                       "resume with that run's settings") as caught:
        load_training_state(path, other)
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_checkpoint_of_another_optimiser_says_to_resume_with_that_runs_settings(tmp_path):
    model, optimizer = setup("cpu")
    path = tmp_path / "checkpoint.npz"
    train_steps(model, optimizer, "cpu", range(1))
    save_training_state(path, model, optimizer, step=1)
    model, _ = setup("cpu")
    plain = AdamW(model.parameters(), lr=1e-2)  # one group, where the run had two
    with pytest.raises(CheckpointError, match="the optimiser state: does not fit this optimiser"):
        load_training_state(path, model, plain)


# ------------------------------------------------------------------ never save inf or NaN
def test_a_non_finite_weight_is_never_written_to_a_checkpoint(device, tmp_path):
    model, optimizer = setup(device)
    path = tmp_path / "run.npz"
    save_training_state(path, model, optimizer, step=1)
    good = path.read_bytes()
    model.norm.bias.data[2] = np.nan
    with pytest.raises(NonFiniteError, match=r"step 2: 'model/norm.bias' \(1 NaN and 0 inf"):
        save_training_state(path, model, optimizer, step=2)
    assert path.read_bytes() == good


def test_a_non_finite_optimiser_moment_is_never_written_to_a_checkpoint(device, tmp_path):
    model, optimizer = setup(device)
    train_steps(model, optimizer, device, range(1))
    optimizer.state[model.fc2.weight]["exp_avg_sq"][0, 0] = np.inf
    path = tmp_path / "run.npz"
    with pytest.raises(NonFiniteError, match=r"'optimizer/1/exp_avg_sq' \(0 NaN and 1 inf"):
        save_training_state(path, model, optimizer, step=1)
    assert not path.exists()


# ------------------------------------------------------------------ reporting inf/NaN
def test_check_finite_names_the_step_and_the_first_non_finite_gradient(device):
    model, _ = setup(device)
    x, y = batch(device, 0)
    F.cross_entropy(model(x), y).backward()
    model.fc2.bias.grad = model.fc2.bias.grad * np.float32(np.inf)
    model.norm.weight.grad = model.norm.weight.grad * np.float32(np.nan)
    with pytest.raises(NonFiniteError, match=r"step 7: non-finite gradient in parameter "
                                             r"'norm.weight' \(8 NaN .*1 other parameter"):
        check_finite(model, step=7)


def test_check_finite_reports_a_non_finite_weight_before_the_loss(device):
    model, _ = setup(device)
    model.fc1.weight.data[0, 0] = np.inf
    x, y = batch(device, 0)
    loss = F.cross_entropy(model(x), y)
    with pytest.raises(NonFiniteError, match=r"step 3: non-finite weight in parameter "
                                             r"'fc1.weight' \(0 NaN and 1 inf of 48"):
        check_finite(model, step=3, loss=loss)


def test_check_finite_reports_a_non_finite_loss_from_finite_weights(device):
    model, _ = setup(device)
    with pytest.raises(NonFiniteError, match="step 4: the loss is nan"):
        check_finite(model, step=4, loss=float("nan"))
    check_finite(model, step=4, loss=1.5)                       # all well: no error


def test_a_diverging_float32_run_is_stopped_at_the_step_its_gradients_overflow(device):
    # SGD with far too large a learning rate on a least-squares problem: each step
    # multiplies the error by 1 - 2 lr |x|^2 = -1599, until float32 overflows (the
    # squared loss first, a few steps later the gradient). The simulation below finds
    # the step independently, in NumPy.
    x_host = np.full((1, 4), 2.0, np.float32)
    w = np.full((1, 4), 0.5, np.float32)
    lr = np.float32(50.0)
    for expected_step in range(100):  # noqa: B007  (read after the loop)
        grad = 2 * (x_host @ w.T - 1.0) * x_host                     # d(x w^T - 1)^2 / dw
        if not np.isfinite(grad).all():
            break
        w = w - lr * grad

    model = nn.Linear(4, 1, bias=False).to(device)
    model.weight.data[...] = backend.get_device(device).to_device(np.full((1, 4), 0.5, np.float32))
    optimizer = SGD(model.parameters(), lr=50.0)
    x = Tensor(backend.get_device(device).to_device(x_host))
    with pytest.raises(NonFiniteError, match=rf"step {expected_step}: non-finite gradient in "
                                             r"parameter 'weight'"):
        for step in range(100):
            loss = ((model(x) - 1.0) ** 2).sum()
            loss.backward()
            check_finite(model, step)                                # weights and gradients
            optimizer.step()
            optimizer.zero_grad()
    assert 5 < expected_step < 100

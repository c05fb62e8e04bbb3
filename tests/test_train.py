"""The training script: a few steps of the tiny model through ``main``, checkpoints and resuming,
the command line, and stopping on a non-finite loss."""
import json
import os

import numpy as np
import pytest

import fake_cupy
import miniclip.train as train_module
from conftest import GPU
from miniclip import nn
from miniclip.amp import GradScaler
from miniclip.training.recipe import paper_optimizer
from miniclip.autograd import Tensor, no_grad
from miniclip.data import SyntheticShapes
from miniclip.models import create_model
from miniclip.tokenizer import tokenize
from miniclip.train import CHECKPOINT, main, parse_args, trim_padding

# A run small enough for a unit test: 8 pairs per batch, 64 training and 32 test pictures.
SMALL = ["--tiny", "--batch-size", "8", "--train-size", "64", "--eval-size", "32", "--quiet"]


def saved_run(out):
    """The checkpoint's step and its ``extra`` record (losses, settings)."""
    with np.load(os.path.join(out, CHECKPOINT)) as file:
        meta = json.loads(str(file["meta"]))
        weights = {k: file[k] for k in file.files if k.startswith("model/")}
    return meta["step"], meta["extra"], weights


def test_short_run_trains_saves_and_reports(tmp_path, capsys):
    assert main(SMALL + ["--steps", "6", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "loss " in printed and "→" in printed
    assert "zero-shot accuracy on 32 held-out pictures, 30 classes" in printed
    assert "chance 3.3%" in printed
    step, extra, weights = saved_run(tmp_path)
    assert step == 6 and len(extra["losses"]) == 6
    assert all(np.isfinite(extra["losses"]))
    assert extra["losses"][0] == pytest.approx(np.log(8), abs=0.5)  # chance level: ln(batch)
    assert "model/logit_scale" in weights and "model/visual.proj" in weights


def test_training_and_resuming_run_on_every_device(device, tmp_path):
    # On "cuda" (a GPU, or the fake CuPy in CI) this checks that no step mixes host and device arrays.
    assert main(SMALL + ["--steps", "2", "--device", device, "--out", str(tmp_path)]) == 0
    assert main(SMALL + ["--steps", "3", "--device", device, "--out", str(tmp_path),
                         "--resume"]) == 0
    step, extra, _ = saved_run(tmp_path)
    assert step == 3 and len(extra["losses"]) == 3 and all(np.isfinite(extra["losses"]))


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
        loss = train_module.train_step(model, optimizer, scaler, images, tokens, step,
                                       "cuda", max_grad_norm=1.0)
        assert sum(fake_cupy.transfers.values()) == reads, dict(fake_cupy.transfers)
    assert np.isfinite(loss)


def test_logit_scale_never_exceeds_100(tmp_path):
    # A huge learning rate drives the temperature as fast as AdamW allows; the clamp holds it.
    main(SMALL + ["--steps", "3", "--lr", "3", "--warmup", "0", "--grad-clip", "0",
                  "--out", str(tmp_path)])
    _, _, weights = saved_run(tmp_path)
    assert float(weights["model/logit_scale"]) <= np.log(100) + 1e-6


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    args = SMALL + ["--steps", "6", "--save-every", "2"]
    main(args + ["--out", str(tmp_path / "straight")])

    real_step = train_module.train_step

    def crash_at_step_5(model, optimizer, scaler, images, tokens, step, *rest):
        if step == 5:  # steps are counted from 1
            raise KeyboardInterrupt
        return real_step(model, optimizer, scaler, images, tokens, step, *rest)

    monkeypatch.setattr(train_module, "train_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--out", str(tmp_path / "interrupted")])
    assert saved_run(tmp_path / "interrupted")[0] == 4  # the checkpoint of step 4 survived
    monkeypatch.setattr(train_module, "train_step", real_step)
    assert main(args + ["--out", str(tmp_path / "interrupted"), "--resume"]) == 0

    step, straight, straight_weights = saved_run(tmp_path / "straight")
    resumed_step, resumed, resumed_weights = saved_run(tmp_path / "interrupted")
    assert step == resumed_step == 6
    np.testing.assert_allclose(resumed["losses"], straight["losses"], rtol=1e-5)
    for key, value in straight_weights.items():
        np.testing.assert_allclose(resumed_weights[key], value, rtol=1e-4, atol=1e-6, err_msg=key)


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="batch_size 8 -> 16"):
        main(SMALL[:-1] + ["--batch-size", "16", "--steps", "4", "--out", str(tmp_path),
                           "--resume"])


def test_resume_refuses_a_different_learning_rate_it_would_silently_ignore(tmp_path):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="lr .* -> 0.123"):
        main(SMALL + ["--steps", "4", "--lr", "0.123", "--out", str(tmp_path), "--resume"])


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_non_finite_loss_stops_with_an_error_naming_the_step(tmp_path, capsys):
    # With an absurd learning rate the first update makes the weights so large that the
    # second forward pass overflows.
    code = main(SMALL + ["--steps", "5", "--lr", "1e30", "--warmup", "0", "--out", str(tmp_path)])
    assert code == 1
    error = capsys.readouterr().err
    assert "training stopped: step 2" in error and "lower --lr" in error
    assert not os.path.exists(tmp_path / CHECKPOINT)  # nothing non-finite was saved


def test_mixed_precision_run_trains(tmp_path):
    assert main(SMALL + ["--steps", "2", "--amp", "--out", str(tmp_path)]) == 0
    _, extra, weights = saved_run(tmp_path)
    assert all(np.isfinite(extra["losses"]))
    assert weights["model/visual.proj"].dtype == np.float32  # master weights stay float32


def test_folder_of_real_images_trains_without_zero_shot_evaluation(tmp_path, capsys):
    rows = ["filename,caption"]
    for i in range(8):
        image, caption = SyntheticShapes(8, image_size=48)[i]  # resized to 32 by the collate
        image.save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{caption}")
    (tmp_path / "captions.csv").write_text("\n".join(rows) + "\n")
    assert main(["--tiny", "--data", str(tmp_path), "--batch-size", "4", "--steps", "3",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "trained 3 steps" in printed and "zero-shot" not in printed


def test_command_line_defaults_and_checks():
    args = parse_args(["--tiny"])
    assert (args.tower, args.device, args.amp, args.out, args.resume) == ("vit", "cpu", False,
                                                                          None, False)
    assert args.warmup == args.steps // 10
    assert (args.steps, args.batch_size, args.lr) == (1500, 32, 1e-3)
    assert parse_args(["--tiny", "--tower", "rn"]).steps == 800
    assert parse_args(["--tiny", "--tower", "rn", "--steps", "50"]).steps == 50
    for bad in ([], ["--tiny", "--model", "RN50"], ["--tiny", "--resume"],
                ["--tiny", "--tower", "vgg"], ["--tiny", "--batch-size", "1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_trimming_padding_keeps_the_text_features():
    nn.manual_seed(0)
    model = create_model("tiny-vit").eval()
    tokens = tokenize(["a photo of a red circle.", "a photo of a large blue square at the top."],
                      context_length=model.context_length)
    trimmed = trim_padding(tokens)
    assert trimmed.shape[1] < tokens.shape[1] and np.all(tokens[:, trimmed.shape[1]:] == 0)
    with no_grad():
        full = model.encode_text(Tensor(tokens)).numpy()
        short = model.encode_text(Tensor(trimmed)).numpy()
    np.testing.assert_allclose(short, full, rtol=1e-5, atol=1e-6)

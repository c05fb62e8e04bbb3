"""The training script: a few steps of the tiny model through ``main``, checkpoints and resuming,
the run folder (metrics and plots), the command line's errors, Ctrl-C, and stopping on a
non-finite loss."""
import json
import os
import signal
import threading

import numpy as np
import pytest
from tolerances import assert_close_to_round_off

import miniclip
import miniclip.training.run as run_module
from miniclip import nn
from miniclip.autograd import Tensor, no_grad
from miniclip.data import SyntheticShapes
from miniclip.models import create_model, trim_padding
from miniclip.system.program import UsageError
from miniclip.tokenizer import tokenize
from miniclip.training.cli import main, parse_args
from miniclip.training.config import (
    CHECKPOINT,
    CURVES_PLOT,
    METRICS,
    PREDICTIONS_PLOT,
    SIMILARITY_PLOT,
)

# A run small enough for a unit test: 8 pairs per batch, 64 training and 60 test pictures.
SMALL = ["--tiny", "--batch-size", "8", "--train-size", "64", "--eval-size", "60", "--quiet"]


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
    assert "zero-shot top-1 over 30 classes (all colour-shape pairs)" in printed
    assert "chance 3.3%" in printed and "held-out pairs" in printed
    step, extra, weights = saved_run(tmp_path)
    assert step == 6 and len(extra["history"]["losses"]) == 6
    assert all(np.isfinite(extra["history"]["losses"]))
    assert extra["history"]["losses"][0] == pytest.approx(np.log(8), abs=0.5)  # chance: ln(batch)
    assert "model/logit_scale" in weights and "model/visual.proj" in weights


def test_a_run_writes_its_metrics_and_plots(tmp_path):
    assert main(SMALL + ["--steps", "4", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / METRICS).read_text())
    for key in ("zeroshot_top1_seen", "zeroshot_top1_unseen", "zeroshot_top1_outline",
                "zeroshot_top1_noise", "zeroshot_top1_background", "i2t_R@1", "i2t_R@5",
                "t2i_R@1", "t2i_R@5", "linear_probe_top1"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["steps"] == 4 and len(metrics["loss_history"]) == 4
    assert 0 < metrics["train_seconds"] < metrics["run_seconds"]
    assert metrics["chance"] == pytest.approx(1 / 30)
    assert "6 held-out pairs" in metrics["class_set"]
    assert metrics["checkpoint"] == str(tmp_path / CHECKPOINT)
    for plot in (CURVES_PLOT, SIMILARITY_PLOT, PREDICTIONS_PLOT):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot


def test_eval_every_measures_zero_shot_during_training(tmp_path):
    assert main(SMALL + ["--steps", "4", "--eval-every", "2", "--out", str(tmp_path)]) == 0
    evaluations = json.loads((tmp_path / METRICS).read_text())["evaluations"]
    assert [e["step"] for e in evaluations] == [2, 4]
    assert all(0 <= e["zeroshot_top1_unseen"] <= 1 for e in evaluations)


def test_without_out_a_run_gets_a_dated_folder_named_in_the_output(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    assert main(SMALL + ["--steps", "2"]) == 0
    [folder] = (tmp_path / "runs").iterdir()
    assert f"run folder {os.path.join('runs', folder.name)}" in capsys.readouterr().out
    assert (folder / CHECKPOINT).exists() and (folder / METRICS).exists()


def test_the_checkpoint_of_a_run_loads_with_miniclip_load(tmp_path, capsys):
    assert main(SMALL + ["--steps", "3", "--out", str(tmp_path)]) == 0
    checkpoint = str(tmp_path / CHECKPOINT)
    assert f"miniclip.load({checkpoint!r})" in capsys.readouterr().out
    model, preprocess = miniclip.load(checkpoint)
    _, _, weights = saved_run(tmp_path)
    np.testing.assert_array_equal(model.visual.proj.numpy(), weights["model/visual.proj"])
    image, _ = SyntheticShapes(1, image_size=32)[0]
    assert preprocess(image).shape == (3, 32, 32)


def test_training_and_resuming_run_on_every_device(device, tmp_path):
    # On "cuda" (a GPU, or the fake CuPy in CI) this checks that no step mixes host and device arrays.
    assert main(SMALL + ["--steps", "2", "--device", device, "--out", str(tmp_path)]) == 0
    assert main(SMALL + ["--steps", "3", "--device", device, "--out", str(tmp_path),
                         "--resume"]) == 0
    step, extra, _ = saved_run(tmp_path)
    losses = extra["history"]["losses"]
    assert step == 3 and len(losses) == 3 and all(np.isfinite(losses))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_short_run_learns(tmp_path):
    # 120 steps of batch 32 (about 15 s on a 2-core CPU): the loss must fall from chance,
    # ln 32 = 3.47, by at least 1.0, and zero-shot top-1 on the seen pairs must be at least
    # 5x chance (3.3%). A step that never updates the weights stays at 3.47 and chance.
    assert main(["--tiny", "--steps", "120", "--batch-size", "32", "--train-size", "1024",
                 "--eval-size", "150", "--lr", "2e-3", "--warmup", "12", "--quiet",
                 "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / METRICS).read_text())
    losses = metrics["loss_history"]
    assert np.mean(losses[:10]) - np.mean(losses[-10:]) >= 1.0, (losses[:10], losses[-10:])
    assert metrics["zeroshot_top1_seen"] >= 5 * metrics["chance"], metrics["zeroshot_top1_seen"]


def test_logit_scale_never_exceeds_100(tmp_path):
    # A huge learning rate drives the temperature as fast as AdamW allows; the clamp holds it.
    main(SMALL + ["--steps", "3", "--lr", "3", "--warmup", "0", "--grad-clip", "0",
                  "--out", str(tmp_path)])
    _, _, weights = saved_run(tmp_path)
    assert float(weights["model/logit_scale"]) <= np.log(100) + 1e-6


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch, capsys):
    args = SMALL + ["--steps", "6", "--save-every", "2"]
    main(args + ["--out", str(tmp_path / "straight")])

    real_step = run_module.train_step

    def crash_at_step_5(model, optimizer, scaler, images, tokens, step, *rest):
        if step == 5:  # steps are counted from 1
            raise KeyboardInterrupt
        return real_step(model, optimizer, scaler, images, tokens, step, *rest)

    monkeypatch.setattr(run_module, "train_step", crash_at_step_5)
    assert main(args + ["--out", str(tmp_path / "interrupted")]) == 130
    assert "--resume" in capsys.readouterr().err
    assert saved_run(tmp_path / "interrupted")[0] == 4  # the checkpoint of step 4 survived
    monkeypatch.setattr(run_module, "train_step", real_step)
    assert main(args + ["--out", str(tmp_path / "interrupted"), "--resume"]) == 0

    step, straight, straight_weights = saved_run(tmp_path / "straight")
    resumed_step, resumed, resumed_weights = saved_run(tmp_path / "interrupted")
    assert step == resumed_step == 6
    np.testing.assert_allclose(resumed["history"]["losses"], straight["history"]["losses"],
                               rtol=1e-5)
    for key, value in straight_weights.items():
        np.testing.assert_allclose(resumed_weights[key], value, rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="Python delivers signals to the main thread only")
def test_ctrl_c_saves_after_the_step_and_prints_the_resume_command(tmp_path, monkeypatch,
                                                                   capsys):
    real_step = run_module.train_step

    def ctrl_c_during_step_3(model, optimizer, scaler, images, tokens, step, *rest):
        if step == 3:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C mid-step
        return real_step(model, optimizer, scaler, images, tokens, step, *rest)

    monkeypatch.setattr(run_module, "train_step", ctrl_c_during_step_3)
    out = str(tmp_path / "run")
    handler = signal.getsignal(signal.SIGINT)
    assert main(SMALL + ["--steps", "10", "--save-every", "100", "--out", out]) == 130
    assert saved_run(out)[0] == 3  # the step in progress finished and was saved
    assert f"--out {out} --resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler  # the caller's handler is back


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, capsys):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    assert main(SMALL[:-1] + ["--batch-size", "16", "--steps", "4", "--out", str(tmp_path),
                              "--resume"]) == 2
    assert "batch_size 8 -> 16" in capsys.readouterr().err


def test_resume_refuses_a_different_learning_rate_it_would_silently_ignore(tmp_path, capsys):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    assert main(SMALL + ["--steps", "4", "--lr", "0.123", "--out", str(tmp_path),
                         "--resume"]) == 2
    assert "lr 0.001 -> 0.123" in capsys.readouterr().err


def test_resume_refuses_fewer_steps_than_were_trained(tmp_path, capsys):
    main(SMALL + ["--steps", "4", "--out", str(tmp_path)])
    assert main(SMALL + ["--steps", "3", "--out", str(tmp_path), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "already trained 4 steps; pass --steps 4 or more" in error
    assert saved_run(tmp_path)[0] == 4  # untouched


def test_resume_continues_the_saved_schedule(tmp_path, capsys):
    # 10 steps with a 2-step warm-up, stopped after 4 (as if by Ctrl-C): resuming without
    # --steps finishes those 10; a longer --steps stretches the cosine but keeps the
    # warm-up of 2 (10% of 20 would be 2 more warm-up steps from a tiny rate).
    monkeypatch = pytest.MonkeyPatch()
    real_step = run_module.train_step

    def stop_after_4(model, optimizer, scaler, images, tokens, step, *rest):
        if step == 5:
            raise KeyboardInterrupt
        return real_step(model, optimizer, scaler, images, tokens, step, *rest)

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "train_step", stop_after_4)
        main(SMALL + ["--steps", "10", "--warmup", "2", "--save-every", "4",
                      "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(SMALL + ["--out", str(tmp_path), "--resume"]) == 0
    assert "training steps 5..10, batch 8, peak lr 0.001 after 2 warm-up" in capsys.readouterr().out
    assert main(SMALL + ["--steps", "20", "--out", str(tmp_path), "--resume"]) == 0
    step, extra, _ = saved_run(tmp_path)
    assert step == 20 and extra["schedule"] == {"steps": 20, "warmup": 2}
    assert len(extra["history"]["losses"]) == 20


def test_out_refuses_to_replace_a_run_unless_told_to(tmp_path, capsys):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    assert main(SMALL + ["--steps", "3", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already holds a run" in error and "--overwrite" in error
    assert saved_run(tmp_path)[0] == 2
    assert main(SMALL + ["--steps", "3", "--out", str(tmp_path), "--overwrite"]) == 0
    assert saved_run(tmp_path)[0] == 3


def test_runtime_errors_are_one_line_naming_the_fix_and_debug_shows_the_traceback(tmp_path,
                                                                                   capsys):
    missing = str(tmp_path / "nowhere")
    assert main(["--tiny", "--data", missing, "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"python -m miniclip.train: error: --data {missing}: "
                                       "no such folder\n")
    with pytest.raises(UsageError):
        main(["--tiny", "--data", missing, "--out", str(tmp_path / "b"), "--debug"])
    assert main(SMALL + ["--batch-size", "100", "--out", str(tmp_path / "c")]) == 2
    assert "lower --batch-size" in capsys.readouterr().err


def test_progress_without_a_terminal_is_a_line_every_n_steps(tmp_path, capsys):
    args = [a for a in SMALL if a != "--quiet"]
    assert main(args + ["--steps", "6", "--log-every", "2", "--out", str(tmp_path)]) == 0
    progress = capsys.readouterr().err  # pytest's captured stderr is not a terminal
    assert "\r" not in progress
    assert [line.split()[1] for line in progress.splitlines()] == ["2/6", "4/6", "6/6"]


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
    assert all(np.isfinite(extra["history"]["losses"]))
    assert weights["model/visual.proj"].dtype == np.float32  # master weights stay float32


def test_folder_of_real_images_trains_without_zero_shot_evaluation(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = ["filename,caption"]
    for i in range(8):
        image, caption = SyntheticShapes(8, image_size=48)[i]  # resized to 32 by the collate
        image.save(folder / f"{i}.png")
        rows.append(f"{i}.png,{caption}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    assert main(["--tiny", "--data", str(folder), "--batch-size", "4", "--steps", "3",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "trained 3 steps" in printed and "zero-shot" not in printed


def test_command_line_defaults_and_checks():
    args = parse_args(["--tiny"])
    assert (args.tower, args.device, args.amp, args.out, args.resume) == ("vit", "cpu", False,
                                                                          None, False)
    assert (args.eval_every, args.threads, args.overwrite) == (0, None, False)
    resumed = parse_args(["--tiny", "--out", "x", "--resume"])
    assert (resumed.steps, resumed.warmup) == (None, None)  # the checkpoint's schedule
    assert args.warmup == args.steps // 10
    assert (args.steps, args.batch_size, args.lr) == (800, 64, 1e-3)
    rn = parse_args(["--tiny", "--tower", "rn"])
    assert (rn.steps, rn.batch_size) == (800, 32)
    assert parse_args(["--tiny", "--tower", "rn", "--steps", "50"]).steps == 50
    for bad in ([], ["--tiny", "--model", "RN50"], ["--tiny", "--resume"],
                ["--tiny", "--tower", "vgg"], ["--tiny", "--batch-size", "1"],
                ["--tiny", "--out", "x", "--resume", "--overwrite"]):
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
    assert_close_to_round_off(short, full)


def test_siglip_trains_its_bias_from_minus_10_and_the_scale_from_10(tmp_path, capsys):
    assert main(SMALL + ["--steps", "4", "--loss", "siglip", "--out", str(tmp_path)]) == 0
    assert "temperature 0.100 → " in capsys.readouterr().out
    metrics = json.loads((tmp_path / METRICS).read_text())
    assert metrics["loss"] == "siglip"
    assert -10 < metrics["logit_bias"] < -9.9  # Adam moves it by about the rate per step
    assert 1 / metrics["temperature"] == pytest.approx(10, rel=0.01)
    # a CLIP checkpoint all the same: the bias is the loss's, not the model's
    miniclip.load(str(tmp_path / CHECKPOINT))


def test_an_interrupted_siglip_run_resumes_its_bias_to_the_same_result(tmp_path, monkeypatch):
    args = SMALL + ["--loss", "siglip", "--steps", "4", "--save-every", "2"]
    main(args + ["--out", str(tmp_path / "straight")])
    real_step = run_module.train_step

    def crash_at_step_3(model, optimizer, scaler, images, tokens, step, *rest, **options):
        if step == 3:
            raise KeyboardInterrupt
        return real_step(model, optimizer, scaler, images, tokens, step, *rest, **options)

    monkeypatch.setattr(run_module, "train_step", crash_at_step_3)
    assert main(args + ["--out", str(tmp_path / "resumed")]) == 130
    halfway = saved_run(tmp_path / "resumed")[1]["history"]["logit_bias"]
    monkeypatch.setattr(run_module, "train_step", real_step)
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0
    straight = json.loads((tmp_path / "straight" / METRICS).read_text())
    resumed = json.loads((tmp_path / "resumed" / METRICS).read_text())
    assert halfway > -10 and halfway != resumed["logit_bias"]  # saved midway, then trained on
    assert resumed["logit_bias"] == pytest.approx(straight["logit_bias"], rel=1e-6)
    np.testing.assert_allclose(resumed["loss_history"], straight["loss_history"], rtol=1e-5)


def test_resume_refuses_another_loss(tmp_path, capsys):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    assert main(SMALL + ["--steps", "4", "--loss", "siglip", "--out", str(tmp_path),
                         "--resume"]) == 2
    assert "loss 'clip' -> 'siglip'" in capsys.readouterr().err


def test_siglip_is_refused_for_a_data_parallel_run():
    with pytest.raises(SystemExit):
        parse_args(["--tiny", "--loss", "siglip", "--distributed"])


def test_resume_of_a_checkpoint_without_its_schedule_names_the_file_and_field(tmp_path, capsys):
    main(SMALL + ["--steps", "2", "--out", str(tmp_path)])
    path = tmp_path / CHECKPOINT
    with np.load(path) as saved:
        arrays = dict(saved)
    meta = json.loads(str(arrays["meta"]))
    del meta["extra"]["schedule"]                     # what a foreign or damaged writer leaves
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    before = path.read_bytes()

    assert main(SMALL + ["--steps", "4", "--out", str(tmp_path), "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{path}" in error and "extra" in error and "start afresh" in error
    assert path.read_bytes() == before

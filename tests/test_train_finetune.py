"""``python -m miniclip.train --init-from``: fine-tuning a run's checkpoint, a TorchScript
``.pt`` and a Hugging Face folder (train, resume, load back), locking towers, what the run
folder records, and the one-line errors of contradictory options."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import miniclip
import miniclip.training.finetune as finetune
from miniclip.training.cli import main, parse_args
from miniclip.training.config import CHECKPOINT, METRICS
from miniclip.training.finetune import FINE_TUNING, weights_sha256

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# 8 pairs per batch, 64 training and 60 test pictures (and 20 per shifted set).
SMALL = ["--tiny", "--batch-size", "8", "--train-size", "64", "--eval-size", "60", "--quiet"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """The checkpoint of a 3-step tiny-vit run, and one of a tiny-rn run."""
    runs = tmp_path_factory.mktemp("pretrained")
    assert main(SMALL + ["--steps", "3", "--out", str(runs / "vit")]) == 0
    assert main(SMALL + ["--tower", "rn", "--steps", "2", "--out", str(runs / "rn")]) == 0
    return {"vit": runs / "vit" / CHECKPOINT, "rn": runs / "rn" / CHECKPOINT}


@pytest.fixture
def fold_tokens(monkeypatch):
    """A tokenizer for the micro fixtures' vocabulary of 60 ids, which no real BPE has (the
    256 bytes alone need more): miniclip's ids folded into range, end-of-text the largest."""
    def tokenizer_for(model, merges=None):
        def tokenize(captions):
            ids = miniclip.tokenize(captions, context_length=model.context_length,
                                    truncate=True)                           # [N, C]
            end = ids.argmax(axis=1)
            folded = np.where(ids > 0, 1 + ids % (model.vocab_size - 2), 0)
            folded[np.arange(len(ids)), end] = model.vocab_size - 1
            return folded
        return tokenize

    monkeypatch.setattr(finetune, "tokenizer_for", tokenizer_for)


def checkpoint(out):
    with np.load(Path(out) / CHECKPOINT) as file:
        meta = json.loads(str(file["meta"]))
        return meta, {k: file[k] for k in file.files if k != "meta"}


def train_resume_and_load(source, out, extra=()):
    """Fine-tune ``source`` for 2 steps, resume to 4, and load the result; returns the
    checkpoint's meta, its arrays, and the loaded model."""
    args = SMALL + ["--init-from", str(source), "--save-every", "1", *extra]
    assert main(args + ["--steps", "2", "--out", str(out)]) == 0
    first, _ = checkpoint(out)
    assert main(args + ["--steps", "4", "--out", str(out), "--resume"]) == 0
    meta, arrays = checkpoint(out)
    assert first["step"] == 2 and meta["step"] == 4
    losses = meta["extra"]["history"]["losses"]
    assert len(losses) == 4 and losses[:2] == first["extra"]["history"]["losses"]
    model, _ = miniclip.load(Path(out) / CHECKPOINT)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, arrays[f"model/{name}"], err_msg=name)
    return meta, arrays, model


@pytest.fixture(scope="module")
def fine_tuned(pretrained, tmp_path_factory):
    """The run folder of the tiny-vit's checkpoint fine-tuned for 2 steps, resumed to 4."""
    out = tmp_path_factory.mktemp("fine_tuned") / "run"
    return out, train_resume_and_load(pretrained["vit"], out)


def test_fine_tuning_a_runs_checkpoint_trains_resumes_and_loads_back(pretrained, fine_tuned):
    _, (_, _, model) = fine_tuned
    start, _ = miniclip.load(pretrained["vit"])
    assert model.config == start.config
    assert not np.array_equal(model.visual.proj.numpy(), start.visual.proj.numpy())


def test_fine_tuning_the_micro_torchscript_fixture_trains_resumes_and_loads_back(
        tmp_path, fold_tokens):
    _, _, model = train_resume_and_load(FIXTURES / "vit_micro_jit.pt", tmp_path / "ft")
    assert model.config == miniclip.load(FIXTURES / "vit_micro_jit.pt")[0].config


def test_fine_tuning_the_hugging_face_fixture_trains_resumes_and_loads_back(tmp_path,
                                                                            fold_tokens):
    _, _, model = train_resume_and_load(FIXTURES / "vit_micro_hf", tmp_path / "ft")
    assert model.config == miniclip.load(FIXTURES / "vit_micro_hf")[0].config


def test_the_run_folder_records_the_source_its_sha256_and_the_settings(pretrained, fine_tuned):
    out, _ = fine_tuned
    metrics = json.loads((out / METRICS).read_text())
    expected = {"init_from": str(pretrained["vit"]),
                "init_from_sha256": weights_sha256(pretrained["vit"]),
                "lr": FINE_TUNING["lr"], "weight_decay": FINE_TUNING["weight_decay"],
                "adam": {"betas": [0.9, 0.98], "eps": 1e-6}, "model": "tiny-vit",
                "warmup": 0, "steps": 4}
    meta, _ = checkpoint(out)
    for key, value in expected.items():
        assert metrics[key] == value, key
    for key in set(expected) - {"warmup", "steps"}:
        assert meta["extra"][key] == expected[key], key
    assert "locked" not in meta["extra"]  # nothing locked: the setting is absent


def test_a_run_from_scratch_records_no_fine_tuning_settings(pretrained):
    """Only the loss joined the settings of a run from scratch (a checkpoint without it was
    trained with CLIP's, ``resume.SETTING_DEFAULTS``): none of fine-tuning's appear."""
    with np.load(pretrained["vit"]) as file:
        saved = json.loads(str(file["meta"]))["extra"]
    assert set(saved) == {"model", "batch_size", "seed", "data", "train_size", "lr",
                          "weight_decay", "world_size", "loss", "history", "schedule"}


def test_fine_tuning_defaults_are_gentler_than_training_from_scratch(pretrained):
    scratch = parse_args(["--tiny"])
    tuned = parse_args(["--tiny", "--init-from", str(pretrained["vit"])])
    assert (scratch.lr, scratch.weight_decay, scratch.steps, scratch.warmup) == \
        (1e-3, 0.2, 800, 80)
    assert (tuned.lr, tuned.weight_decay, tuned.steps, tuned.warmup) == \
        (FINE_TUNING["lr"], FINE_TUNING["weight_decay"], FINE_TUNING["steps"],
         int(FINE_TUNING["steps"] * FINE_TUNING["warmup_fraction"]))
    assert tuned.lr < scratch.lr and tuned.warmup < scratch.warmup


def test_the_help_states_the_fine_tuning_defaults(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"peak --lr {FINE_TUNING['lr']:g}" in text and "Adam's betas and eps" in text


@pytest.mark.parametrize("tower", ["vit", "rn"])
def test_lock_image_keeps_the_image_tower_bit_identical_through_a_run(pretrained, tmp_path,
                                                                     tower):
    out = tmp_path / "lit"
    assert main(SMALL + ["--init-from", str(pretrained[tower]), "--lock-image",
                         "--steps", "3", "--out", str(out)]) == 0
    start, _ = miniclip.load(pretrained[tower])
    meta, arrays = checkpoint(out)
    for name, value in start.state_dict().items():
        if name.startswith("visual."):  # weights and a ResNet's running statistics
            assert arrays[f"model/{name}"].tobytes() == value.tobytes(), name
    assert not np.array_equal(arrays["model/text_projection"], start.text_projection.numpy())
    assert meta["extra"]["locked"] == ["image"]
    # the optimiser held only what trains: its moments cover the unlocked parameters
    trainable = [n for n, _ in start.named_parameters() if not n.startswith("visual.")]
    moments = {key.split("/")[1] for key in arrays if key.startswith("optimizer/")}
    assert len(moments) == len(trainable)


def test_the_tokenizer_is_named(pretrained, tmp_path, capsys):
    main(SMALL + ["--init-from", str(pretrained["vit"]), "--steps", "1",
                  "--out", str(tmp_path)])
    assert "tokenizer: miniclip's own byte-level BPE (4,096 ids)" in capsys.readouterr().out


def test_resume_refuses_other_init_from_weights(pretrained, fine_tuned, tmp_path, capsys):
    out = tmp_path / "ft"
    shutil.copytree(fine_tuned[0], out)
    other = tmp_path / "other.npz"
    model, _ = miniclip.load(pretrained["vit"])
    miniclip.weights.save_npz(other, {k: v + 1 for k, v in model.state_dict().items()})
    assert main(SMALL + ["--init-from", str(other), "--steps", "4", "--out", str(out),
                         "--resume"]) == 2
    assert "init_from_sha256" in capsys.readouterr().err


@pytest.mark.parametrize("saved_lock, resumed_lock", [(["--lock-image"], []),
                                                      ([], ["--lock-image"])])
def test_resume_refuses_a_lock_the_saved_run_did_not_have_or_lacks_one_it_had(
        pretrained, tmp_path, capsys, saved_lock, resumed_lock):
    args = SMALL + ["--init-from", str(pretrained["vit"]), "--out", str(tmp_path)]
    assert main(args + saved_lock + ["--steps", "1"]) == 0
    assert main(args + resumed_lock + ["--steps", "2", "--resume"]) == 2
    assert "locked" in capsys.readouterr().err


def test_a_model_option_the_weights_contradict_is_one_error_line(pretrained, tmp_path, capsys):
    assert main(["--model", "tiny-rn", "--init-from", str(pretrained["vit"]), "--data",
                 str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--model tiny-rn has image_resolution=64" in error and "leave it out" in error


def test_a_tower_option_the_weights_contradict_is_one_error_line(pretrained, tmp_path, capsys):
    assert main(SMALL + ["--tower", "rn", "--init-from", str(pretrained["vit"]),
                         "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--tower rn, but the weights" in error


def test_a_vocabulary_no_tokenizer_fits_is_one_error_line_naming_the_fix(tmp_path, capsys):
    assert main(SMALL + ["--init-from", str(FIXTURES / "vit_micro_jit.pt"),
                         "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "60 ids" in error and "--tokenizer FILE" in error


def test_locking_both_towers_is_refused_naming_the_fix(pretrained, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(SMALL + ["--init-from", str(pretrained["vit"]), "--lock-image",
                            "--lock-text"])
    assert stop.value.code == 2
    assert "would train only the temperature" in capsys.readouterr().err


def test_init_from_without_data_is_refused(pretrained, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--init-from", str(pretrained["vit"])])
    assert "--init-from needs training data" in capsys.readouterr().err


def test_train_shift_draws_the_training_pictures_shifted(tmp_path):
    from miniclip.data import CLIPCollate
    from miniclip.training.config import RunConfig
    from miniclip.training.run import training_data

    collate = CLIPCollate.for_model(32, 32)
    brightness = {}
    for shift in ([], ["--train-shift", "background"]):
        config = RunConfig.from_args(parse_args(SMALL + shift + ["--out", str(tmp_path)]))
        images, _ = next(training_data(config, 32, collate)[0].batches())   # [8, 3, 32, 32]
        brightness[bool(shift)] = float(images.mean())
    assert brightness[True] > brightness[False] + 1  # bright stripes, not dark plain grounds
    assert main(SMALL + ["--train-shift", "background", "--steps", "1",
                         "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / METRICS).read_text())["train_shift"] == "background"

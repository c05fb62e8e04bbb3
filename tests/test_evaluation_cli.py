"""``python -m miniclip.evaluation``: classify, retrieval and predict end to end through
``main`` on tiny generated folders, their ``--json`` output, and one-line errors."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miniclip import create_model, load, nn
from miniclip.evaluation import (
    encode_image_files,
    read_caption_folder,
    retrieval_recall,
    tokenizer_for,
)
from miniclip.evaluation.cli import main
from miniclip.evaluation.zeroshot import encode_texts

REPO = Path(__file__).resolve().parent.parent
COLOURS = {"red": (210, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny-vit's state dict saved as a plain ``.npz`` (random weights, seed 0)."""
    nn.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-vit.npz"
    np.savez(path, **create_model("tiny-vit").state_dict())
    return str(path)


def coloured_image(path, colour, seed):
    """A 32 x 32 noisy picture of one colour."""
    noise = np.random.default_rng(seed).integers(-30, 31, size=(32, 32, 3))
    pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def class_folder(root, per_class=6):
    """``root/<colour>_thing/<i>.png`` plus one corrupt file: an ImageFolder of 3 classes."""
    for label, (name, colour) in enumerate(COLOURS.items()):
        for i in range(per_class):
            coloured_image(root / f"{name}_thing" / f"{i}.png", colour, seed=10 * label + i)
    (root / "red_thing" / "corrupt.png").write_bytes(b"not a PNG at all")
    return root


def caption_folder(root):
    """Six images, two captions each, in captions.csv."""
    rows = [("filename", "caption")]
    for label, (name, colour) in enumerate(COLOURS.items()):
        for i in range(2):
            coloured_image(root / f"{name}{i}.png", colour, seed=10 * label + i)
            rows += [(f"{name}{i}.png", f"a {name} picture"), (f"{name}{i}.png", f"all {name}")]
    with open(root / "captions.csv", "w", newline="") as file:
        csv.writer(file).writerows(rows)
    return root


def test_classify_reports_zero_shot_and_linear_probe_in_json(tmp_path, weights, capsys):
    folder = class_folder(tmp_path / "colours")
    out = tmp_path / "results" / "metrics.json"
    assert main(["classify", str(folder), "--weights", weights, "--linear-probe",
                 "--test-fraction", "0.5", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["command"] == "classify" and results["model"] == weights
    assert results["classnames"] == ["blue thing", "green thing", "red thing"]
    assert results["images"] == 18 and results["skipped_images"] == [
        str(folder / "red_thing" / "corrupt.png")]
    assert results["test_images"] == 9 and results["linear_probe_train_images"] == 9
    assert results["zeroshot_top5"] == 1.0  # three classes: always in the top 5
    assert results["zeroshot_top1"] in {i / 9 for i in range(10)}
    # colours are linearly separable even in a random network's features
    assert results["linear_probe_top1"] == 1.0
    assert results["linear_probe_l2"] in {float(k) for k in results["linear_probe_validation_top1"]}
    printed = capsys.readouterr()
    assert "18 images in 3 classes (1 unreadable file skipped)" in printed.out
    assert "linear probe: top-1 100.0% (trained on 9 images" in printed.out
    assert printed.err == ("python -m miniclip.evaluation: warning: skipped 1 of 19 image files "
                           f"that could not be read: {folder / 'red_thing' / 'corrupt.png'} "
                           "(cannot identify image file "
                           f"'{folder / 'red_thing' / 'corrupt.png'}')\n")


def test_classify_probe_trains_on_train_dir_and_scores_all_of_dir(tmp_path, capsys):
    train, test = class_folder(tmp_path / "train", 4), class_folder(tmp_path / "test", 3)
    assert main(["classify", str(test), "--train-dir", str(train), "--linear-probe",
                 "--model", "tiny-vit", "--json", str(tmp_path / "m.json")]) == 0
    results = json.loads((tmp_path / "m.json").read_text())
    assert results["test_images"] == 9 and results["linear_probe_train_images"] == 12
    assert "random weights (seed 0)" in results["model"]


def test_classify_refuses_train_dir_with_other_classes(tmp_path, capsys):
    class_folder(tmp_path / "test", 1)
    coloured_image(tmp_path / "train" / "purple_thing" / "0.png", (150, 60, 200), 0)
    assert main(["classify", str(tmp_path / "test"), "--train-dir", str(tmp_path / "train"),
                 "--linear-probe", "--model", "tiny-vit"]) == 2
    assert "they must match" in capsys.readouterr().err


def test_retrieval_scores_every_caption_of_each_image(tmp_path, weights):
    folder = caption_folder(tmp_path / "pairs")
    out = tmp_path / "retrieval.json"
    assert main(["retrieval", str(folder), "--weights", weights, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert (results["images"], results["captions"]) == (6, 12)
    # the same numbers from the library, wired by hand: captions 2i, 2i+1 describe image i
    model, preprocess = load(weights)
    listed = read_caption_folder(folder)
    images, _, _ = encode_image_files(model, preprocess, listed.paths)
    texts = encode_texts(model, tokenizer_for(model)(sum(listed.captions, [])))
    expected = retrieval_recall(images @ texts.T, np.repeat(np.arange(6), 2))
    assert {k: results[k] for k in expected} == expected
    assert results["t2i_R@10"] == 1.0  # six images: every one is in the top 10


def test_predict_prints_top_k_labels_with_probabilities(tmp_path, weights, capsys):
    red = coloured_image(tmp_path / "red.png", COLOURS["red"], 0)
    blue = coloured_image(tmp_path / "blue.png", COLOURS["blue"], 1)
    out = tmp_path / "predictions.json"
    assert main(["predict", "--labels", "red, green ,blue", str(red), str(blue),
                 "--weights", weights, "--top-k", "2", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model: ")
    assert lines[1] == str(red) and lines[4] == str(blue)
    predictions = json.loads(out.read_text())["predictions"]
    for block, prediction in zip((lines[2:4], lines[5:7]), predictions):
        probabilities = [p["probability"] for p in prediction["labels"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 1 / 3 <= probabilities[0] <= 1 and sum(probabilities) <= 1 + 1e-6
        assert block == [f"  {100 * p['probability']:5.1f}%  {p['label']}"
                         for p in prediction["labels"]]
        assert {p["label"] for p in prediction["labels"]} <= {"red", "green", "blue"}


def test_predict_skips_an_unreadable_image_and_exits_1(tmp_path, weights, capsys):
    red = coloured_image(tmp_path / "red.png", COLOURS["red"], 0)
    assert main(["predict", "--labels", "red,blue", str(red), str(tmp_path / "missing.png"),
                 "--weights", weights]) == 1
    printed = capsys.readouterr()
    assert printed.out.splitlines()[1] == str(red)
    assert "warning: skipped 1 of 2 image files that could not be read: " in printed.err
    assert "missing.png (" in printed.err


@pytest.mark.parametrize("command", [
    ["classify", "{tmp}/nowhere", "--model", "tiny-vit"],
    ["retrieval", "{tmp}/nowhere", "--model", "tiny-vit"],
])
def test_a_missing_folder_is_one_error_line_and_exit_code_2(tmp_path, capsys, command):
    code = main([part.format(tmp=tmp_path) for part in command])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(
        f"python -m miniclip.evaluation: error: no such folder: {tmp_path}/nowhere (expected ")
    assert captured.err.count("\n") == 1


def test_missing_weights_file_is_one_error_line(tmp_path, capsys):
    class_folder(tmp_path / "data", 1)
    assert main(["classify", str(tmp_path / "data"), "--weights", "nope.npz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope.npz' is neither a released model" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        main(["classify", str(tmp_path / "nowhere"), "--model", "tiny-vit", "--debug"])


def test_bad_flag_combination_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", str(tmp_path), "--model", "tiny-vit", "--train-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "error: --train-dir is for --linear-probe" in capsys.readouterr().err


def test_python_dash_m_miniclip_zeroshot_runs_the_cli():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    completed = subprocess.run([sys.executable, "-m", "miniclip.evaluation", "--help"],
                               capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "usage: python -m miniclip.evaluation [-h] COMMAND" in completed.stdout
    assert completed.stderr == ""


def test_retrieval_cuts_a_caption_longer_than_the_context_instead_of_stopping(tmp_path, weights):
    folder = caption_folder(tmp_path / "pairs")
    with open(folder / "captions.csv", "a", newline="") as file:
        csv.writer(file).writerow(("red0.png", "a very long red picture " * 40))  # ~200 tokens
    out = tmp_path / "retrieval.json"
    assert main(["retrieval", str(folder), "--weights", weights, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["captions"] == 13


def test_a_damaged_weights_file_is_one_error_line_naming_it_and_the_fix(tmp_path, weights, capsys):
    class_folder(tmp_path / "data", 1)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(Path(weights).read_bytes()[:5000])
    assert main(["classify", str(tmp_path / "data"), "--weights", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{damaged}: " in err and "download or copy it again" in err

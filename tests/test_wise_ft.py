"""WiSE-FT (``evaluation/wise_ft.py``): the weight-space mix and its α sweep, in the library
and through ``python -m miniclip.evaluation interpolate`` and ``wise-ft``."""
import json

import numpy as np
import pytest

from miniclip import create_model, load, nn
from miniclip.data import SyntheticShapes
from miniclip.evaluation.cli import main
from miniclip.evaluation.wise_ft import (
    best_alpha,
    first_mismatch,
    interpolate,
    model_state,
    sweep,
)
from miniclip.weights import save_npz

#: A small tiny-vit: miniclip's vocabulary, 16-pixel pictures, one layer per tower.
SMALL = dict(image_resolution=16, vision_layers=1, vision_width=64, transformer_width=64,
             transformer_heads=1, transformer_layers=1, embed_dim=16)


def state(seed, **overrides):
    nn.manual_seed(seed)
    return create_model("tiny-vit", **{**SMALL, **overrides}).state_dict()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A "zero-shot" state dict and a "fine-tuned" one near it, both saved as .npz."""
    folder = tmp_path_factory.mktemp("wise_ft")
    zero_shot = state(0)
    rng = np.random.default_rng(1)
    fine_tuned = {key: value + 0.05 * rng.standard_normal(value.shape).astype(value.dtype)
                  for key, value in zero_shot.items()}
    save_npz(folder / "zero_shot.npz", zero_shot)
    save_npz(folder / "fine_tuned.npz", fine_tuned)
    return zero_shot, fine_tuned, folder


def test_alpha_0_and_1_give_the_two_ends_exactly(pair):
    zero_shot, fine_tuned, _ = pair
    # values of very different sizes, where z + α·(f − z) would lose the small one at α = 1
    zero_shot = {**zero_shot, "far": np.array([1e8, -3e7], dtype=np.float32)}
    fine_tuned = {**fine_tuned, "far": np.array([1.0, 2.5e-3], dtype=np.float32)}
    for alpha, end in ((0, zero_shot), (1, fine_tuned)):
        mixed = interpolate(zero_shot, fine_tuned, alpha)
        assert all(mixed[key].tobytes() == end[key].tobytes() for key in end)


def test_alpha_one_half_gives_the_mean(pair):
    zero_shot, fine_tuned, _ = pair
    mixed = interpolate(zero_shot, fine_tuned, 0.5)
    for key in zero_shot:
        np.testing.assert_array_equal(mixed[key], (zero_shot[key] + fine_tuned[key]) / 2)
        assert mixed[key].dtype == np.float32


def test_an_alpha_in_between_is_the_weighted_sum(pair):
    zero_shot, fine_tuned, _ = pair
    key = "visual.proj"
    expected = 0.75 * zero_shot[key].astype(np.float64) + 0.25 * fine_tuned[key]
    np.testing.assert_allclose(interpolate(zero_shot, fine_tuned, 0.25)[key], expected,
                               rtol=4 * np.finfo(np.float32).eps, atol=1e-7)


def test_integer_buffers_are_rounded_to_an_integer():
    zero_shot = {"bn.num_batches_tracked": np.array(10, dtype=np.int64)}
    fine_tuned = {"bn.num_batches_tracked": np.array(21, dtype=np.int64)}
    mixed = interpolate(zero_shot, fine_tuned, 0.5)["bn.num_batches_tracked"]
    assert mixed.dtype == np.int64 and mixed == 16  # 15.5 rounds to the even 16


def test_different_architectures_are_refused_naming_the_first_mismatched_key():
    wide, narrow = state(0), state(0, embed_dim=32)
    with pytest.raises(ValueError, match=r"'text_projection' has shape \[64, 16\] in the "
                                         r"zero-shot weights but \[64, 32\]"):
        interpolate(wide, narrow, 0.5)
    deeper = state(0, transformer_layers=2)
    assert first_mismatch(deeper, wide).startswith(
        "'transformer.resblocks.1.attn.in_proj_weight' is in the zero-shot weights but not")
    assert first_mismatch(wide, deeper).startswith(
        "'transformer.resblocks.1.attn.in_proj_weight' is in the fine-tuned weights but not")
    assert first_mismatch(wide, state(1)) is None  # same architecture, other seed


def test_alpha_outside_0_1_is_refused(pair):
    zero_shot, fine_tuned, _ = pair
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        interpolate(zero_shot, fine_tuned, 1.5)


def test_sweep_evaluates_the_model_of_each_alpha(pair):
    zero_shot, fine_tuned, _ = pair
    rows = sweep(zero_shot, fine_tuned, [0, 1],
                 lambda model: {"proj": float(model.visual.proj.numpy()[0, 0])})
    assert [row["proj"] for row in rows] == [zero_shot["visual.proj"][0, 0],
                                            fine_tuned["visual.proj"][0, 0]]


def test_best_alpha_says_whether_it_beats_both_ends():
    assert best_alpha([0, 0.5, 1], [0.4, 0.6, 0.5]) == (0.5, True)
    assert best_alpha([0, 0.5, 1], [0.4, 0.45, 0.5]) == (1.0, False)


def test_interpolate_command_writes_weights_that_miniclip_load_reads(pair, tmp_path, capsys):
    zero_shot, fine_tuned, folder = pair
    out = tmp_path / "mixed.npz"
    assert main(["interpolate", str(folder / "zero_shot.npz"), str(folder / "fine_tuned.npz"),
                 "--alpha", "0.5", "--out", str(out)]) == 0
    model, _ = load(out)
    np.testing.assert_array_equal(model.visual.proj.numpy(),
                                  (zero_shot["visual.proj"] + fine_tuned["visual.proj"]) / 2)
    assert "load it with miniclip.load" in capsys.readouterr().out


def test_interpolate_command_refuses_other_architectures_in_one_line(pair, tmp_path, capsys):
    _, _, folder = pair
    other = tmp_path / "other.npz"
    save_npz(other, state(0, embed_dim=32))
    assert main(["interpolate", str(folder / "zero_shot.npz"), str(other), "--alpha", "0.5",
                 "--out", str(tmp_path / "mixed.npz")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'text_projection' has shape" in error
    assert str(other) in error and not (tmp_path / "mixed.npz").exists()


def test_wise_ft_command_writes_the_accuracies_per_alpha_to_json_and_a_plot(pair, tmp_path,
                                                                           capsys):
    _, _, folder = pair
    clean = SyntheticShapes(30, 16, split="test", seed=0).save_class_folders(tmp_path / "clean")
    shifted = SyntheticShapes(30, 16, split="test", seed=0, shift="background") \
        .save_class_folders(tmp_path / "striped")
    results, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    assert main(["wise-ft", str(folder / "zero_shot.npz"), str(folder / "fine_tuned.npz"),
                 "--alphas", "0,0.5,1", "--eval-dir", str(clean), "--eval-dir", str(shifted),
                 "--templates", str(clean / "templates.txt"), "--json", str(results),
                 "--plot", str(plot)]) == 0
    written = json.loads(results.read_text())
    assert written["alphas"] == [0.0, 0.5, 1.0]
    assert set(written["top1"]) == {str(clean), str(shifted)}
    assert all(len(v) == 3 and all(0 <= a <= 1 for a in v) for v in written["top1"].values())
    np.testing.assert_allclose(written["mean_top1"],
                               np.mean(list(written["top1"].values()), axis=0))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best mean at" in capsys.readouterr().out
    # α = 0 scores exactly what the zero-shot weights score with classify
    assert main(["classify", str(clean), "--weights", str(folder / "zero_shot.npz"),
                 "--templates", str(clean / "templates.txt"),
                 "--json", str(tmp_path / "c.json")]) == 0
    classify = json.loads((tmp_path / "c.json").read_text())
    assert classify["zeroshot_top1"] == written["top1"][str(clean)][0]


def test_wise_ft_command_writes_its_json_beside_the_plot_by_default(pair, tmp_path):
    _, _, folder = pair
    clean = SyntheticShapes(10, 16, split="test", seed=0).save_class_folders(tmp_path / "clean")
    assert main(["wise-ft", str(folder / "zero_shot.npz"), str(folder / "fine_tuned.npz"),
                 "--alphas", "0,1", "--eval-dir", str(clean), "--eval-dir", str(clean),
                 "--plot", str(tmp_path / "sweep.png")]) == 0
    assert json.loads((tmp_path / "sweep.json").read_text())["alphas"] == [0.0, 1.0]


def test_a_bad_alphas_list_is_a_usage_error(pair, capsys):
    _, _, folder = pair
    with pytest.raises(SystemExit):
        main(["wise-ft", str(folder / "zero_shot.npz"), str(folder / "fine_tuned.npz"),
              "--alphas", "0,2", "--eval-dir", "x"])
    assert "give one or more α in [0, 1]" in capsys.readouterr().err


def test_model_state_of_a_training_checkpoint_is_its_model(tmp_path):
    from miniclip.training.state import save_training_state

    nn.manual_seed(0)
    model = create_model("tiny-vit", **SMALL)
    save_training_state(tmp_path / "checkpoint.npz", model, step=3)
    weights = model_state(tmp_path / "checkpoint.npz")
    assert set(weights) == set(model.state_dict())

"""``python -m miniclip.train --data DIR``: the folder's dataset and loader, and a short run on
a folder with a blank caption and a corrupt image (kept apart from test_train.py, which
tests the training loop itself)."""
import numpy as np
import pytest
from PIL import Image

from miniclip.data import CLIPCollate, Prefetcher
from miniclip.training.cli import main, parse_args
from miniclip.training.config import RunConfig
from miniclip.training.run import training_data


def caption_folder(root, images=6):
    """``images`` random pictures, two captions each, plus a blank row and a corrupt file."""
    rows = ["filename,caption"]
    for i in range(images):
        pixels = np.random.default_rng(i).integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i}.png")
        rows += [f"{i}.png,picture {i}", f'{i}.png,"image {i}, in colour"']
    (root / "corrupt.png").write_bytes(b"not a PNG")
    rows += ["corrupt.png,never read", "0.png,"]
    (root / "captions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    return root


@pytest.mark.parametrize("flags, random_crop, prefetch", [
    ([], 16, 2),                                   # the paper's random square crop, prefetched
    (["--no-augment", "--prefetch", "0"], None, 0),
])
def test_data_flags_choose_the_augmentation_and_the_prefetching(tmp_path, flags, random_crop,
                                                                prefetch):
    args = parse_args(["--tiny", "--data", str(caption_folder(tmp_path)), "--seed", "3",
                       "--batch-size", "4"] + flags)
    with pytest.warns(UserWarning):
        loader, evaluation = training_data(RunConfig.from_args(args), 16,
                                           CLIPCollate.for_model(16, context_length=20))
    assert evaluation is None
    assert (loader.dataset.random_crop, loader.dataset.seed, loader.prefetch) == (random_crop, 3,
                                                                                  prefetch)
    assert len(loader.dataset) == 6 and loader.batch_size == 4
    batches = loader.batches()
    assert isinstance(batches, Prefetcher) == bool(prefetch)
    images, tokens = next(batches)
    assert images.shape == (4, 3, 16, 16) and tokens.shape == (4, 20)


def test_training_on_a_folder_skips_what_it_cannot_use_and_runs(tmp_path, capsys):
    folder = caption_folder(tmp_path)
    assert main(["--tiny", "--data", str(folder), "--steps", "3", "--batch-size", "4",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 0
    printed = capsys.readouterr()
    # each warning is one line naming the program, not Python's "file:line: UserWarning"
    warned = [line for line in printed.err.splitlines() if "warning:" in line]
    assert all(line.startswith("python -m miniclip.train: warning: ") for line in warned)
    assert "UserWarning" not in printed.err
    assert any("skipped 1 of 14 rows" in m and "line 15 (no caption for 0.png)" in m
               for m in warned)
    assert any("skipped 1 of 7 image files" in m and "corrupt.png" in m for m in warned)
    assert "trained 3 steps" in printed.out

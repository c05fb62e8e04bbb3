"""The held-out combinations, caption phrasings and shifted test pictures of
``SyntheticShapes`` (its basics are in ``test_data.py``)."""
import numpy as np
import pytest

from miniclip.data import COLOURS, SHAPES, SyntheticShapes
from miniclip.data.synthetic import HELD_OUT, NOUN_PHRASES, OPENINGS


def pixels(image):
    return np.asarray(image, dtype=np.float64)  # [H, W, 3]


def test_held_out_pairs_are_one_per_colour_and_cover_every_shape():
    assert sorted(c for c, _ in HELD_OUT) == sorted(COLOURS)
    assert set(s for _, s in HELD_OUT) == set(SHAPES)


@pytest.mark.parametrize("captions", ["plain", "varied"])
def test_the_training_split_never_draws_or_names_a_held_out_pair(captions):
    dataset = SyntheticShapes(1500, split="train", captions=captions, mention_probability=1.0)
    seen = set()
    for i in range(len(dataset)):
        a = dataset.attributes(i)
        seen.add((a["colour"], a["shape"]))
        caption = dataset[i][1] if i < 300 else None  # rendering is the slow part
        if caption is not None:  # a caption names exactly its own colour and shape
            words = caption.rstrip(".").split()
            assert [w for w in words if w in COLOURS] == [a["colour"]], caption
            assert [w for w in words if w in SHAPES] == [a["shape"]], caption
    assert not seen & set(HELD_OUT)
    assert len(seen) == len(COLOURS) * len(SHAPES) - len(HELD_OUT)  # every other pair appears


def test_the_test_split_draws_every_pair_and_flags_the_held_out_ones():
    dataset = SyntheticShapes(600, split="test")
    labels = dataset.labels()
    assert set(labels) == set(range(30))
    held_out = dataset.held_out_classes()
    assert sorted(dataset.classnames[k] for k in held_out) == sorted(f"{c} {s}" for c, s in HELD_OUT)
    assert 0.1 < np.isin(labels, held_out).mean() < 0.3  # about 6 in 30


def test_varied_captions_use_every_opening_and_phrasing():
    dataset = SyntheticShapes(400, captions="varied", mention_probability=0.0)
    captions = [dataset._sample(i)[1] for i in range(len(dataset))]
    phrasings = [[phrase.format(**dataset.attributes(i)) for phrase in NOUN_PHRASES]
                 for i in range(len(dataset))]  # [400, 4] how item i could be phrased
    for opening in OPENINGS:
        assert any(c.startswith(opening + " ") for c in captions), opening
    for k, phrase in enumerate(NOUN_PHRASES):
        assert any(c.endswith(f" {ways[k]}.") for c, ways in zip(captions, phrasings)), phrase
    plain = SyntheticShapes(50, captions="plain", mention_probability=0.0)
    assert all(plain._sample(i)[1] == "a photo of a {colour} {shape}.".format(**plain.attributes(i))
               for i in range(50))


def test_an_unknown_caption_style_or_shift_is_refused():
    with pytest.raises(ValueError, match="captions"):
        SyntheticShapes(2, captions="poetic")
    with pytest.raises(ValueError, match="shift"):
        SyntheticShapes(2, shift="rain")


def shape_mask(dataset, index):
    """Pixels [H, W] of item ``index`` within 60 levels of its colour (the shape's pixels)."""
    colour = np.array(COLOURS[dataset.attributes(index)["colour"]])
    return np.abs(pixels(dataset[index][0]) - colour).max(axis=-1) < 60


def test_shifted_pictures_show_the_same_item_drawn_differently():
    # The same seed, split and index give the same colour, shape, size and position.
    plain = SyntheticShapes(12, 32, split="test")
    shifted = {s: SyntheticShapes(12, 32, split="test", shift=s)
               for s in ("outline", "noise", "background")}
    for i in range(12):
        for dataset in shifted.values():
            assert dataset.attributes(i) == plain.attributes(i)
        # an outline colours fewer pixels than the filled shape
        assert shape_mask(shifted["outline"], i).sum() < 0.8 * shape_mask(plain, i).sum()
        # heavy noise: neighbouring pixels differ far more
        rough = lambda image: np.abs(np.diff(pixels(image), axis=1)).mean()  # noqa: E731
        assert rough(shifted["noise"][i][0]) > 2.5 * rough(plain[i][0])
        # the background (the corners, away from every shape) is bright, not dark
        corners = lambda image: pixels(image)[[0, 0, -1, -1], [0, -1, 0, -1]].mean()  # noqa: E731
        assert corners(plain[i][0]) < 110 < corners(shifted["background"][i][0])


def test_scaled_pictures_draw_bigger_shapes_and_faded_ones_keep_a_third_of_the_contrast():
    plain = SyntheticShapes(12, 32, split="test")
    scaled = SyntheticShapes(12, 32, split="test", shift="scale")
    faded = SyntheticShapes(12, 32, split="test", shift="faded")
    for i in range(12):
        assert scaled.attributes(i) == faded.attributes(i) == plain.attributes(i)
        # a radius of 0.36 against at most 0.25 * 1.1: at least 1.6 times the area
        assert shape_mask(scaled, i).sum() > 1.6 * shape_mask(plain, i).sum()
        spread = pixels(faded[i][0]).std() / pixels(plain[i][0]).std()
        assert 0.3 < spread < 0.4


def test_save_class_folders_writes_every_class_folder_and_the_templates(tmp_path):
    from miniclip.evaluation import read_classification_folder

    dataset = SyntheticShapes(12, 16, split="test", seed=3, shift="background")
    root = dataset.save_class_folders(tmp_path / "striped")
    folder = read_classification_folder(root)
    assert folder.classnames == sorted(dataset.classnames)  # all 30, pictured or not
    assert len(folder.paths) == 12
    for path, label in zip(folder.paths, folder.labels):
        index = int(path.stem)
        assert folder.classnames[label] == dataset.classnames[dataset.label(index)]
    assert (root / "templates.txt").read_text().splitlines() == list(dataset.templates)

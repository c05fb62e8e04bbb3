"""Training data: the synthetic shapes dataset, the image-caption folder and the batcher."""
import numpy as np
import pytest
from PIL import Image

from miniclip.data import (COLOURS, POSITIONS, SHAPES, SIZES, ArrayDataset, CLIPCollate,
                           DataLoader, ImageTextFolder, SyntheticShapes, stack_fields)
from miniclip.data.preprocess import Preprocess
from miniclip.tokenizer import tokenize


# ----------------------------------------------------------------------------- SyntheticShapes
def pixels(image):
    return np.asarray(image)


def test_synthetic_item_is_an_rgb_image_of_the_requested_size_with_a_caption():
    image, caption = SyntheticShapes(4, image_size=24)[0]
    assert image.mode == "RGB" and image.size == (24, 24)
    assert caption.startswith("a photo of a ") and caption.endswith(".")


def test_synthetic_items_depend_only_on_seed_split_and_index():
    a, b = SyntheticShapes(10, seed=3), SyntheticShapes(10, seed=3)
    _ = [a[i] for i in range(10)]  # reading other items first changes nothing
    assert a[7][1] == b[7][1]
    np.testing.assert_array_equal(pixels(a[7][0]), pixels(b[7][0]))


def test_synthetic_seeds_and_splits_give_different_items():
    base = SyntheticShapes(20, seed=0)
    for other in (SyntheticShapes(20, seed=1), SyntheticShapes(20, seed=0, split="test")):
        assert any(not np.array_equal(pixels(base[i][0]), pixels(other[i][0])) for i in range(20))
        assert [base[i][1] for i in range(20)] != [other[i][1] for i in range(20)]


def test_synthetic_caption_names_the_drawn_colour_and_shape():
    dataset = SyntheticShapes(50, mention_probability=1.0)
    for i in range(50):
        a = dataset.attributes(i)
        _, caption = dataset[i]
        assert caption == (f"a photo of a {a['size']} {a['colour']} {a['shape']} "
                           f"{POSITIONS[a['position']][1]}.")


def test_synthetic_captions_mention_size_and_position_only_sometimes():
    dataset = SyntheticShapes(200, mention_probability=0.5)
    captions = [dataset[i][1] for i in range(200)]
    with_size = sum(any(f" {s} " in c for s in SIZES) for c in captions)
    with_position = sum(any(p[1] in c for p in POSITIONS.values()) for c in captions)
    assert 60 < with_size < 140 and 60 < with_position < 140
    plain = SyntheticShapes(50, mention_probability=0.0)
    for i in range(50):
        a = plain.attributes(i)
        assert plain[i][1] == f"a photo of a {a['colour']} {a['shape']}."


def test_synthetic_image_shows_the_named_colour():
    # The pixel most unlike the background is on the shape; its nearest named colour is the
    # caption's colour.
    dataset = SyntheticShapes(30, image_size=32)
    names, rgb = list(COLOURS), np.array(list(COLOURS.values()), dtype=float)
    for i in range(30):
        image = pixels(dataset[i][0]).reshape(-1, 3).astype(float)
        background = np.median(image, axis=0)
        shape_pixel = image[np.argmax(np.abs(image - background).sum(axis=1))]
        nearest = names[np.argmin(np.abs(rgb - shape_pixel).sum(axis=1))]
        assert nearest == dataset.attributes(i)["colour"]


def test_synthetic_large_shapes_cover_more_pixels_than_small_ones():
    for shape in SHAPES:
        dataset = SyntheticShapes(40, image_size=32, colours=("white",), shapes=(shape,),
                                  held_out=())  # white circles are held out of training
        area = {"small": [], "large": []}
        for i in range(40):
            image = pixels(dataset[i][0]).reshape(-1, 3).astype(float)
            covered = (np.abs(image - np.median(image, axis=0)).sum(axis=1) > 200).sum()
            area[dataset.attributes(i)["size"]].append(covered)
        assert min(area["large"]) > 1.5 * max(area["small"]), shape


def test_synthetic_classnames_are_colour_shape_pairs_and_labels_index_them():
    dataset = SyntheticShapes(40, colours=("red", "blue"), shapes=("circle", "square"))
    assert dataset.classnames == ["red circle", "red square", "blue circle", "blue square"]
    labels = dataset.labels()
    assert labels.dtype == np.int64 and labels.shape == (40,)
    for i in range(40):
        a = dataset.attributes(i)
        assert dataset.classnames[labels[i]] == f"{a['colour']} {a['shape']}"
    assert all("{}" in t for t in dataset.templates)


def test_synthetic_rejects_unknown_attributes_and_out_of_range_indices():
    with pytest.raises(ValueError, match="hexagon"):
        SyntheticShapes(4, shapes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="split"):
        SyntheticShapes(4, split="validation")
    with pytest.raises(IndexError):
        SyntheticShapes(4)[4]


def test_every_shape_can_be_drawn():
    for shape in SHAPES:
        image, caption = SyntheticShapes(1, shapes=(shape,))[0]
        assert shape in caption and pixels(image).std() > 10


# ----------------------------------------------------------------------------- ImageTextFolder
def make_folder(tmp_path, rows, name="captions.csv", delimiter=","):
    for i, (filename, _) in enumerate(rows):
        Image.new("RGB", (8 + i, 6), (10 * i, 0, 0)).save(tmp_path / filename)
    lines = [f"filename{delimiter}caption"] + [f"{f}{delimiter}{c}" for f, c in rows]
    (tmp_path / name).write_text("\n".join(lines) + "\n")


def test_folder_reads_images_and_captions_in_file_order(tmp_path):
    make_folder(tmp_path, [("a.png", "a red thing"), ("b.jpg", "a blue thing")])
    dataset = ImageTextFolder(tmp_path)
    assert len(dataset) == 2
    image, caption = dataset[1]
    assert caption == "a blue thing" and image.size == (9, 6)


def test_folder_reads_tab_separated_captions(tmp_path):
    make_folder(tmp_path, [("a.png", "a cat, sitting")], name="captions.tsv", delimiter="\t")
    assert ImageTextFolder(tmp_path, "captions.tsv")[0][1] == "a cat, sitting"


def test_folder_names_a_corrupt_image(tmp_path):
    make_folder(tmp_path, [("a.png", "fine")])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with open(tmp_path / "captions.csv", "a") as file:
        file.write("broken.png,not fine\n")
    with pytest.raises(OSError, match="broken.png"):
        ImageTextFolder(tmp_path)[1]


def test_folder_names_a_missing_image(tmp_path):
    (tmp_path / "captions.csv").write_text("filename,caption\nghost.png,boo\n")
    with pytest.raises(OSError, match="ghost.png"):
        ImageTextFolder(tmp_path)[0]


def test_folder_names_missing_columns(tmp_path):
    (tmp_path / "captions.csv").write_text("image,text\na.png,hi\n")
    with pytest.raises(ValueError, match="filename"):
        ImageTextFolder(tmp_path)


# ----------------------------------------------------------------------------- DataLoader
def test_loader_counts_batches_with_and_without_drop_last():
    data = list(range(10))
    assert [len(b) for b in DataLoader(data, 4)] == [4, 4, 2]
    assert [len(b) for b in DataLoader(data, 4, drop_last=True)] == [4, 4]
    assert len(DataLoader(data, 4)) == 3 and len(DataLoader(data, 4, drop_last=True)) == 2


def test_loader_without_shuffle_keeps_dataset_order():
    assert [b for b in DataLoader(list("abcde"), 2)] == [["a", "b"], ["c", "d"], ["e"]]


def test_shuffled_epoch_visits_every_item_once_in_a_seeded_order():
    data = list(range(12))
    first = DataLoader(data, 5, shuffle=True, seed=7)
    epoch0, epoch1 = [x for b in first for x in b], [x for b in first for x in b]
    assert sorted(epoch0) == data and sorted(epoch1) == data
    assert epoch0 != epoch1 != data  # a new order every epoch
    again = DataLoader(data, 5, shuffle=True, seed=7)
    assert [x for b in again for x in b] == epoch0
    other_seed = DataLoader(data, 5, shuffle=True, seed=8)
    assert [x for b in other_seed for x in b] != epoch0


def test_step_stream_resumes_exactly_where_it_stopped():
    loader = DataLoader(list(range(10)), 3, shuffle=True, seed=1, drop_last=True)
    stream = loader.batches()
    first_eight = [next(stream) for _ in range(8)]  # crosses epochs (3 batches each)
    resumed = loader.batches(start_step=5)
    assert [next(resumed) for _ in range(3)] == first_eight[5:]


def test_loader_refuses_a_dataset_too_small_for_one_batch():
    with pytest.raises(ValueError, match="no batch"):
        DataLoader([1, 2], 3, drop_last=True)


def test_collate_stacks_images_and_tokenizes_captions():
    collate = CLIPCollate(lambda image: np.asarray(image, np.float32).transpose(2, 0, 1) / 255,
                          lambda captions: np.array([[len(c), 1] for c in captions]))
    loader = DataLoader(SyntheticShapes(6, image_size=16), 4, collate=collate)
    images, tokens = next(iter(loader))
    assert images.shape == (4, 3, 16, 16) and images.dtype == np.float32
    assert tokens.shape == (4, 2) and tokens.dtype == np.int64


def test_clip_collate_preprocesses_as_clip_and_tokenizes_to_the_context_length():
    dataset = SyntheticShapes(3, image_size=32)
    images, tokens = CLIPCollate.for_model(32, context_length=20)([dataset[i] for i in range(3)])
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.float32
    np.testing.assert_array_equal(images[1], Preprocess(32)(dataset[1][0]))
    assert tokens.dtype == np.int64
    np.testing.assert_array_equal(tokens, tokenize([dataset[i][1] for i in range(3)], 20))


def test_clip_collate_resizes_images_of_another_size():
    images, _ = CLIPCollate.for_model(16, context_length=20)([SyntheticShapes(1, image_size=40)[0]])
    assert images.shape == (1, 3, 16, 16)


# ----------------------------------------------------------------------------- ArrayDataset
def test_prepared_dataset_holds_the_collated_items():
    dataset = SyntheticShapes(5, image_size=16)
    collate = CLIPCollate.for_model(16, context_length=20)
    prepared = ArrayDataset.prepare(dataset, collate, chunk_size=2)  # chunks of 2, 2 and 1
    images, tokens = collate([dataset[i] for i in range(5)])
    assert len(prepared) == 5
    np.testing.assert_array_equal(prepared.arrays[0], images)
    np.testing.assert_array_equal(prepared.arrays[1], tokens)
    np.testing.assert_array_equal(prepared[3][0], images[3])


def test_prepared_dataset_batches_with_stack_fields():
    prepared = ArrayDataset(np.arange(12).reshape(6, 2), np.arange(6))
    first, second = DataLoader(prepared, 3, collate=stack_fields)
    np.testing.assert_array_equal(first[0], [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(second[1], [3, 4, 5])


def test_array_dataset_needs_arrays_of_one_length():
    with pytest.raises(ValueError, match="one length"):
        ArrayDataset(np.zeros(3), np.zeros(4))

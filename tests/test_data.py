"""Training data: the synthetic shapes dataset, captions files and the image-caption folder,
and the batcher."""
import codecs
import csv
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miniclip.data import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    ArrayDataset,
    CLIPCollate,
    DataError,
    DataLoader,
    ImageTextFolder,
    Prefetcher,
    SyntheticShapes,
    read_caption_folder,
    stack_fields,
)
from miniclip.data.preprocess import Preprocess, random_square_crop, read_image
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
        # radii 0.25 vs 0.16 of the side, each jittered by 10%: areas at least 1.6x apart,
        # a little less where a large shape is cut by the picture's edge
        assert min(area["large"]) > 1.3 * max(area["small"]), shape


def test_a_synthetic_plus_sign_is_unlike_the_diamond_of_the_same_radius():
    # With bars 0.7 of its radius wide, the plus sign shared 73% of the diamond's pixels
    # (intersection over union), and a tiny CLIP confused the two more than any other pair
    # (a circle and a square overlap more, 82%, but differ in their outlines: corners);
    # with bars half its radius wide, 68%.
    from PIL import ImageDraw

    from miniclip.data import synthetic

    def mask(shape):
        canvas = Image.new("L", (128, 128), 0)
        synthetic._DRAW[shape](ImageDraw.Draw(canvas), 64, 64, 40, {"fill": 255})
        return np.asarray(canvas) > 127

    cross, diamond = mask("cross"), mask("diamond")
    assert (cross & diamond).sum() / (cross | diamond).sum() < 0.7


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


# ----------------------------------------------------------------------------- captions files
def write_captions(root, suffix, rows, encoding="utf-8"):
    """``root/captions{suffix}`` with a header and ``(filename, caption)`` rows, written as
    Python's csv module (and Excel) quote them, or as JSON lines."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"captions{suffix}"
    with open(path, "w", newline="", encoding=encoding) as file:
        if suffix == ".jsonl":
            file.writelines(json.dumps({"filename": f, "caption": c}) + "\n" for f, c in rows)
        else:
            writer = csv.writer(file, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerows([("filename", "caption")] + rows)
    return path


def data_error(root, text, encoding="utf-8", name="captions.csv"):
    """The DataError reading ``text`` as ``root/name`` raises."""
    (root / name).write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    with pytest.raises(DataError) as caught:
        read_caption_folder(root)
    return str(caught.value)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_caption_folder_groups_captions_by_image_and_skips_blank_ones(tmp_path, suffix):
    write_captions(tmp_path, suffix, [("b.png", "a blue square"), ("a.png", "a red circle"),
                                      ("b.png", "  "), ("b.png", 'blue, "and" square')])
    with pytest.warns(UserWarning, match=r"skipped 1 of 4 rows of .*captions\.\w+: line \d "
                                         r"\(no caption for b\.png\)"):
        folder = read_caption_folder(tmp_path)
    assert folder.paths == [tmp_path / "b.png", tmp_path / "a.png"]
    assert folder.captions == [["a blue square", 'blue, "and" square'], ["a red circle"]]
    line = 3 if suffix == ".jsonl" else 4  # JSON lines have no header line
    assert folder.skipped_rows.entries == [(f"line {line}", "no caption for b.png")]


def test_jsonl_captions_may_list_several_captions_per_line(tmp_path):
    (tmp_path / "captions.jsonl").write_text(
        '{"filename": "a.png", "caption": ["one", "two"]}\n\n'
        '{"filename": "b.png", "caption": "three"}\n')
    assert read_caption_folder(tmp_path).captions == [["one", "two"], ["three"]]


def test_columns_may_come_in_any_order_among_others(tmp_path):
    (tmp_path / "captions.csv").write_text("source,caption,filename\nweb,a cat,cat.png\n"
                                           "book,,dog.png\n")
    with pytest.warns(UserWarning, match="line 3"):
        folder = read_caption_folder(tmp_path)
    assert folder.paths == [tmp_path / "cat.png"] and folder.captions == [["a cat"]]


def test_a_byte_order_mark_as_excel_writes_it_is_read(tmp_path):
    # Excel's "CSV UTF-8" starts with a BOM, which would otherwise make the first column
    # "\ufefffilename"; its "Unicode Text" is UTF-16 with a BOM, tab-separated
    write_captions(tmp_path / "csv", ".csv", [("a.png", "café, au lait")], encoding="utf-8-sig")
    write_captions(tmp_path / "tsv", ".tsv", [("a.png", "naïve")], encoding="utf-16")
    assert (tmp_path / "csv" / "captions.csv").read_bytes().startswith(codecs.BOM_UTF8)
    assert read_caption_folder(tmp_path / "csv").captions == [["café, au lait"]]
    assert read_caption_folder(tmp_path / "tsv").captions == [["naïve"]]


def test_an_unquoted_comma_is_an_error_naming_the_line_and_the_fix(tmp_path):
    message = data_error(tmp_path, "filename,caption\na.png,fine\nb.png,a cat, sitting\n")
    assert message == (f"{tmp_path / 'captions.csv'}, line 3: 3 fields but the header names 2 "
                       "(filename, caption); does a caption contain a comma? Quote captions "
                       'that contain commas: b.png,"a cat, sitting"')


def test_a_tab_in_a_tsv_caption_is_an_error_naming_the_line(tmp_path):
    message = data_error(tmp_path, "filename\tcaption\na.png\ta\tcat\n", name="captions.tsv")
    assert "captions.tsv, line 2: 3 fields" in message
    assert "Quote captions that contain tabs" in message


@pytest.mark.parametrize("text, line", [
    ('filename,caption\na.png,fine\nb.png,"a cat\nc.png,sits\n', 3),     # never closed
    ('filename,caption\nb.png,"a cat\nc.png,sits"\nd.png,ok\n', 2),     # closed a line later
])
def test_an_unclosed_quote_is_an_error_naming_the_line_it_opens_on(tmp_path, text, line):
    message = data_error(tmp_path, text)
    assert f"captions.csv, line {line}: a quote opened on this line is not closed on it" in message


def test_a_lone_quote_inside_a_quoted_caption_is_an_error_saying_to_double_it(tmp_path):
    message = data_error(tmp_path, 'filename,caption\na.png,"a "big" cat"\n')
    assert "captions.csv, line 2:" in message
    assert 'write a double quote twice ("a ""big"" cat")' in message


@pytest.mark.parametrize("text, expected", [
    ("a.png,a cat\nb.png,a dog\n", "line 1: the header ['a.png', 'a cat'] has no 'filename' "
                                   "or 'caption' column; the first line must name the columns"),
    ("image,text\na.png,hi\n", "no 'filename' or 'caption' column"),
    ("filename,text\na.png,hi\n", "has no 'caption' column"),
    ("", "is empty; its first line must name the columns"),
    ("filename,caption\n,no file\na.png,\n", "lists no image with a file name and a non-empty "
                                              "caption (skipped 2 of 2 rows"),
])
def test_a_file_without_the_columns_or_rows_is_an_error(tmp_path, text, expected):
    assert expected in data_error(tmp_path, text)


def test_text_that_is_not_utf8_is_an_error_naming_the_line_and_the_fix(tmp_path):
    message = data_error(tmp_path, "filename,caption\na.png,a cat\nb.png,café\n", "latin-1")
    assert "captions.csv, line 3: not UTF-8 text" in message and "save it as UTF-8" in message


@pytest.mark.parametrize("record", ['{"file": "b.png", "caption": "x"}', "not json",
                                    '["b.png", "x"]', '{"filename": "b.png", "caption": 3}',
                                    '{"filename": 7, "caption": "x"}'])
def test_a_jsonl_line_that_is_not_a_caption_object_is_an_error_naming_it(tmp_path, record):
    text = '{"filename": "a.png", "caption": "x"}\n' + record + "\n"
    assert "captions.jsonl, line 2:" in data_error(tmp_path, text, name="captions.jsonl")


def test_skipped_rows_are_counted_and_the_first_five_named_in_one_warning(tmp_path):
    rows = [("a.png", "fine")] + [(f"{i}.png", "") for i in range(7)] + [("", "no file")]
    write_captions(tmp_path, ".csv", rows)
    with pytest.warns(UserWarning) as caught:
        folder = read_caption_folder(tmp_path)
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"skipped 8 of 9 rows of {tmp_path / 'captions.csv'}: line 3 (no caption for 0.png); "
        "line 4 (no caption for 1.png); line 5 (no caption for 2.png); line 6 (no caption for "
        "3.png); line 7 (no caption for 4.png); and 3 more")
    assert folder.skipped_rows.entries[-1] == ("line 10", "no file name")


def test_data_errors_are_value_errors_and_a_missing_file_is_named(tmp_path):
    assert issubclass(DataError, ValueError)
    with pytest.raises(FileNotFoundError, match="has no captions file"):
        read_caption_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such captions file: .*other.csv"):
        read_caption_folder(tmp_path, "other.csv")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        read_caption_folder(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- ImageTextFolder
def make_folder(tmp_path, rows, name="captions.csv"):
    """Images ``8+i x 6`` for each distinct file of ``rows`` and the captions file."""
    for i, filename in enumerate(dict.fromkeys(f for f, _ in rows)):
        Image.new("RGB", (8 + i, 6), (10 * i, 0, 0)).save(tmp_path / filename)
    write_captions(tmp_path, Path(name).suffix, rows)


def test_folder_reads_images_and_captions_in_file_order(tmp_path):
    make_folder(tmp_path, [("a.png", "a red thing"), ("b.jpg", "a blue thing")])
    dataset = ImageTextFolder(tmp_path)
    assert len(dataset) == 2
    image, caption = dataset[1]
    assert caption == "a blue thing" and image.size == (9, 6)


def test_folder_reads_tab_separated_captions(tmp_path):
    make_folder(tmp_path, [("a.png", "a cat, sitting")], name="captions.tsv")
    assert ImageTextFolder(tmp_path)[0][1] == "a cat, sitting"


def test_folder_skips_missing_and_corrupt_images_up_front_naming_them(tmp_path):
    make_folder(tmp_path, [("a.png", "fine"), ("c.png", "fine too")])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    write_captions(tmp_path, ".csv", [("a.png", "fine"), ("broken.png", "not fine"),
                                      ("ghost.png", "boo"), ("c.png", "fine too")])
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 image files that could not be read: "
                                         r".*broken.png \(.*\); .*ghost.png \(no such file\)"):
        dataset = ImageTextFolder(tmp_path)
    assert dataset.paths == [tmp_path / "a.png", tmp_path / "c.png"]
    assert [dataset[i][1] for i in range(2)] == ["fine", "fine too"]
    assert [where for where, _ in dataset.skipped_images.entries] == [
        str(tmp_path / "broken.png"), str(tmp_path / "ghost.png")]


def test_folder_without_a_readable_image_is_an_error(tmp_path):
    write_captions(tmp_path, ".csv", [("ghost.png", "boo")])
    with pytest.raises(DataError, match=r"none of the 1 images listed in .*captions.csv could "
                                        r"be read: skipped 1 of 1 .*ghost.png \(no such file\)"):
        with pytest.warns(UserWarning):
            ImageTextFolder(tmp_path)


def test_an_image_that_fails_to_decode_later_is_replaced_by_the_next_and_counted(tmp_path):
    # A JPEG cut short after its header passes the check up front (PIL's verify reads the
    # header only) and fails when decoded: the next image takes its place.
    make_folder(tmp_path, [("a.png", "first"), ("b.jpg", "second"), ("c.png", "third")])
    jpeg = (tmp_path / "b.jpg").read_bytes()
    dataset = ImageTextFolder(tmp_path)
    (tmp_path / "b.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    with pytest.warns(UserWarning, match=r"cannot read an image from .*b.jpg: .*[Tt]runcated.*; "
                                         r"skipping it: the next image takes its place \(images "
                                         r"that failed to decode during training so far: 1\)"):
        image, caption = dataset.visit(1, epoch=0)
    assert caption == "third" and image.size == (10, 6)
    assert dataset.visit(1, epoch=1)[1] == "third"  # not tried again
    assert [where for where, _ in dataset.failed.entries] == [str(tmp_path / "b.jpg")]


def test_visit_draws_one_of_the_captions_from_seed_epoch_and_index(tmp_path):
    make_folder(tmp_path, [("a.png", "one"), ("a.png", "two"), ("a.png", "three"),
                           ("b.png", "only")])
    dataset = ImageTextFolder(tmp_path, seed=3)
    drawn = [dataset.visit(0, epoch)[1] for epoch in range(40)]
    assert set(drawn) == {"one", "two", "three"}
    assert drawn == [ImageTextFolder(tmp_path, seed=3).visit(0, e)[1] for e in range(40)]
    assert drawn != [ImageTextFolder(tmp_path, seed=4).visit(0, e)[1] for e in range(40)]
    assert {dataset.visit(1, epoch)[1] for epoch in range(5)} == {"only"}
    assert dataset[0][1] == "one"  # indexing: always the first caption


def test_training_decodes_a_large_jpeg_at_a_reduced_scale_that_still_covers_the_crop(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (136, 180, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "big.jpg")
    write_captions(tmp_path, ".csv", [("big.jpg", "noise")])
    # a 16-pixel crop of the shorter side resized to int(16 * 8/7) = 18: 1/4 scale keeps 34
    # rows (1/8 would keep 17, and the crop would be cut from an enlarged image)
    drafted = read_image(tmp_path / "big.jpg", draft=18)
    assert drafted.size == (45, 34)
    assert read_image(tmp_path / "big.jpg").size == (180, 136)  # evaluation decodes fully
    rng = np.random.default_rng([0, 2, 0])
    rng.integers(1)  # the caption is drawn first
    crop = ImageTextFolder(tmp_path, random_crop=16).visit(0, epoch=2)[0]
    np.testing.assert_array_equal(np.asarray(crop),
                                  np.asarray(random_square_crop(drafted, 16, rng)))
    assert ImageTextFolder(tmp_path)[0][0].size == (180, 136)


def test_visit_with_random_crop_gives_a_seeded_square_of_the_resized_image(tmp_path):
    columns = np.broadcast_to(np.arange(80, dtype=np.uint8)[None, :, None], (40, 80, 3))
    Image.fromarray(np.ascontiguousarray(columns)).save(tmp_path / "wide.png")
    write_captions(tmp_path, ".csv", [("wide.png", "a gradient")])
    dataset = ImageTextFolder(tmp_path, random_crop=16, seed=0)
    crops = [np.asarray(dataset.visit(0, epoch)[0]) for epoch in range(20)]
    assert all(crop.shape == (16, 16, 3) for crop in crops)
    rng = np.random.default_rng([0, 5, 0])
    rng.integers(1)  # the caption is drawn first
    expected = random_square_crop(Image.open(tmp_path / "wide.png"), 16, rng)
    np.testing.assert_array_equal(crops[5], np.asarray(expected))
    assert len({crop[0, 0, 0] for crop in crops}) > 5  # crops start at many places
    np.testing.assert_array_equal(np.asarray(ImageTextFolder(tmp_path)[0][0]), columns)


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


class Visited:
    """A dataset with ``visit``: item ``i`` in epoch ``e`` is ``(i, e)``."""

    def __len__(self):
        return 5

    def __getitem__(self, index):
        raise AssertionError("the loader must call visit")

    def visit(self, index, epoch):
        return index, epoch


def test_loader_visits_items_with_the_epoch_of_the_batch():
    loader = DataLoader(Visited(), 2, drop_last=True)
    stream = loader.batches(start_step=1)
    assert [next(stream) for _ in range(3)] == [[(2, 0), (3, 0)], [(0, 1), (1, 1)],
                                                [(2, 1), (3, 1)]]
    assert list(loader) == [[(0, 0), (1, 0)], [(2, 0), (3, 0)]]
    assert list(loader)[0] == [(0, 1), (1, 1)]


def random_crop_loader(root, prefetch):
    """A folder of 7 images with two captions each, batched through the random crop."""
    rows = []
    for i in range(7):
        pixels = np.random.default_rng(i).integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i}.png")
        rows += [(f"{i}.png", f"picture {i}"), (f"{i}.png", f"image number {i}")]
    write_captions(root, ".csv", rows)
    dataset = ImageTextFolder(root, random_crop=16, seed=5)
    return DataLoader(dataset, 3, shuffle=True, seed=5, drop_last=True, prefetch=prefetch,
                      collate=CLIPCollate.for_model(16, context_length=12))


def test_prefetched_batches_are_the_same_batches_in_the_same_order(tmp_path):
    plain = random_crop_loader(tmp_path, prefetch=0).batches(start_step=1)
    with random_crop_loader(tmp_path, prefetch=2).batches(start_step=1) as prefetched:
        assert isinstance(prefetched, Prefetcher)
        for _ in range(7):  # 2 batches per epoch: crosses epochs, new crops and captions
            (images, tokens), (expected_images, expected_tokens) = next(prefetched), next(plain)
            assert images.shape == (3, 3, 16, 16)
            np.testing.assert_array_equal(images, expected_images)
            np.testing.assert_array_equal(tokens, expected_tokens)


def test_prefetcher_reraises_a_worker_error_after_the_items_before_it():
    def items():
        yield from (1, 2)
        raise DataError("bad row")

    prefetched = Prefetcher(items(), depth=4)
    assert next(prefetched) == 1 and next(prefetched) == 2
    with pytest.raises(DataError, match="bad row"):
        next(prefetched)
    with pytest.raises(StopIteration):
        next(prefetched)
    assert within(5, lambda: list(Prefetcher(iter(range(5)), depth=2))) == [0, 1, 2, 3, 4]


def test_prefetcher_stays_at_most_depth_items_ahead():
    made = []

    def items():
        for i in range(100):
            made.append(i)
            yield i

    def settled(count):
        """Wait for the thread to have made ``count`` items, then a little longer."""
        deadline = time.monotonic() + 10
        while len(made) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # room to make more, if it did not stop
        return len(made)

    with Prefetcher(items(), depth=3) as prefetched:
        assert settled(4) == 4  # 3 waiting in the queue, 1 made and waiting to be put
        assert next(prefetched) == 0
        assert settled(5) == 5


def within(seconds, call):
    """``call()``'s result, or the exception it raised, run in a thread that must finish
    within ``seconds``: a prefetcher that hangs fails a test instead of hanging it."""
    outcome = []

    def run():
        try:
            outcome.append(call())
        except Exception as error:  # noqa: BLE001 (returned to the test to check)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"{call} did not finish within {seconds} s"
    return outcome[0]


def test_closing_or_dropping_a_prefetcher_stops_its_thread():
    def forever():
        while True:
            yield np.zeros(3)

    prefetched = Prefetcher(forever(), depth=2)
    next(prefetched)
    thread = prefetched._thread
    within(5, prefetched.close)
    assert not thread.is_alive()
    assert isinstance(within(5, lambda: next(prefetched)), StopIteration)
    dropped = Prefetcher(forever(), depth=2)
    thread = dropped._thread
    del dropped  # garbage-collected: its thread must not spin on forever
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(ValueError, match="depth must be at least 1"):
        Prefetcher(forever(), depth=0)


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


def test_preparing_a_dataset_holds_its_data_once_not_twice():
    import tracemalloc  # NumPy reports its array memory to tracemalloc

    dataset = SyntheticShapes(512, image_size=32)
    collate = CLIPCollate.for_model(32, context_length=20)
    tracemalloc.start()
    try:
        prepared = ArrayDataset.prepare(dataset, collate, chunk_size=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data = sum(a.nbytes for a in prepared.arrays)              # 6.3 MB, mostly float32 pixels
    assert peak < 1.5 * data, (peak, data)  # the chunks and their concatenation: 2x


def test_prepared_dataset_batches_with_stack_fields():
    prepared = ArrayDataset(np.arange(12).reshape(6, 2), np.arange(6))
    first, second = DataLoader(prepared, 3, collate=stack_fields)
    np.testing.assert_array_equal(first[0], [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(second[1], [3, 4, 5])


def test_array_dataset_needs_arrays_of_one_length():
    with pytest.raises(ValueError, match="one length"):
        ArrayDataset(np.zeros(3), np.zeros(4))

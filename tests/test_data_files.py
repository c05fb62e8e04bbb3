"""The image and captions files a user hands over (``--data``, ``python -m
miniclip.evaluation``), damaged or odd: what is read, and what is skipped with a count and
named in one warning (``miniclip/data/images.py`` states the policy)."""
import collections
import io
import os
import random
import signal
import warnings

import numpy as np
import pytest
from PIL import Image

from miniclip.data import (
    DataError,
    ImageTextFolder,
    Skipped,
    UnreadableImage,
    read_caption_folder,
    read_image,
)
from miniclip.data.captions import MAX_CAPTION_CHARACTERS
from miniclip.data.images import MAX_ASPECT_RATIO, preprocess_in_batches, verify_images
from miniclip.data.preprocess import MEAN, STD, Preprocess


def save(path, image, **options):
    image.save(path, **options)
    return path


def png_bytes(size=(12, 10), colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def captions(root, rows):
    (root / "captions.csv").write_text("filename,caption\n" + "".join(f"{f},{c}\n" for f, c in rows),
                                       encoding="utf-8")


def only_warning(record):
    """The one warning of ``record``, checked to be a single self-contained line."""
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- images
def test_a_truncated_image_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(png_bytes((64, 64))[:-40])
    with pytest.raises(UnreadableImage, match=f"cannot read an image from {path}: "):
        read_image(path)


def test_a_zero_byte_file_is_not_an_image(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImage, match="empty.jpg: cannot identify image file"):
        read_image(path)


def test_a_named_pipe_listed_as_an_image_is_skipped_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")

    def waited(signum, frame):
        raise TimeoutError("the reader waited for a writer")

    previous = signal.signal(signal.SIGALRM, waited)
    signal.alarm(10)
    try:
        readable, skipped = verify_images([tmp_path / "pipe.png"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert len(readable) == 0 and skipped.entries == [(str(tmp_path / "pipe.png"), "not a regular file")]


def test_the_contents_decide_the_format_not_the_extension(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(png_bytes())
    image = read_image(path)
    assert image.size == (12, 10) and image.getpixel((3, 3)) == (200, 30, 30)  # lossless: PNG
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    with pytest.raises(UnreadableImage, match="notes.png"):
        read_image(text)


@pytest.mark.parametrize("size", [(40, 40), (100, 100)], ids=["warned-by-PIL", "refused-by-PIL"])
def test_a_decompression_bomb_is_an_error_not_a_warning(tmp_path, monkeypatch, size):
    # PIL warns between MAX_IMAGE_PIXELS and twice that, and refuses above; both are errors.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = save(tmp_path / "bomb.png", Image.new("L", size))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(UnreadableImage, match=r"bomb.png: .*over Image.MAX_IMAGE_PIXELS, 1,000"):
            read_image(path)
        readable, skipped = verify_images([path])
    assert not record, [str(w.message) for w in record]
    assert len(readable) == 0 and "MAX_IMAGE_PIXELS" in skipped.entries[0][1]


def test_pils_header_warnings_are_dropped_and_other_threads_warnings_given_again(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes())
    pil_open = Image.open

    def open_meanwhile(file):  # PIL warns about the header; another thread warns meanwhile
        warnings.warn_explicit("Corrupt EXIF data", UserWarning,
                               os.path.join(os.path.dirname(Image.__file__), "TiffImagePlugin.py"), 1)
        warnings.warn_explicit("progress: step 7", UserWarning, "elsewhere.py", 3)
        return pil_open(file)

    monkeypatch.setattr(Image, "open", open_meanwhile)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert read_image(path).size == (12, 10)
    assert [str(w.message) for w in record] == ["progress: step 7"]


def test_a_one_pixel_image_is_upscaled_like_any_other(tmp_path):
    path = save(tmp_path / "dot.png", Image.new("RGB", (1, 1), (255, 0, 0)))
    pixels = Preprocess(16)(read_image(path))  # [3, 16, 16]
    expected = (np.array([1.0, 0.0, 0.0], np.float32) - MEAN) / STD
    np.testing.assert_allclose(pixels, np.broadcast_to(expected[:, None, None], (3, 16, 16)),
                               rtol=1e-6)


def test_a_sliver_of_4000_by_1_pixels_is_refused_before_it_is_resized(tmp_path):
    path = save(tmp_path / "banner.png", Image.new("RGB", (4000, 1)))
    with pytest.raises(UnreadableImage, match="it is 4000 x 1 pixels, a side over 20 times the other"):
        read_image(path)
    wide = save(tmp_path / "wide.png", Image.new("RGB", (MAX_ASPECT_RATIO * 3, 3)))
    assert Preprocess(8)(read_image(wide)).shape == (3, 8, 8)  # 20:1 is still read


def test_an_animated_image_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = save(tmp_path / "blink.gif", frames[0], save_all=True, append_images=frames[1:],
                duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    assert read_image(path).convert("RGB").getpixel((4, 4)) == (255, 0, 0)


# PIL's TIFF decoder warns about damaged tags while decoding; the file is then read or refused.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
def test_damaged_images_of_every_format_are_read_or_refused_as_unreadable(tmp_path):
    # A seeded campaign: 60 damaged copies of each format; nothing else may come out.
    picture = Image.new("RGB", (24, 18), (200, 10, 10))
    outcomes = collections.Counter()
    for image_format in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"):
        buffer = io.BytesIO()
        picture.save(buffer, image_format)
        for index in range(60):
            rng = random.Random(f"{image_format}/{index}")
            data = bytearray(buffer.getvalue())
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[:rng.randrange(len(data))]
            path = tmp_path / f"damaged.{image_format.lower()}"
            path.write_bytes(bytes(data))
            try:
                Preprocess(8)(read_image(path))
                outcomes["read"] += 1
            except UnreadableImage as error:
                assert str(path) in str(error)
                outcomes["unreadable"] += 1
    assert outcomes["read"] > 0 and outcomes["unreadable"] > 0


# ----------------------------------------------------------------------------- one warning
def test_a_folder_skips_every_kind_of_bad_image_and_names_them_in_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    (tmp_path / "good.png").write_bytes(png_bytes())
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello", encoding="utf-8")
    save(tmp_path / "bomb.png", Image.new("L", (100, 100)))
    save(tmp_path / "banner.png", Image.new("RGB", (4000, 1)))
    names = ["good.png", "empty.png", "text.jpg", "bomb.png", "banner.png", "ghost.png"]
    captions(tmp_path, [(name, f"picture {i}") for i, name in enumerate(names)])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dataset = ImageTextFolder(tmp_path)
    message = only_warning(record)
    assert message.startswith("skipped 5 of 6 image files that could not be read: ")
    for name in names[1:]:
        assert str(tmp_path / name) in message, name
    assert dataset.paths == [tmp_path / "good.png"] and len(dataset.skipped_images) == 5


def test_evaluation_batches_skip_unreadable_files_and_count_them(tmp_path):
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes())
    (tmp_path / "cut.png").write_bytes(png_bytes((64, 64))[:-40])
    skipped = Skipped()
    batches = list(preprocess_in_batches([good, tmp_path / "cut.png", tmp_path / "none.png"],
                                         Preprocess(8), batch_size=2, skipped=skipped))
    assert [indices.tolist() for indices, _ in batches] == [[0]]
    assert skipped.message(3).startswith(f"skipped 2 of 3 image files that could not be read: "
                                         f"{tmp_path / 'cut.png'} (")


# ----------------------------------------------------------------------------- captions files
def test_an_over_long_caption_is_a_skipped_row_counted_in_one_warning(tmp_path):
    captions(tmp_path, [("a.png", "a cat"), ("b.png", "x" * (MAX_CAPTION_CHARACTERS + 1))])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        folder = read_caption_folder(tmp_path)
    assert only_warning(record) == (f"skipped 1 of 2 rows of {tmp_path / 'captions.csv'}: line 3 "
                                    f"(a caption of 2,001 characters for b.png, over 2,000)")
    assert folder.captions == [["a cat"]]


def test_a_caption_longer_than_the_csv_module_holds_is_a_skipped_row_too(tmp_path):
    captions(tmp_path, [("a.png", "a cat"), ("b.png", "x" * 200_000), ("c.png", "a dog")])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        folder = read_caption_folder(tmp_path)
    assert only_warning(record).endswith(": line 3 (a field over 131,072 characters)")
    assert folder.captions == [["a cat"], ["a dog"]]


def test_an_empty_captions_file_is_one_error(tmp_path):
    (tmp_path / "captions.csv").write_bytes(b"")
    with pytest.raises(DataError, match="captions.csv is empty; its first line must name the columns"):
        read_caption_folder(tmp_path)


def test_binary_garbage_as_a_captions_file_is_one_error_naming_the_line(tmp_path):
    (tmp_path / "captions.csv").write_bytes(random.Random(1).randbytes(2000))
    with pytest.raises(DataError, match=r"captions.csv, line \d+: not UTF-8 text") as caught:
        read_caption_folder(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_jsonl_line_nested_too_deeply_is_one_error_naming_the_line(tmp_path):
    (tmp_path / "captions.jsonl").write_text('{"filename": "a.png", "caption": "a cat"}\n'
                                             + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"captions.jsonl, line 2: expected a JSON object"):
        read_caption_folder(tmp_path)


def test_damaged_captions_files_are_read_or_refused_as_data_errors(tmp_path):
    # A seeded campaign over the three formats: 100 damaged copies each.
    originals = {
        "captions.csv": b'filename,caption\na.png,a red circle\nb.png,"a big, blue square"\n',
        "captions.tsv": b"filename\tcaption\na.png\ta red, circle\n",
        "captions.jsonl": b'{"filename": "a.png", "caption": ["x", "y"]}\n',
    }
    outcomes = collections.Counter()
    for name, original in originals.items():
        for index in range(100):
            rng = random.Random(f"{name}/{index}")
            data = bytearray(original)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            folder = tmp_path / f"{name}-{index}"
            folder.mkdir()
            (folder / name).write_bytes(bytes(data[:rng.randrange(1, len(data) + 1)]))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read_caption_folder(folder)
                outcomes["read"] += 1
            except DataError as error:
                assert str(folder / name) in str(error) and "\n" not in str(error)
                outcomes["refused"] += 1
    assert outcomes["read"] > 0 and outcomes["refused"] > 0

"""miniclip.data.preprocess: CLIP's image preprocessing (docs/reference.md, "Image preprocessing")."""
import numpy as np
import pytest
from PIL import Image

from miniclip.data.preprocess import MEAN, STD, Preprocess, center_crop, resize_shorter_side, transform


def normalised(rgb):
    """What step 4-5 make of 8-bit RGB values [..., 3], in float32 as the reference does."""
    x = np.asarray(rgb, np.float32) / np.float32(255)
    return (x - MEAN) / STD


def column_image(width, height):
    """An RGB image whose red value is the column index (to see where a crop starts)."""
    columns = np.broadcast_to(np.arange(width, dtype=np.uint8)[None, :, None], (height, width, 3))
    return Image.fromarray(np.ascontiguousarray(columns))


def test_output_is_float32_channels_first_of_the_model_resolution():
    out = Preprocess(32)(Image.new("RGB", (50, 40), (10, 20, 30)))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32


def test_a_constant_colour_becomes_its_normalised_value():
    out = Preprocess(16)(Image.new("RGB", (40, 30), (200, 100, 50)))
    expected = normalised((200, 100, 50))
    for channel in range(3):
        assert np.all(out[channel] == expected[channel])


def test_resize_makes_the_shorter_side_n_px_and_floors_the_longer_one():
    # the reference's example: 640 x 480 -> 298 x 224 (224 * 640 / 480 = 298.67)
    assert resize_shorter_side(Image.new("RGB", (640, 480)), 224).size == (298, 224)
    assert resize_shorter_side(Image.new("RGB", (480, 640)), 224).size == (224, 298)


def test_resize_uses_pil_bicubic():
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    expected = np.asarray(image.resize((27, 19), Image.BICUBIC))  # 19 * 53 / 37 = 27.2
    assert np.array_equal(np.asarray(resize_shorter_side(image, 19)), expected)


def test_an_image_of_the_right_size_is_not_resampled():
    pixels = np.random.default_rng(0).integers(0, 256, (24, 16, 3), dtype=np.uint8)
    out = Preprocess(16)(Image.fromarray(pixels))  # 16 wide already: only the crop (top 4)
    np.testing.assert_array_equal(out, normalised(pixels[4:20]).transpose(2, 0, 1))


def test_center_crop_offsets_round_half_to_even():
    # (257 - 224) / 2 = 16.5 -> Python's round gives 16 (ties to even), not 17
    assert np.asarray(center_crop(column_image(257, 224), 224))[0, 0, 0] == 16
    # (259 - 224) / 2 = 17.5 -> 18
    assert np.asarray(center_crop(column_image(259, 224), 224))[0, 0, 0] == 18
    # the reference's example: 298 wide -> left 37
    assert np.asarray(center_crop(column_image(298, 224), 224))[0, 0, 0] == 37


def test_grey_images_are_replicated_and_alpha_is_dropped():
    grey = Preprocess(8)(Image.new("L", (8, 8), 90))
    np.testing.assert_array_equal(grey, Preprocess(8)(Image.new("RGB", (8, 8), (90, 90, 90))))
    rgba = Preprocess(8)(Image.new("RGBA", (8, 8), (1, 2, 3, 0)))
    np.testing.assert_array_equal(rgba, Preprocess(8)(Image.new("RGB", (8, 8), (1, 2, 3))))


def test_a_path_is_opened_and_a_batch_is_stacked(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(path)
    batch = transform(8).batch([path, str(path), Image.new("RGB", (8, 8))])
    assert batch.shape == (3, 3, 8, 8) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], batch[1])
    assert batch[0, 0, 0, 0] == normalised((255, 0, 0))[0]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.jpg"):
        Preprocess(8)(tmp_path / "nothere.jpg")


def test_a_corrupt_file_is_named(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"this is not a JPEG")
    with pytest.raises(ValueError, match="broken.jpg"):
        Preprocess(8)(path)


def test_a_truncated_file_is_named(tmp_path):
    path = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match="cut.png"):
        Preprocess(8)(path)


def test_something_that_is_not_an_image_is_refused():
    with pytest.raises(TypeError, match="PIL image"):
        Preprocess(8)(np.zeros((8, 8, 3)))

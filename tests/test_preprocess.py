"""miniclip.data.preprocess: CLIP's image preprocessing (docs/reference.md, "Image preprocessing")."""
import numpy as np
import pytest
from PIL import Image

from miniclip.data.preprocess import (
    MEAN,
    STD,
    TRAIN_RESIZE,
    Preprocess,
    center_crop,
    random_square_crop,
    resize_shorter_side,
    to_rgb,
    transform,
)


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


def grey_ramp():
    """A 4 x 4 grey ramp 0, 17, ..., 255 ``[4, 4]`` uint8."""
    return (np.arange(16, dtype=np.uint8) * 17).reshape(4, 4)


def transparent(mode):
    """An image of ``mode`` whose alpha is 0, 85, 170, 255 along each row, with its RGB
    composited on white by hand ``[4, 4, 3]``."""
    alpha = np.tile(np.array([0, 85, 170, 255], dtype=np.uint8), (4, 1))          # [4, 4]
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    if mode == "LA":
        rgb[...] = 90
    a = alpha[..., None] / 255.0
    expected = np.rint(rgb * a + 255 * (1 - a)).astype(np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    if mode == "LA":
        return rgba.convert("LA"), expected
    if mode == "PA":  # a palette of one colour, with an alpha channel beside it
        image = Image.new("PA", (4, 4))
        image.putpalette([200, 100, 30] * 256)
        image.putalpha(Image.fromarray(alpha))
        return image, expected
    return rgba, expected


def palette_with_transparent_index():
    """A palette image (as a GIF stores one) whose index 1 is transparent."""
    image = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), mode="P")
    image.putpalette([10, 20, 30, 0, 0, 0, 250, 240, 230] + [0] * (3 * 253))
    image.info["transparency"] = 1
    return image, np.array([[[10, 20, 30], [255, 255, 255]], [[255, 255, 255], [250, 240, 230]]],
                           np.uint8)


def mode_case(mode):
    """``(image of mode, expected RGB pixels [H, W, 3] uint8)``, the pixels worked out by
    hand from the mode's meaning, not by PIL."""
    ramp = grey_ramp()
    grey = np.repeat(ramp[..., None], 3, axis=-1)
    if mode == "L":
        return Image.fromarray(ramp), grey
    if mode == "1":
        bits = ramp >= 128
        return Image.fromarray(bits), np.repeat(np.where(bits, 255, 0)[..., None], 3, -1)
    if mode in ("I;16", "I"):  # 16-bit grey: v * 257 is 8-bit v widened; 65535 is white
        wide = ramp.astype(np.uint16) * 257
        wide[0, :3] = (1000, 40000, 65535)  # -> 4, 156, 255 (PIL's convert: 255, 255, 255)
        expected = grey.copy()
        expected[0, :3] = np.array([4, 156, 255])[:, None]
        image = Image.fromarray(wide) if mode == "I;16" else Image.fromarray(wide.astype(np.int32))
        assert image.mode == mode
        return image, expected
    if mode == "F":  # intensities in 0..1; out of range clipped
        values = ramp.astype(np.float32) / 255
        values[0, :2] = (-0.5, 1.5)
        expected = grey.copy()
        expected[0, :2] = np.array([0, 255])[:, None]
        return Image.fromarray(values), expected
    if mode == "P":
        image = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
        image.putpalette([255, 0, 0, 0, 128, 255, 7, 8, 9] + [0] * (3 * 253))
        return image, np.array([[[255, 0, 0], [0, 128, 255]], [[7, 8, 9], [0, 128, 255]]],
                               np.uint8)
    if mode == "CMYK":  # R = (255 - C)(255 - K) / 255, ...
        cmyk = np.array([[[0, 255, 55, 0], [5, 55, 155, 51]]] * 2, np.uint8)    # [2, 2, 4]
        return Image.fromarray(cmyk, mode="CMYK"), np.array([[[255, 0, 200], [200, 160, 80]]] * 2,
                                                            np.uint8)
    if mode == "P+transparency":
        return palette_with_transparent_index()
    return transparent(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "PA", "RGBA", "CMYK", "I", "I;16", "F", "1",
                                  "P+transparency"])
def test_every_common_mode_becomes_the_right_rgb_pixels(mode):
    image, expected = mode_case(mode)
    assert image.mode == mode.split("+")[0]
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(rgb), expected)
    size = image.size[0]  # square images of this size: no resizing, only the conversion
    np.testing.assert_array_equal(Preprocess(size)(image),
                                  normalised(expected).transpose(2, 0, 1))


def test_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    levels = np.array([[0, 257 * 100], [257 * 200, 65535]], np.uint16)   # 8-bit 0, 100, 200, 255
    Image.fromarray(levels).save(tmp_path / "deep.png")
    grey = np.repeat(np.array([[0, 100], [200, 255]])[..., None], 3, axis=-1)   # [2, 2, 3]
    np.testing.assert_array_equal(Preprocess(2)(tmp_path / "deep.png"),
                                  normalised(grey).transpose(2, 0, 1))


def test_opaque_images_convert_exactly_as_the_reference_does():
    pixels = np.random.default_rng(0).integers(0, 256, (6, 6, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    for image in (Image.fromarray(pixels), Image.fromarray(pixels[..., 0])):
        np.testing.assert_array_equal(np.asarray(to_rgb(image)), np.asarray(image.convert("RGB")))


def test_random_square_crop_takes_an_n_px_square_of_the_resized_image_at_a_seeded_place():
    image = column_image(200, 100)  # red = column; shorter side 100 -> int(16 * 8/7) = 18
    resized = resize_shorter_side(image, 18)
    assert resized.size == (36, 18)
    lefts, tops = set(), set()
    for seed in range(200):
        crop = random_square_crop(image, 16, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        left, top = int(rng.integers(36 - 16 + 1)), int(rng.integers(18 - 16 + 1))
        assert crop.size == (16, 16)
        np.testing.assert_array_equal(np.asarray(crop),
                                      np.asarray(resized)[top:top + 16, left:left + 16])
        lefts.add(left)
        tops.add(top)
    assert lefts == set(range(21)) and tops == {0, 1, 2}  # every position can be drawn
    again = [np.asarray(random_square_crop(image, 16, np.random.default_rng(7))) for _ in "ab"]
    np.testing.assert_array_equal(*again)


def test_random_square_crop_scale_sets_how_much_of_the_shorter_side_a_crop_keeps():
    image = column_image(64, 64)
    whole = random_square_crop(image, 32, np.random.default_rng(0), scale=1.0)
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(resize_shorter_side(image, 32)))
    # 224 * 8/7 is 256 (the classic recipe), exactly: a 256-pixel-high image is not resampled
    assert TRAIN_RESIZE == 8 / 7
    tall = column_image(256, 256)
    crop = np.asarray(random_square_crop(tall, 224, np.random.default_rng(1)))
    left = crop[0, 0, 0]
    np.testing.assert_array_equal(crop[0, :, 0], np.arange(left, left + 224))


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

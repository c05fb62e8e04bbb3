"""Image preprocessing exactly as OpenAI's CLIP does it (``clip._transform``).

A model only ever saw images prepared this way in training, so inputs must match it
bit for bit for the released weights to give the published results:

1. **Resize** so the *shorter* side is ``n_px``, keeping the aspect ratio (the longer side
   becomes ``int(n_px * long / short)``), with PIL's bicubic filter. An image whose
   shorter side already is ``n_px`` is left untouched.
2. **Center crop** to ``n_px x n_px``: the offsets are ``round((size - n_px) / 2)`` with
   Python's ``round``, which rounds halves to even (16.5 -> 16).
3. **Convert to RGB** after the crop, as the reference does (:func:`to_rgb`). Grey, palette,
   CMYK and 1-bit images convert as PIL (and so the reference) converts them. Three kinds
   differ from the reference on purpose, because PIL's conversion is wrong for them:
   16-bit and 32-bit integer images are scaled from 0..65535 to 0..255 (PIL clips every
   value above 255 to white); float images are read as intensities in 0..1 (PIL reads them
   as 0..255); and transparent images (RGBA, LA, PA, and palette or grey images with a
   transparent colour) are composited on **white** (PIL drops the alpha and shows whatever
   colour the file stored under it, often black). White is what a browser or document shows
   behind a transparent logo, icon or product photo, which is what such images are drawn
   for. Opaque images give the reference's pixels exactly.
4. **To floats**: channels first ``[3, n_px, n_px]``, pixel values / 255, in float32.
5. **Normalise** each channel with the mean and standard deviation of CLIP's training
   images, so the inputs are roughly zero-mean and unit-variance.

The pixel steps are PIL's own functions, as in the reference (reproducing PIL's
fixed-point bicubic resampling by hand would be a project of its own); the arithmetic
after them is NumPy in float32, in the reference's order.

**Training augmentation.** The paper's only one: "a random square crop from resized
images". :func:`random_square_crop` resizes the shorter side to ``n_px * 8/7`` (256 for a
224-pixel model, the classic ImageNet recipe; the paper gives no figure) and cuts out an
``n_px`` square at a random position, drawn from a seeded generator so that a run can be
repeated and resumed exactly. It is *not* torchvision's ``RandomResizedCrop`` (random
area and aspect ratio), which the paper does not use. Evaluation keeps the centre crop.
"""
import os

import numpy as np
from PIL import Image

from .images import read_image

#: The training resize before the random square crop: the shorter side becomes n_px * 8/7.
TRAIN_RESIZE = 8 / 7

#: Modes whose pixels carry an alpha channel (a palette or grey image may instead name one
#: transparent value in ``image.info["transparency"]``).
ALPHA_MODES = ("LA", "PA", "RGBA")

#: The colour transparent pixels are composited on.
BACKGROUND = 255

#: Per-channel (R, G, B) mean and standard deviation of CLIP's training images.
MEAN = np.array((0.48145466, 0.4578275, 0.40821073), dtype=np.float32)
STD = np.array((0.26862954, 0.26130258, 0.27577711), dtype=np.float32)


def resize_shorter_side(image, n_px):
    """Bicubic resize so that the shorter side is ``n_px`` (no-op when it already is)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == n_px:
        return image
    new_long = int(n_px * long / short)
    size = (n_px, new_long) if width <= height else (new_long, n_px)
    return image.resize(size, Image.BICUBIC)


def random_square_crop(image, n_px, rng, scale=TRAIN_RESIZE):
    """A random ``n_px x n_px`` square of ``image`` resized so its shorter side is
    ``int(n_px * scale)``; ``rng`` (a NumPy ``Generator``) draws the position.

    The square keeps ``1 / scale`` of the shorter side and may start anywhere along the
    longer one, so a wide photo shows its left, middle or right part on different visits.
    """
    image = resize_shorter_side(image, int(n_px * scale))
    width, height = image.size
    left = int(rng.integers(width - n_px + 1))
    top = int(rng.integers(height - n_px + 1))
    return image.crop((left, top, left + n_px, top + n_px))


def center_crop(image, n_px):
    """The central ``n_px x n_px`` square of an image at least that large on both sides."""
    width, height = image.size
    top = int(round((height - n_px) / 2.0))
    left = int(round((width - n_px) / 2.0))
    return image.crop((left, top, left + n_px, top + n_px))


def to_rgb(image):
    """Any PIL image as an 8-bit RGB image, correctly for every common mode.

    * ``RGB`` is returned as it is; ``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ... convert
      with PIL's ``convert("RGB")``, as the reference does;
    * ``I;16`` (16-bit grey, as PIL opens a 16-bit PNG) and ``I`` (32-bit integers, as
      older PILs open one) are scaled by 255 / 65535, the inverse of widening 8 bits to
      16 (``v * 257``); values outside 0..65535 are clipped;
    * ``F`` (32-bit float) is read as intensities in 0..1, the floating-point image
      convention of scientific software, and scaled by 255 (clipped);
    * transparent images are composited on white (:data:`BACKGROUND`): each channel
      becomes ``c * a + 255 * (1 - a)`` with ``a = alpha / 255``, rounded.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)        # [H, W, 4]
        alpha = rgba[..., 3:] / np.float32(255)                             # [H, W, 1]
        rgb = rgba[..., :3] * alpha + np.float32(BACKGROUND) * (1 - alpha)  # [H, W, 3]
        return Image.fromarray(np.rint(rgb).astype(np.uint8))
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)                        # [H, W]
        scale = 255.0 if image.mode == "F" else 255.0 / 65535.0
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return image.convert("RGB")


def to_normalized_array(image):
    """An RGB PIL image -> float32 ``[3, H, W]``: values / 255, then per-channel normalised."""
    pixels = np.asarray(image, dtype=np.uint8)                     # [H, W, 3]
    x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255)   # [3, H, W] in [0, 1]
    return (x - MEAN[:, None, None]) / STD[:, None, None]


class Preprocess:
    """``Preprocess(n_px)(image) -> float32 [3, n_px, n_px]``, CLIP's preprocessing.

    ``image`` is a PIL image or the path of an image file. ``batch(images)`` prepares a
    list of them as one array ``[N, 3, n_px, n_px]``, ready for ``model.encode_image``.
    """

    def __init__(self, n_px):
        if not isinstance(n_px, (int, np.integer)) or n_px < 1:
            raise ValueError(f"Preprocess: n_px must be a positive int, got {n_px!r}")
        self.n_px = int(n_px)

    def __call__(self, image):
        image = _open(image)
        image = resize_shorter_side(image, self.n_px)
        image = center_crop(image, self.n_px)
        return to_normalized_array(to_rgb(image))

    def batch(self, images):
        """Several images (PIL images or paths) as one array ``[N, 3, n_px, n_px]``."""
        images = list(images)
        if not images:
            raise ValueError("Preprocess.batch: got no images")
        return np.stack([self(image) for image in images])

    def __repr__(self):
        return f"Preprocess(n_px={self.n_px})"


def transform(n_px):
    """CLIP's preprocessing for a model of input resolution ``n_px`` (``clip._transform``)."""
    return Preprocess(n_px)


def _open(image):
    """A PIL image, reading it first when given a path."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    raise TypeError(f"expected a PIL image or the path of an image file, got "
                    f"{type(image).__name__}")

"""Image preprocessing exactly as OpenAI's CLIP does it (``clip._transform``).

A model only ever saw images prepared this way in training, so inputs must match it
bit for bit for the released weights to give the published results:

1. **Resize** so the *shorter* side is ``n_px``, keeping the aspect ratio (the longer side
   becomes ``int(n_px * long / short)``), with PIL's bicubic filter. An image whose
   shorter side already is ``n_px`` is left untouched.
2. **Center crop** to ``n_px x n_px``: the offsets are ``round((size - n_px) / 2)`` with
   Python's ``round``, which rounds halves to even (16.5 -> 16).
3. **Convert to RGB** (grey images are replicated into three channels, alpha is dropped),
   after the crop, as the reference does.
4. **To floats**: channels first ``[3, n_px, n_px]``, pixel values / 255, in float32.
5. **Normalise** each channel with the mean and standard deviation of CLIP's training
   images, so the inputs are roughly zero-mean and unit-variance.

The pixel steps are PIL's own functions, as in the reference (reproducing PIL's
fixed-point bicubic resampling by hand would be a project of its own); the arithmetic
after them is NumPy in float32, in the reference's order.
"""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

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


def center_crop(image, n_px):
    """The central ``n_px x n_px`` square of an image at least that large on both sides."""
    width, height = image.size
    top = int(round((height - n_px) / 2.0))
    left = int(round((width - n_px) / 2.0))
    return image.crop((left, top, left + n_px, top + n_px))


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
        return to_normalized_array(image.convert("RGB"))

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
    """A PIL image, opening (and fully decoding) it first when given a path."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with Image.open(path) as opened:
                opened.load()  # decode now, so a truncated file fails here, naming the file
                return opened.copy()
        except FileNotFoundError:
            raise FileNotFoundError(f"no such image file: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"cannot read an image from {path}: {error}") from error
    raise TypeError(f"expected a PIL image or the path of an image file, got "
                    f"{type(image).__name__}")

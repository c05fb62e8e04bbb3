"""Reading the image files a user hands over (``--data`` folders, evaluation folders and
files), with one policy for the files that are not plain pictures.

A file that cannot be used raises ``UnreadableImage`` (a ``ValueError``: "cannot read an
image from PATH: why"), or ``FileNotFoundError`` when it is missing; the folder readers skip it, count it and name it
in one warning (``problems.Skipped``). What counts as unusable:

* **not an image**: a zero-byte file, text, a truncated or corrupt file, anything PIL
  cannot identify or decode (whatever PIL raises while decoding damaged bytes), and what
  is not a regular file (a folder, or a named pipe, which would block the reader);
* **a decompression bomb**: more pixels than PIL's ``Image.MAX_IMAGE_PIXELS`` (89 million
  by default). PIL itself only warns up to twice that many (``DecompressionBombWarning``);
  here the warning is an error, because a small file decoding to a few hundred megabytes
  per image would exhaust a laptop. Raise ``Image.MAX_IMAGE_PIXELS`` for huge photos you
  trust;
* **a sliver**: a side more than :data:`MAX_ASPECT_RATIO` times the other (a 4000 x 1
  banner). CLIP's resize makes the shorter side the model's resolution, so a 4000 x 1
  image would become 896,000 x 224 pixels (600 MB) of which the centre crop keeps 0.03%.

What is read as usual: the file's contents decide its format, not its extension (a PNG
named ``.jpg`` is a PNG); tiny images (1 x 1) are upscaled by the resize like any other;
an animated GIF, PNG or WebP gives its first frame, as PIL (and so the reference) opens it.
"""
import os
import threading
import warnings

import numpy as np
from PIL import Image

from .problems import Skipped, UnreadableImage

#: A side may be at most this many times the other (the module docstring says why).
MAX_ASPECT_RATIO = 20

#: What reading or verifying an image raises for a file that is not a readable image.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

# Turning PIL's bomb warning into an error changes the process's warning filters for a
# moment; the loader's threads open images concurrently, so they take turns (opening reads
# only the header: decoding, the slow part, happens outside the lock).
_OPEN_LOCK = threading.Lock()

# Where PIL's modules are, to tell its warnings from those other threads give meanwhile.
_PIL_FOLDER = os.path.dirname(Image.__file__)


def open_image(path):
    """``Image.open(path)`` under the policy of the module docstring (the pixels are not
    decoded yet); ``ValueError`` naming the file for an unusable one."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path):  # a pipe would block the open
        raise UnreadableImage(path, "not a regular file")
    caught = []
    try:
        with _OPEN_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such image file: {path}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise UnreadableImage(path, f"{error} (over Image.MAX_IMAGE_PIXELS, "
                              f"{Image.MAX_IMAGE_PIXELS:,}: raise it for images you "
                              "trust)") from error
    except MemoryError:
        raise
    except Exception as error:  # PIL's parsers raise many kinds on damaged headers
        raise UnreadableImage(path, error) from error
    finally:
        # PIL's warnings about a header (corrupt EXIF and the like, common in real photos)
        # are dropped: a file is read or skipped and counted, never both. Other threads'
        # warnings, caught in passing, are given again.
        for warning in caught:
            if not warning.filename.startswith(_PIL_FOLDER):
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
    width, height = image.size
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        image.close()
        raise UnreadableImage(path, f"it is {width} x {height} pixels, a side over "
                              f"{MAX_ASPECT_RATIO} times the other")
    return image


def read_image(path, draft=None):
    """The fully decoded PIL image of the file ``path``, in the file's own mode (the first
    frame of an animation).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file (with
    PIL's reason) for one that is unusable (module docstring), so that a bad file fails
    here, by name, not halfway through a batch.

    With ``draft`` (pixels), a JPEG is decoded at 1/2, 1/4 or 1/8 of its size, the smallest
    that keeps both sides at least ``draft`` (libjpeg's DCT scaling, PIL's ``draft``): a
    1600 x 1200 photo for a 32-pixel model decodes about 3x faster and leaves 64x fewer
    pixels to resize. The pixels differ a little from a full decode and resize, so only
    training uses it; evaluation must match the reference.
    """
    path = os.fspath(path)
    with open_image(path) as opened:
        try:
            if draft is not None:
                opened.draft(opened.mode, (draft, draft))
            opened.load()
            return opened.copy()
        except MemoryError:
            raise
        except Exception as error:  # PIL's decoders raise many kinds on damaged data
            raise UnreadableImage(path, error) from error


def verify_images(paths):
    """Cheaply check that each file exists and has a readable image header (PIL's
    ``verify``, which does not decode the pixels) within the policy of the module
    docstring. Returns ``(readable [n] int64 indices into paths, Skipped of the others)``."""
    readable, skipped = [], Skipped()
    for index, path in enumerate(paths):
        try:
            with open_image(path) as image:
                image.verify()
        except FileNotFoundError:
            skipped.add(path, "no such file")
            continue
        except MemoryError:
            raise
        except Exception as error:  # open_image's ValueError, or what verify raises
            skipped.add(path, error)
            continue
        readable.append(index)
    return np.array(readable, dtype=np.int64), skipped


def preprocess_in_batches(paths, preprocess, batch_size, skipped):
    """Decode and preprocess ``paths`` ``batch_size`` at a time.

    Yields ``(indices [n], images [n, 3, R, R] float32)``: the positions in ``paths`` of
    the images that could be read, and the images. A file that cannot be read is added to
    ``skipped`` (a :class:`~miniclip.data.problems.Skipped`) and left out; a batch of only
    unreadable files yields nothing.
    """
    for start in range(0, len(paths), batch_size):
        indices, images = [], []
        for index in range(start, min(start + batch_size, len(paths))):
            try:
                images.append(preprocess(read_image(paths[index])))
            except IMAGE_ERRORS as error:
                skipped.add(paths[index], error)
                continue
            indices.append(index)
        if indices:
            yield np.array(indices, dtype=np.int64), np.stack(images)

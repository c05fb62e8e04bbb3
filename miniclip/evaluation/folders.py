"""Evaluation data on disk: image-classification folders and image–caption folders.

Two layouts are read, the ones evaluation suites use:

* **Classification** (torchvision's ``ImageFolder``)::

      DIR/golden_retriever/001.jpg
      DIR/golden_retriever/more/002.png     (sub-folders of a class are searched too)
      DIR/tabby_cat/003.jpg

  One sub-folder per class, in sorted order; a class's name for the prompts is its folder
  name with ``_`` read as a space ("golden retriever").

* **Image–caption**: the images plus one captions file, ``captions.csv``,
  ``captions.tsv`` or ``captions.jsonl``, with a ``filename`` and a ``caption`` per row
  (CSV/TSV: a header row naming both columns; JSONL: one object per line, whose
  ``caption`` may also be a list of captions). An image may have several rows, i.e.
  several captions; its rows are grouped, in the order the images first appear.

Listing a folder never opens an image. The images are decoded later, a batch at a time
(:func:`preprocess_in_batches`), and a file that cannot be read (missing, truncated,
corrupt, not an image) is skipped and reported, not fatal: a real folder of ten thousand
pictures often holds one bad one. Every common PIL mode ends up as RGB: miniclip's
preprocessing converts L, LA, P, RGBA, CMYK, ... exactly as OpenAI's does, and
:func:`read_image` first brings 16-bit greyscale (``I;16``) down to 8 bits, which PIL's own
conversion would clip to white.
"""
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..data import ImageTextFolder

#: File name endings that count as images when listing a classification folder.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff",
                  ".webp")

#: Captions files looked for, in this order, when none is named.
CAPTIONS_FILES = ("captions.csv", "captions.tsv", "captions.jsonl")

#: How many unreadable files a warning names (the rest are counted).
NAMED_IN_WARNINGS = 5


@dataclass
class ClassificationFolder:
    """An image-classification folder, listed: ``paths[i]`` has class ``labels[i]``
    (an index into ``classnames``)."""
    root: Path
    classnames: list        # [K] str, from the folder names
    paths: list             # [N] Path
    labels: np.ndarray      # [N] int64


@dataclass
class CaptionFolder:
    """An image–caption folder, listed: ``captions[i]`` are the captions of ``paths[i]``."""
    root: Path
    paths: list             # [N] Path
    captions: list          # [N] lists of str, each non-empty
    empty_captions: int = 0  # rows skipped because their caption was blank


@dataclass
class SkippedImages:
    """Image files that could not be read: ``(path, reason)`` pairs."""
    files: list = field(default_factory=list)

    def add(self, path, error):
        self.files.append((str(path), str(error)))

    def __len__(self):
        return len(self.files)

    def message(self, total):
        """One line saying how many of ``total`` files were skipped, naming the first few."""
        named = "; ".join(f"{path} ({reason})" for path, reason in self.files[:NAMED_IN_WARNINGS])
        more = len(self.files) - NAMED_IN_WARNINGS
        return (f"skipped {len(self.files)} of {total} image files that could not be read: "
                f"{named}" + (f"; and {more} more" if more > 0 else ""))

    def warn(self, total):
        """Issue :meth:`message` as a ``UserWarning`` when anything was skipped."""
        if self.files:
            warnings.warn(self.message(total), stacklevel=3)


def _require_folder(root, layout):
    root = Path(root)
    if not root.is_dir():
        what = "no such folder" if not root.exists() else "not a folder"
        raise FileNotFoundError(f"{what}: {root} ({layout})")
    return root


def _is_hidden(path, root):
    """Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints/``) are not data."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def read_classification_folder(root):
    """List an ``ImageFolder``-style folder (see the module docstring).

    Raises ``FileNotFoundError`` when ``root`` is not a folder, or holds no class
    sub-folders or no image files.
    """
    layout = "expected one sub-folder of images per class"
    root = _require_folder(root, layout)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not _is_hidden(d, root))
    if not class_dirs:
        raise FileNotFoundError(f"{root} has no sub-folders ({layout})")
    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for path in sorted(class_dir.rglob("*")):
            if (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
                    and not _is_hidden(path, root)):
                paths.append(path)
                labels.append(label)
    if not paths:
        raise FileNotFoundError(f"{root} has class folders but no image files ending in "
                                f"{', '.join(IMAGE_SUFFIXES)}")
    classnames = [d.name.replace("_", " ") for d in class_dirs]
    return ClassificationFolder(root, classnames, paths, np.array(labels, dtype=np.int64))


def read_caption_folder(root, captions=None):
    """List an image–caption folder (see the module docstring).

    ``captions`` names the captions file (relative to ``root`` unless absolute); by default
    the first of :data:`CAPTIONS_FILES` that exists. Rows with a blank caption are skipped
    and counted in ``empty_captions``; images are listed whether or not they exist (reading
    them later skips the missing ones).
    """
    root = _require_folder(root, "expected images and a captions file")
    if captions is None:
        found = [root / name for name in CAPTIONS_FILES if (root / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{root} has no captions file ({', '.join(CAPTIONS_FILES)}, "
                                    "with a filename and a caption column)")
        captions_path = found[0]
    else:
        captions_path = root / captions
        if not captions_path.is_file():
            raise FileNotFoundError(f"no such captions file: {captions_path}")
    if captions_path.suffix.lower() == ".jsonl":
        rows = _read_jsonl_rows(captions_path)
    else:
        rows = ImageTextFolder(root, captions_path.resolve()).items  # an absolute path
    grouped, empty = {}, 0  # filename -> its captions, in order of first appearance
    for filename, caption in rows:
        if caption is None or not caption.strip():
            empty += 1
            continue
        grouped.setdefault(filename, []).append(caption.strip())
    if not grouped:
        raise ValueError(f"{captions_path} lists no image with a non-empty caption")
    return CaptionFolder(root, [root / name for name in grouped], list(grouped.values()), empty)


def _read_jsonl_rows(path):
    """``(filename, caption)`` pairs of a JSON-lines file; a list caption gives one pair per
    item. A line that is not a JSON object with both keys raises an error naming it."""
    rows = []
    with open(path, encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                filename, captions = record["filename"], record["caption"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: expected a JSON object with "
                                 f"'filename' and 'caption', got {line.strip()[:60]!r} "
                                 f"({error})") from None
            for caption in ([captions] if isinstance(captions, str) or captions is None
                            else captions):
                rows.append((filename, caption))
    return rows


def read_image(path):
    """The decoded PIL image of ``path``, ready for miniclip's preprocessing.

    16-bit greyscale (modes ``I;16``, ``I;16B``, ...) is scaled to 8-bit ``L`` by dropping
    the low byte (``v >> 8``, i.e. ``v * 255 / 65535`` rounded down); PIL's ``convert``
    would instead clip every value above 255 to white. Raises ``OSError`` or ``ValueError``
    (with PIL's reason) for a file that cannot be read.
    """
    with Image.open(path) as opened:
        opened.load()  # decode now: a truncated file fails here, not halfway through a batch
        image = opened.copy()
    if image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.uint16)        # [H, W]
        image = Image.fromarray((values >> 8).astype(np.uint8), mode="L")
    return image


def preprocess_in_batches(paths, preprocess, batch_size, skipped):
    """Decode and preprocess ``paths`` ``batch_size`` at a time.

    Yields ``(indices [n], images [n, 3, R, R] float32)``: the positions in ``paths`` of
    the images that could be read, and the images. A file that cannot be read is added to
    ``skipped`` (a :class:`SkippedImages`) and left out; a batch of only unreadable files
    yields nothing.
    """
    for start in range(0, len(paths), batch_size):
        indices, images = [], []
        for index in range(start, min(start + batch_size, len(paths))):
            try:
                images.append(preprocess(read_image(paths[index])))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                skipped.add(paths[index], error)
                continue
            indices.append(index)
        if indices:
            yield np.array(indices, dtype=np.int64), np.stack(images)

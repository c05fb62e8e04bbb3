"""Evaluation data on disk: image-classification folders and image–caption folders.

Two layouts are read, the ones evaluation suites use:

* **Classification** (torchvision's ``ImageFolder``)::

      DIR/golden_retriever/001.jpg
      DIR/golden_retriever/more/002.png     (sub-folders of a class are searched too)
      DIR/tabby_cat/003.jpg

  One sub-folder per class, in sorted order; a class's name for the prompts is its folder
  name with ``_`` read as a space ("golden retriever").

* **Image–caption**: the images plus one captions file, ``captions.csv``,
  ``captions.tsv`` or ``captions.jsonl``, read by :mod:`miniclip.data.folders` (whose
  docstring gives the format), the reader training uses too. An image may have several
  captions; its rows are grouped, in the order the images first appear.

Listing a folder never opens an image. The images are decoded later, a batch at a time
(:func:`preprocess_in_batches`), and a file that cannot be read (missing, truncated,
corrupt, not an image) is skipped and reported, not fatal: a real folder of ten thousand
pictures often holds one bad one. Every common PIL mode ends up as RGB
(:func:`miniclip.data.preprocess.to_rgb`).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.folders import IMAGE_ERRORS, require_folder
from ..data.preprocess import read_image

#: File name endings that count as images when listing a classification folder.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff",
                  ".webp")


@dataclass
class ClassificationFolder:
    """An image-classification folder, listed: ``paths[i]`` has class ``labels[i]``
    (an index into ``classnames``)."""
    root: Path
    classnames: list        # [K] str, from the folder names
    paths: list             # [N] Path
    labels: np.ndarray      # [N] int64


def _is_hidden(path, root):
    """Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints/``) are not data."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def read_classification_folder(root):
    """List an ``ImageFolder``-style folder (see the module docstring).

    Raises ``FileNotFoundError`` when ``root`` is not a folder, or holds no class
    sub-folders or no image files.
    """
    layout = "expected one sub-folder of images per class"
    root = require_folder(root, layout)
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


def preprocess_in_batches(paths, preprocess, batch_size, skipped):
    """Decode and preprocess ``paths`` ``batch_size`` at a time.

    Yields ``(indices [n], images [n, 3, R, R] float32)``: the positions in ``paths`` of
    the images that could be read, and the images. A file that cannot be read is added to
    ``skipped`` (a :class:`~miniclip.data.folders.Skipped`) and left out; a batch of only
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

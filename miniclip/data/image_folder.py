"""An image-classification folder (torchvision's ``ImageFolder`` layout), listed::

    DIR/golden_retriever/001.jpg
    DIR/golden_retriever/more/002.png     (sub-folders of a class are searched too)
    DIR/tabby_cat/003.jpg

One sub-folder per class, in sorted order; a class's name for the prompts is its folder
name with ``_`` read as a space ("golden retriever"). Hidden files and folders are not
data. Listing never opens an image: they are decoded later, a batch at a time
(``images.preprocess_in_batches``), and one that cannot be read is skipped and reported.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .problems import require_folder

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

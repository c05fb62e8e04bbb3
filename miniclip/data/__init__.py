"""Image-caption data for training CLIP, and the image preprocessing CLIP expects.

A dataset here is anything with ``__len__`` and ``__getitem__(i) -> (PIL image, caption)``,
and, if its items vary from visit to visit, ``visit(i, epoch)`` (see :class:`DataLoader`).

* ``synthetic.py``   :class:`SyntheticShapes`, pictures of coloured shapes drawn from a seed
* ``folders.py``     :class:`ImageTextFolder`, a folder of images with a captions file
  (CSV, TSV or JSONL; its docstring gives the format), checked up front
* ``preprocess.py``  CLIP's resize, centre crop and normalisation (:class:`Preprocess`),
  every image mode to RGB, and the training augmentation (a random square crop)
* ``loader.py``      :class:`DataLoader`, :class:`CLIPCollate`, :class:`ArrayDataset` and
  :class:`Prefetcher` (batches prepared in a background thread)

A leaf of the package: it uses NumPy, PIL and the tokenizer, nothing of the numeric stack.
"""
from .folders import DataError, ImageTextFolder, read_caption_folder
from .loader import ArrayDataset, CLIPCollate, DataLoader, Prefetcher, stack_fields
from .synthetic import COLOURS, POSITIONS, SHAPES, SIZES, SPLITS, TEMPLATES, SyntheticShapes

__all__ = ["ArrayDataset", "CLIPCollate", "COLOURS", "DataError", "DataLoader",
           "ImageTextFolder", "POSITIONS", "Prefetcher", "SHAPES", "SIZES", "SPLITS",
           "SyntheticShapes", "TEMPLATES", "read_caption_folder", "stack_fields"]

"""Image-caption data for training CLIP, and the image preprocessing CLIP expects.

A dataset here is anything with ``__len__`` and ``__getitem__(i) -> (PIL image, caption)``,
and, if its items vary from visit to visit, ``visit(i, epoch)`` (see :class:`DataLoader`).

* ``synthetic.py``   :class:`SyntheticShapes`, pictures of coloured shapes drawn from a seed
* ``captions.py``    the captions file of an image–caption folder (CSV, TSV or JSONL; its
  docstring gives the format) and :func:`read_caption_folder`
* ``image_text_folder.py``  :class:`ImageTextFolder`, such a folder as a training dataset,
  its images checked up front
* ``image_folder.py`` an image-classification folder (``ImageFolder`` layout), listed
* ``images.py``      reading image files: what is refused (not an image, a decompression
  bomb, a sliver) and what is read (any format by its contents, the first frame)
* ``problems.py``    :class:`DataError` and :class:`Skipped`: one error, or the files and
  rows skipped, counted and named in one warning
* ``preprocess.py``  CLIP's resize, centre crop and normalisation (:class:`Preprocess`),
  every image mode to RGB, and the training augmentation (a random square crop)
* ``loader.py``      :class:`DataLoader`, :class:`CLIPCollate`, :class:`ArrayDataset` and
  :class:`Prefetcher` (batches prepared in a background thread)

A leaf of the package: it uses NumPy, PIL and the tokenizer, nothing of the numeric stack.
"""
from .captions import read_caption_folder
from .image_folder import read_classification_folder
from .image_text_folder import ImageTextFolder
from .images import UnreadableImage, read_image
from .loader import ArrayDataset, CLIPCollate, DataLoader, Prefetcher, stack_fields
from .problems import DataError, Skipped
from .synthetic import COLOURS, POSITIONS, SHAPES, SIZES, SPLITS, TEMPLATES, SyntheticShapes

__all__ = ["ArrayDataset", "CLIPCollate", "COLOURS", "DataError", "DataLoader",
           "ImageTextFolder", "POSITIONS", "Prefetcher", "SHAPES", "SIZES", "SPLITS", "Skipped",
           "SyntheticShapes", "TEMPLATES", "UnreadableImage", "read_caption_folder",
           "read_classification_folder", "read_image", "stack_fields"]

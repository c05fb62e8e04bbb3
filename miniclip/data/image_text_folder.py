"""The training dataset of a folder of images and a captions file (``captions.py`` gives
the file's format), every image checked up front."""
import warnings

import numpy as np

from .captions import read_caption_folder
from .images import IMAGE_ERRORS, read_image, verify_images
from .preprocess import TRAIN_RESIZE, random_square_crop
from .problems import NAMED_IN_WARNINGS, DataError, Skipped


class ImageTextFolder:
    """A folder of images and a captions file (see the module docstring) as a dataset.

    Everything is checked up front, before training starts: the captions file's structure
    (a :class:`DataError` naming the line), its rows (blank captions skipped) and every
    image's header (missing and unreadable files skipped); what was skipped is named in a
    warning and kept in ``skipped_rows`` and ``skipped_images``. An image that passes the
    check but fails to decode later (a file truncated after its header) does not stop a
    run either: :meth:`visit` substitutes the next image, warns and counts it in ``failed``.

    Args:
        root: the folder; image names in the captions file are relative to it.
        captions: the captions file (default: the first of :data:`CAPTIONS_FILES`).
        random_crop: the model's input resolution ``n_px`` to train with the paper's
            augmentation (:func:`~miniclip.data.preprocess.random_square_crop`), or None for
            the images as they are (the collate's preprocessing then centre-crops them).
            With it, JPEGs much larger than the crop are decoded at a reduced scale
            (``read_image``'s ``draft``), which makes decoding several times faster.
        seed: seed of the captions drawn and the crops.

    ``dataset[i]`` is ``(image, first caption of image i)``, the same every time;
    ``dataset.visit(i, epoch)``, which :class:`~miniclip.data.DataLoader` calls, draws one
    of the captions and the crop from ``(seed, epoch, i)`` alone, so that a resumed run or
    a prefetching loader sees exactly the same items.
    """

    def __init__(self, root, captions=None, *, random_crop=None, seed=0):
        folder = read_caption_folder(root, captions)
        readable, self.skipped_images = verify_images(folder.paths)
        self.skipped_images.warn(len(folder.paths))
        if not len(readable):
            raise DataError(f"none of the {len(folder.paths)} images listed in "
                            f"{folder.captions_file} could be read: "
                            f"{self.skipped_images.message(len(folder.paths))}")
        self.root, self.captions_file = folder.root, folder.captions_file
        self.paths = [folder.paths[i] for i in readable]              # [N] Path
        self.captions = [folder.captions[i] for i in readable]        # [N] lists of str
        self.skipped_rows = folder.skipped_rows
        self.random_crop, self.seed = random_crop, seed
        # the shorter side random_square_crop resizes to: decoding needs no more
        self._draft = None if random_crop is None else int(random_crop * TRAIN_RESIZE)
        self.failed = Skipped("images that failed to decode during training")
        self._unreadable = set()  # indices that failed once: not tried again

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return read_image(self.paths[index]), self.captions[index][0]

    def visit(self, index, epoch):
        """``(image, caption)`` for a visit to item ``index`` in epoch ``epoch``: one of
        its captions, and with ``random_crop`` a random square, drawn from
        ``(seed, epoch, index)``."""
        rng = np.random.default_rng([self.seed, epoch, index])
        index, image = self._read(index)
        captions = self.captions[index]
        caption = captions[int(rng.integers(len(captions)))]
        if self.random_crop is not None:
            image = random_square_crop(image, self.random_crop, rng)
        return image, caption

    def _read(self, index):
        """``(index, image)`` of the first item from ``index`` on (wrapping round) whose
        image decodes; each failure is warned about and counted in ``failed``."""
        for candidate in ((index + offset) % len(self) for offset in range(len(self))):
            if candidate in self._unreadable:
                continue
            try:
                return candidate, read_image(self.paths[candidate], self._draft)
            except IMAGE_ERRORS as error:
                self._unreadable.add(candidate)
                self.failed.add(self.paths[candidate], error)
                if len(self.failed) <= NAMED_IN_WARNINGS:
                    warnings.warn(f"{error}; skipping it: the next image takes its place "
                                  f"({self.failed.what} so far: {len(self.failed)}"
                                  + ("; the next are only counted" if len(self.failed)
                                     == NAMED_IN_WARNINGS else "") + ")", stacklevel=2)
        raise DataError(f"none of the images of {self.root} can be decoded: "
                        f"{self.failed.message(len(self))}")

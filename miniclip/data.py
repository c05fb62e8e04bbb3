"""Image–caption data for training CLIP: a synthetic dataset, a folder reader and a batcher.

CLIP learns from pairs ``(image, caption)``. This module provides:

* :class:`SyntheticShapes` — small pictures of coloured shapes with captions such as
  ``"a photo of a small red circle on the left"``. It is drawn on the fly with PIL from a
  seed, so it needs no download, and every item is reproducible on its own (item ``i``
  depends only on the seed, the split and ``i``). Its class names (``"red circle"``, …)
  and prompt templates let zero-shot evaluation build its prompts.
* :class:`ImageTextFolder` — real data: a folder of images plus a CSV/TSV file of
  ``filename, caption`` rows.
* :class:`DataLoader` — shuffles indices with a seed, cuts them into batches and turns each
  batch into arrays with a ``collate`` function; :class:`CLIPCollate` is the one CLIP needs:
  ``images [N, 3, R, R] float32`` (preprocessed exactly as CLIP does) and
  ``tokens [N, C] int64``.
* :class:`ArrayDataset` — a dataset prepared once into those arrays, so that training
  epochs do not decode, draw and tokenize the same items again and again.

A dataset here is anything with ``__len__`` and ``__getitem__(i) -> (PIL image, caption)``.
"""
import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# ----------------------------------------------------------------------------- synthetic data
#: Fill colours, as RGB. Every item jitters them a little so that "red" is a range of reds.
#: (No name starts with a vowel, so "a photo of a {colour} {shape}" is always good English.)
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 175, 60),
    "blue": (45, 85, 230),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 200),
    "white": (235, 235, 235),
}

#: Shape names. Each is drawn by the ``_draw_<name>`` function below.
SHAPES = ("circle", "square", "triangle", "cross", "diamond")

#: Size word -> radius of the shape as a fraction of the image side.
SIZES = {"small": 0.12, "large": 0.21}

#: Position word -> (centre x, centre y) as fractions of the image side, and how the
#: caption says it.
POSITIONS = {
    "left": ((0.28, 0.50), "on the left"),
    "right": ((0.72, 0.50), "on the right"),
    "top": ((0.50, 0.28), "at the top"),
    "bottom": ((0.50, 0.72), "at the bottom"),
}

#: Prompt templates for zero-shot classification of the synthetic images. ``{}`` is a class
#: name such as ``"red circle"``. Averaging a class's text embedding over several phrasings
#: (the CLIP paper's "prompt ensembling") makes the classifier less sensitive to wording.
TEMPLATES = (
    "a photo of a {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
)

#: Each split is its own stream of random items (the splits share the attributes, not images).
SPLITS = ("train", "test")

# Shapes are drawn this many times larger and then downsampled, which anti-aliases the edges.
_SUPERSAMPLE = 4


class SyntheticShapes:
    """Pictures of one coloured shape on a noisy background, with a caption.

    Each item draws a shape, a colour, a size and a position at random and renders, e.g.,
    a small red circle on the left of a ``image_size x image_size`` RGB picture. Its caption
    always names the colour and the shape; it also names the size and the position, each
    with probability ``mention_probability``, so the text encoder sees both long captions
    ("a photo of a small red circle on the left.") and short ones ("a photo of a red
    circle."), which are exactly the zero-shot prompts.

    Args:
        length: number of items.
        image_size: side of the square images in pixels.
        split: ``"train"`` or ``"test"``; the splits are independent random streams.
        seed: the master seed. Item ``i`` is drawn from a generator seeded with
            ``(seed, split, i)``, so it is the same whatever order items are read in.
        colours, shapes: subsets of :data:`COLOURS` and :data:`SHAPES` to draw from.
        mention_probability: chance that a caption names the size, and (independently)
            the position.

    ``dataset[i]`` is ``(PIL.Image, caption)``. For zero-shot evaluation the classes are the
    colour–shape combinations: :attr:`classnames` lists them (``"red circle"``, …),
    :meth:`label` gives an item's class index and :attr:`templates` the prompts.
    """

    templates = TEMPLATES

    def __init__(self, length, image_size=32, *, split="train", seed=0,
                 colours=tuple(COLOURS), shapes=SHAPES, mention_probability=0.5):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        unknown = [c for c in colours if c not in COLOURS] + [s for s in shapes if s not in SHAPES]
        if unknown:
            raise ValueError(f"unknown colours/shapes {unknown}; known colours "
                             f"{list(COLOURS)}, shapes {list(SHAPES)}")
        self.length = int(length)
        self.image_size = int(image_size)
        self.split = split
        self.seed = int(seed)
        self.colours = tuple(colours)
        self.shapes = tuple(shapes)
        self.mention_probability = float(mention_probability)
        #: Zero-shot classes: every colour–shape pair, colour-major ("red circle", "red
        #: square", …).
        self.classnames = [f"{c} {s}" for c in self.colours for s in self.shapes]

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        attributes, caption, rng = self._sample(index)
        return self._render(attributes, rng), caption

    def attributes(self, index):
        """The attributes of item ``index``: a dict with shape, colour, size, position."""
        return self._sample(index)[0]

    def label(self, index):
        """The class index (into :attr:`classnames`) of item ``index``."""
        a = self.attributes(index)
        return self.classnames.index(f"{a['colour']} {a['shape']}")

    def labels(self):
        """Class indices of every item, ``int64 [len]``."""
        return np.array([self.label(i) for i in range(len(self))], dtype=np.int64)

    def _sample(self, index):
        """Draw item ``index``'s attributes and caption; return them with the generator,
        which then goes on to draw the rendering details (jitter, background, noise)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index])
        attributes = {
            "shape": self.shapes[rng.integers(len(self.shapes))],
            "colour": self.colours[rng.integers(len(self.colours))],
            "size": list(SIZES)[rng.integers(len(SIZES))],
            "position": list(POSITIONS)[rng.integers(len(POSITIONS))],
        }
        words = ["a photo of a"]
        if rng.random() < self.mention_probability:
            words.append(attributes["size"])
        words += [attributes["colour"], attributes["shape"]]
        if rng.random() < self.mention_probability:
            words.append(POSITIONS[attributes["position"]][1])
        return attributes, " ".join(words) + ".", rng

    def _render(self, attributes, rng):
        """Draw the picture: the shape on a dark, slightly tinted background, drawn
        ``_SUPERSAMPLE`` times larger and box-filtered down (smooth edges), plus pixel noise."""
        side = self.image_size * _SUPERSAMPLE
        # A dark grey (20..90) with a small random tint per channel, so that the background
        # never looks like one of the shape colours.
        background = tuple(int(v) for v in rng.integers(20, 90) + rng.integers(-10, 11, size=3))
        canvas = Image.new("RGB", (side, side), background)
        (cx, cy), _ = POSITIONS[attributes["position"]]
        cx, cy = (np.array([cx, cy]) + rng.uniform(-0.06, 0.06, size=2)) * side
        radius = SIZES[attributes["size"]] * rng.uniform(0.9, 1.1) * side
        jitter = rng.integers(-20, 21, size=3)
        fill = np.clip(np.array(COLOURS[attributes["colour"]]) + jitter, 0, 255)
        fill = tuple(int(v) for v in fill)
        _DRAW[attributes["shape"]](ImageDraw.Draw(canvas), cx, cy, radius, fill)
        small = canvas.resize((self.image_size, self.image_size), Image.BOX)
        # Mild pixel noise, so that no two pictures of "a small red circle" are identical.
        noise = rng.integers(-8, 9, size=(self.image_size, self.image_size, 3))
        pixels = np.clip(np.asarray(small, dtype=np.int16) + noise, 0, 255)
        return Image.fromarray(pixels.astype(np.uint8))  # [H, W, 3] uint8 is RGB


def _draw_circle(draw, cx, cy, r, fill):
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)


def _draw_square(draw, cx, cy, r, fill):
    h = r * 0.85  # a slightly smaller half-side gives the square about a circle's area
    draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)


def _draw_triangle(draw, cx, cy, r, fill):
    # Equilateral, pointing up, inscribed in the circle of radius r.
    corners = [(cx + r * math.cos(a), cy - r * math.sin(a))
               for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)]
    draw.polygon(corners, fill=fill)


def _draw_cross(draw, cx, cy, r, fill):
    w = r * 0.35  # half-width of each bar of the plus sign
    draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
    draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)


def _draw_diamond(draw, cx, cy, r, fill):
    draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


_DRAW = {name: globals()[f"_draw_{name}"] for name in SHAPES}


# ----------------------------------------------------------------------------- real data
class ImageTextFolder:
    """Image–caption pairs listed in a CSV or TSV file next to (or above) the images.

    The captions file has a header row naming an image column and a caption column
    (``filename,caption`` by default); image paths are relative to ``root``. A ``.tsv``
    file is read tab-separated, anything else comma-separated. Images are opened lazily, in
    ``__getitem__``; a missing or unreadable file raises an error that names it.

    Args:
        root: folder the image paths are relative to.
        captions: path of the captions file (relative to ``root`` unless absolute).
        image_column, caption_column: header names of the two columns.
    """

    def __init__(self, root, captions="captions.csv", *, image_column="filename",
                 caption_column="caption"):
        self.root = Path(root)
        captions_path = self.root / captions
        delimiter = "\t" if captions_path.suffix.lower() == ".tsv" else ","
        with open(captions_path, newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file, delimiter=delimiter)
            missing = {image_column, caption_column} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{captions_path}: header {reader.fieldnames} lacks the "
                                 f"column(s) {sorted(missing)}")
            self.items = [(row[image_column], row[caption_column]) for row in reader]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        filename, caption = self.items[index]
        path = self.root / filename
        try:
            image = Image.open(path)
            image.load()  # PIL reads lazily; decode now so a corrupt file fails here, by name
        except OSError as error:  # FileNotFoundError and PIL's UnidentifiedImageError included
            raise OSError(f"cannot read image {path} (item {index} of {self.root}): "
                          f"{error}") from error
        return image, caption


# ----------------------------------------------------------------------------- batching
class CLIPCollate:
    """Turns a list of ``(image, caption)`` pairs into CLIP's two input arrays.

    Args:
        image_transform: PIL image -> ``float32 [3, R, R]``, e.g. miniclip's CLIP preprocessing.
        tokenize: list of captions -> ``int64 [N, C]`` token ids.

    Returns ``(images [N, 3, R, R] float32, tokens [N, C] int64)``, both NumPy (the training
    loop moves them to its device).
    """

    def __init__(self, image_transform, tokenize):
        self.image_transform = image_transform
        self.tokenize = tokenize

    @classmethod
    def for_model(cls, image_size, context_length, truncate=True):
        """The collate a CLIP of this input resolution and context length needs, built from
        miniclip's preprocessing and default tokenizer."""
        from .preprocess import transform
        from .tokenizer import tokenize

        def tokenize_batch(captions):
            return tokenize(captions, context_length=context_length, truncate=truncate)

        return cls(transform(image_size), tokenize_batch)

    def __call__(self, pairs):
        images = np.stack([np.asarray(self.image_transform(image), dtype=np.float32)
                           for image, _ in pairs])
        tokens = np.asarray(self.tokenize([caption for _, caption in pairs]), dtype=np.int64)
        return images, tokens


def stack_fields(items):
    """Collate for items that are tuples of arrays: one stacked array per field."""
    return tuple(np.stack(field) for field in zip(*items))


class ArrayDataset:
    """A dataset whose items are rows of arrays: item ``i`` is ``(arrays[0][i], arrays[1][i])``.

    ``ArrayDataset.prepare(dataset, collate)`` runs ``collate`` over a whole dataset once
    (e.g. :class:`CLIPCollate`, giving ``(images, tokens)``), trading memory for time:
    a 4,096-item synthetic set at 32 x 32 is 50 MB of float32 pixels, and every later epoch
    is a matter of indexing. Batch it with ``DataLoader(..., collate=stack_fields)``.
    """

    def __init__(self, *arrays):
        if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
            raise ValueError(f"ArrayDataset needs arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = arrays

    @classmethod
    def prepare(cls, dataset, collate, chunk_size=256):
        """Collate every item of ``dataset`` (``chunk_size`` at a time) into one dataset."""
        chunks = [collate([dataset[i] for i in range(start, min(start + chunk_size, len(dataset)))])
                  for start in range(0, len(dataset), chunk_size)]
        return cls(*(np.concatenate(field) for field in zip(*chunks)))

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


class DataLoader:
    """Batches of a dataset, in a seeded random order, as arrays.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``.
        batch_size: items per batch.
        shuffle: visit the items in a new random order every epoch. The order of epoch ``e``
            depends only on ``(seed, e)``, so a resumed run sees the same batches.
        seed: seed of the shuffling.
        drop_last: drop the final batch of an epoch when it is smaller than ``batch_size``
            (contrastive training prefers equal-size batches: a batch of 3 is an easy task).
        collate: list of items -> batch; by default the list itself.

    ``iter(loader)`` yields one epoch and then advances :attr:`epoch`. For step-based
    training, :meth:`batches` yields an endless stream that can start at any global step.
    """

    def __init__(self, dataset, batch_size, *, shuffle=False, seed=0, drop_last=False,
                 collate=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate = collate if collate is not None else list
        self.epoch = 0
        if len(self) == 0:
            raise ValueError(f"a dataset of {len(dataset)} items gives no batch of "
                             f"{batch_size} with drop_last=True")

    def __len__(self):
        """Batches per epoch."""
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch_batches(self, epoch):
        """The item indices of every batch of epoch ``epoch`` (a list of int arrays)."""
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        return [order[i:i + self.batch_size] for i in range(0, len(self) * self.batch_size,
                                                             self.batch_size)]

    def load(self, indices):
        """The batch made of these item indices."""
        return self.collate([self.dataset[int(i)] for i in indices])

    def __iter__(self):
        for indices in self.epoch_batches(self.epoch):
            yield self.load(indices)
        self.epoch += 1

    def batches(self, start_step=0):
        """Batches for global steps ``start_step, start_step + 1, …`` forever, crossing epochs.

        The batch of step ``s`` is batch ``s % len(self)`` of epoch ``s // len(self)``, so a
        run resumed at step ``s`` continues exactly where the interrupted one stopped.
        """
        epoch, skip = divmod(start_step, len(self))
        while True:
            for indices in self.epoch_batches(epoch)[skip:]:
                yield self.load(indices)
            epoch, skip = epoch + 1, 0

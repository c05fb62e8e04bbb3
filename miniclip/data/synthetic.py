"""A synthetic image-caption set: pictures of coloured shapes, drawn on the fly.

:class:`SyntheticShapes` draws small pictures of coloured shapes with captions such as
``"a photo of a small red circle on the left"`` with PIL from a seed, so it needs no
download, and every item is reproducible on its own (item ``i`` depends only on the seed,
the split and ``i``). Its class names (``"red circle"``, …) and prompt templates let
zero-shot evaluation build its prompts.
"""
import math

import numpy as np
from PIL import Image, ImageDraw

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

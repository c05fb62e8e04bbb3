"""A synthetic image-caption set: pictures of coloured shapes, drawn on the fly.

:class:`SyntheticShapes` draws small pictures of coloured shapes with captions such as
``"a photo of a small red circle on the left"`` with PIL from a seed, so it needs no
download, and every item is reproducible on its own (item ``i`` depends only on the seed,
the split and ``i``). Its class names (``"red circle"``, …) and prompt templates let
zero-shot evaluation build its prompts.

**Held-out combinations.** The CLIP paper's claim is transfer to concepts the model was
not trained on. So the training split never draws the six colour–shape combinations of
:data:`HELD_OUT` (one per colour, every shape at least once): no training picture shows a
blue circle and no training caption says "blue circle", although blue things and circles
are everywhere. The test split draws all 30 combinations, and a zero-shot score on its
held-out ones measures composition: naming a picture the model has seen neither the
picture nor the words of.

**Shifted test sets.** ``shift=`` draws the test pictures differently from anything in
training, in the spirit of the paper's distribution-shift study (section 3.3):
``"outline"`` draws each shape as an outline only, ``"noise"`` adds heavy pixel noise, and
``"background"`` puts it on a bright, striped background (training backgrounds are dark
and plain), ``"scale"`` draws it larger than any training shape (and nearer the middle, to
keep it in the picture), and ``"faded"`` washes the whole picture out towards grey (a
third of the contrast: the colours are still there, but dull).
"""
import math
from pathlib import Path

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

#: Size word -> radius of the shape as a fraction of the image side. A small shape is 10
#: pixels across in a 32-pixel picture: at 8 (radius 0.12) a plus sign and a diamond
#: differed by a few pixels, and nearly all of a tiny CLIP's mistakes were such shapes,
#: which tested eyesight rather than what the set is for (pairing words with pictures).
SIZES = {"small": 0.16, "large": 0.25}

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

#: Colour–shape combinations the training split never draws, pictured or named; one per
#: colour, every shape at least once. Fixed, so that every run is scored on the same ones.
HELD_OUT = (
    ("red", "triangle"),
    ("green", "diamond"),
    ("blue", "circle"),
    ("yellow", "cross"),
    ("purple", "square"),
    ("white", "circle"),
)

#: How a caption may phrase "{colour} {shape}" (``captions="varied"``). Several phrasings of
#: the same pair, in two word orders, keep the text tower from treating "red circle" as one
#: opaque token pair and push it to encode the colour and the shape separately, which is
#: what lets it name a held-out pair.
NOUN_PHRASES = (
    "{colour} {shape}",
    "{shape} that is {colour}",
    "{colour} coloured {shape}",
    "{shape} in {colour}",
)

#: How a caption starts (``captions="varied"``); "a photo of a" is always one of them.
OPENINGS = ("a photo of a", "a picture of a", "a drawing of a", "there is a")

#: Distribution shifts of the test pictures (``shift=``), each unlike every training picture.
SHIFTS = ("outline", "noise", "background", "scale", "faded")

#: ``shift="scale"``: the radius of every shape (a "large" one is 0.25), as for SIZES.
SCALED_RADIUS = 0.36

#: ``shift="faded"``: the fraction of each pixel's distance from mid-grey that is kept.
FADED_CONTRAST = 0.35

#: Each split is its own stream of random items (the splits share the attributes, not images).
SPLITS = ("train", "test")

# Shapes are drawn this many times larger and then downsampled, which anti-aliases the edges.
_SUPERSAMPLE = 4


class SyntheticShapes:
    """Pictures of one coloured shape on a noisy background, with a caption.

    Each item draws a colour–shape combination, a size and a position at random and
    renders, e.g., a small red circle on the left of a ``image_size x image_size`` RGB
    picture. Its caption always names the colour and the shape; it also names the size and
    the position, each with probability ``mention_probability``, so the text encoder sees
    both long captions ("a photo of a small red circle on the left.") and short ones ("a
    photo of a red circle."), which are exactly the zero-shot prompts.

    Args:
        length: number of items.
        image_size: side of the square images in pixels.
        split: ``"train"`` or ``"test"``; the splits are independent random streams.
        seed: the master seed. Item ``i`` is drawn from a generator seeded with
            ``(seed, split, i)``, so it is the same whatever order items are read in.
        colours, shapes: subsets of :data:`COLOURS` and :data:`SHAPES` to draw from.
        mention_probability: chance that a caption names the size, and (independently)
            the position.
        held_out: ``(colour, shape)`` pairs never drawn. Default: :data:`HELD_OUT` for the
            training split, none for the test split.
        captions: ``"plain"`` ("a photo of a [size] red circle [position].") or
            ``"varied"`` (also "there is a circle that is red.", ...: :data:`OPENINGS` x
            :data:`NOUN_PHRASES`, drawn uniformly).
        shift: None, or one of :data:`SHIFTS` to draw the pictures unlike the training ones.

    ``dataset[i]`` is ``(PIL.Image, caption)``. For zero-shot evaluation the classes are
    every colour–shape combination, held-out ones included: :attr:`classnames` lists them
    ("red circle", …), :meth:`label` gives an item's class index, :attr:`templates` the
    prompts and :meth:`held_out_classes` the indices of the held-out classes.
    """

    templates = TEMPLATES

    def __init__(self, length, image_size=32, *, split="train", seed=0,
                 colours=tuple(COLOURS), shapes=SHAPES, mention_probability=0.5,
                 held_out=None, captions="plain", shift=None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        unknown = [c for c in colours if c not in COLOURS] + [s for s in shapes if s not in SHAPES]
        if unknown:
            raise ValueError(f"unknown colours/shapes {unknown}; known colours "
                             f"{list(COLOURS)}, shapes {list(SHAPES)}")
        if captions not in ("plain", "varied"):
            raise ValueError(f"captions must be 'plain' or 'varied', got {captions!r}")
        if shift is not None and shift not in SHIFTS:
            raise ValueError(f"shift must be None or one of {SHIFTS}, got {shift!r}")
        self.length = int(length)
        self.image_size = int(image_size)
        self.split = split
        self.seed = int(seed)
        self.colours = tuple(colours)
        self.shapes = tuple(shapes)
        self.mention_probability = float(mention_probability)
        self.held_out = tuple(map(tuple, HELD_OUT if held_out is None and split == "train"
                                  else held_out or ()))
        self.captions = captions
        self.shift = shift
        #: Zero-shot classes: every colour–shape pair, colour-major ("red circle", "red
        #: square", …), held-out pairs included.
        self.classnames = [f"{c} {s}" for c in self.colours for s in self.shapes]
        #: The pairs items are drawn from: all but the held-out ones.
        self.combinations = [(c, s) for c in self.colours for s in self.shapes
                             if (c, s) not in self.held_out]
        if not self.combinations:
            raise ValueError("every colour-shape combination is held out: nothing to draw")

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

    def held_out_classes(self, held_out=HELD_OUT):
        """Indices into :attr:`classnames` of the ``held_out`` pairs (by default the ones
        the training split never draws), ``int64 [H]``."""
        return np.array([self.classnames.index(f"{c} {s}") for c, s in held_out
                         if c in self.colours and s in self.shapes], dtype=np.int64)

    def save_class_folders(self, root):
        """Write every picture as a PNG into one sub-folder per class (``red_circle/0.png``,
        all 30 folders even if some class drew no picture), the layout ``python -m
        miniclip.evaluation classify`` reads, and the prompt templates, one per line, as
        ``templates.txt`` beside them (its ``--templates``); returns ``root``."""
        root = Path(root)
        for name in self.classnames:
            (root / name.replace(" ", "_")).mkdir(parents=True, exist_ok=True)
        for index in range(len(self)):
            image, _ = self[index]
            image.save(root / self.classnames[self.label(index)].replace(" ", "_")
                       / f"{index}.png")
        (root / "templates.txt").write_text("\n".join(self.templates) + "\n", encoding="utf-8")
        return root

    def _sample(self, index):
        """Draw item ``index``'s attributes and caption; return them with the generator,
        which then goes on to draw the rendering details (jitter, background, noise)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index])
        colour, shape = self.combinations[rng.integers(len(self.combinations))]
        attributes = {
            "shape": shape,
            "colour": colour,
            "size": list(SIZES)[rng.integers(len(SIZES))],
            "position": list(POSITIONS)[rng.integers(len(POSITIONS))],
        }
        opening, noun = OPENINGS[0], NOUN_PHRASES[0]
        if self.captions == "varied":
            opening = OPENINGS[rng.integers(len(OPENINGS))]
            noun = NOUN_PHRASES[rng.integers(len(NOUN_PHRASES))]
        words = [opening]
        if rng.random() < self.mention_probability:
            words.append(attributes["size"])
        words.append(noun.format(colour=colour, shape=shape))
        if rng.random() < self.mention_probability:
            words.append(POSITIONS[attributes["position"]][1])
        return attributes, " ".join(words) + ".", rng

    def _render(self, attributes, rng):
        """Draw the picture: the shape on a dark, slightly tinted background, drawn
        ``_SUPERSAMPLE`` times larger and box-filtered down (smooth edges), plus pixel noise.
        ``shift`` changes one thing: an outline instead of a filled shape, a bright
        striped background, heavy noise, a larger shape, or faded colours."""
        side = self.image_size * _SUPERSAMPLE
        # A dark grey (20..90) with a small random tint per channel, so that the background
        # never looks like one of the shape colours.
        background = tuple(int(v) for v in rng.integers(20, 90) + rng.integers(-10, 11, size=3))
        canvas = (_striped_canvas(side, rng) if self.shift == "background"
                  else Image.new("RGB", (side, side), background))
        (cx, cy), _ = POSITIONS[attributes["position"]]
        centre = np.array([cx, cy]) + rng.uniform(-0.06, 0.06, size=2)
        radius = SIZES[attributes["size"]] * rng.uniform(0.9, 1.1)
        if self.shift == "scale":
            centre, radius = (centre + 0.5) / 2, SCALED_RADIUS
        (cx, cy), radius = centre * side, radius * side
        jitter = rng.integers(-20, 21, size=3)
        fill = np.clip(np.array(COLOURS[attributes["colour"]]) + jitter, 0, 255)
        fill = tuple(int(v) for v in fill)
        # An outline a 32nd of the picture wide: one pixel of a 32-pixel picture.
        style = ({"outline": fill, "width": max(side // 32, 1)} if self.shift == "outline"
                 else {"fill": fill})
        _DRAW[attributes["shape"]](ImageDraw.Draw(canvas), cx, cy, radius, style)
        small = canvas.resize((self.image_size, self.image_size), Image.BOX)
        # Mild pixel noise, so that no two pictures of "a small red circle" are identical;
        # the "noise" shift makes it six times stronger.
        amplitude = 48 if self.shift == "noise" else 8
        noise = rng.integers(-amplitude, amplitude + 1, size=(self.image_size, self.image_size, 3))
        pixels = np.clip(np.asarray(small, dtype=np.int16) + noise, 0, 255)
        if self.shift == "faded":
            pixels = np.round(128 + FADED_CONTRAST * (pixels - 128))
        return Image.fromarray(pixels.astype(np.uint8))  # [H, W, 3] uint8 is RGB


def _striped_canvas(side, rng):
    """A ``side x side`` canvas of diagonal stripes of two light greys (110..220, at least
    40 apart), unlike any training background (dark and plain)."""
    dark = int(rng.integers(110, 150))
    light = dark + int(rng.integers(40, 71))
    canvas = Image.new("RGB", (side, side), (dark,) * 3)
    draw, width = ImageDraw.Draw(canvas), side // 8
    for start in range(-side - int(rng.integers(2 * width)), side, 2 * width):
        draw.polygon([(start, 0), (start + width, 0), (start + width + side, side),
                      (start + side, side)], fill=(light,) * 3)
    return canvas


# Each shape drawer takes the centre, the radius r of the circle the shape fits in, and
# ImageDraw's style keywords: {"fill": colour} or {"outline": colour, "width": pixels}.
def _draw_circle(draw, cx, cy, r, style):
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], **style)


def _draw_square(draw, cx, cy, r, style):
    h = r * 0.85  # a slightly smaller half-side gives the square about a circle's area
    draw.rectangle([cx - h, cy - h, cx + h, cy + h], **style)


def _draw_triangle(draw, cx, cy, r, style):
    # Equilateral, pointing up, inscribed in the circle of radius r.
    corners = [(cx + r * math.cos(a), cy - r * math.sin(a))
               for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)]
    draw.polygon(corners, **style)


def _draw_cross(draw, cx, cy, r, style):
    # Half-width of each bar of the plus sign. Thin bars keep it unlike the diamond of the
    # same radius: at 0.35 r it filled most of that diamond, and the two were the commonest
    # confusion of a tiny CLIP (and the reason for most of its misnamed held-out pairs).
    w = r * 0.25
    # The plus sign's 12 corners, clockwise from the top bar's left edge: one polygon, so
    # that its outline is the outline of the whole sign.
    corners = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w),
               (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
    draw.polygon([(cx + x, cy + y) for x, y in corners], **style)


def _draw_diamond(draw, cx, cy, r, style):
    draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], **style)


_DRAW = {name: globals()[f"_draw_{name}"] for name in SHAPES}

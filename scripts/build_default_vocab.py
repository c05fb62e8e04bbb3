"""Build the BPE vocabulary that miniclip ships (miniclip/tokenizer/assets/miniclip_bpe_4096.txt.gz).

The training text is made on the spot, with nothing to download:

* captions of the kind the tiny model is trained on ("a photo of a small red
  circle", "three blue squares on a white background"), from a seeded generator;
* about 1 MB of English prose from the Python standard library: the language
  reference texts behind ``help()`` (``pydoc_data.topics``), the licence, and the
  docstrings of the standard modules.

Run from the repository root:

    python scripts/build_default_vocab.py

The standard library's text changes a little between Python versions, so a
different version gives slightly different merges; the shipped file was built
with Python 3.11. The same Python always gives the same file, byte for byte.
"""

import argparse
import ast
import os
import random
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from miniclip.tokenizer import BPETokenizer  # noqa: E402  (needs the path above)
from miniclip.tokenizer.pretrained import DEFAULT_VOCAB_PATH  # noqa: E402

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "brown",
           "black", "white", "gray", "cyan"]
# Each shape with its plural.
SHAPES = {"circle": "circles", "square": "squares", "triangle": "triangles",
          "rectangle": "rectangles", "star": "stars", "ellipse": "ellipses",
          "diamond": "diamonds", "hexagon": "hexagons", "pentagon": "pentagons",
          "cross": "crosses", "heart": "hearts", "ring": "rings", "line": "lines"}
SIZES = ["small", "large", "big", "tiny", "huge", "medium"]
PLACES = ["on the left", "on the right", "at the top", "at the bottom", "in the center",
          "in the middle", "in the top left corner", "in the top right corner",
          "in the bottom left corner", "in the bottom right corner", "near the edge"]
RELATIONS = ["above", "below", "next to", "to the left of", "to the right of", "inside", "behind"]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
BACKGROUNDS = ["on a white background", "on a black background", "on a gray background",
               "on a plain background"]
OPENINGS = ["a photo of", "a picture of", "an image of", "a drawing of", "a rendering of",
            "a close-up photo of", "a blurry photo of", "a simple sketch of", "a cartoon of"]


def _with_article(phrase):
    """Put "a" or "an" in front of ``phrase``."""
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _caption(rng):
    """One random caption describing coloured shapes."""
    colour, other_colour = rng.sample(COLOURS, 2)
    shape, other_shape = rng.sample(list(SHAPES), 2)
    size = rng.choice(SIZES)
    count = rng.randrange(2, 11)
    plural = SHAPES[shape]
    templates = [
        f"{rng.choice(OPENINGS)} {_with_article(f'{size} {colour} {shape}')}",
        f"{_with_article(f'{colour} {shape}')} {rng.choice(PLACES)}",
        f"{NUMBERS[count - 1]} {colour} {plural} {rng.choice(BACKGROUNDS)}",
        f"{count} {size} {plural}",
        f"{_with_article(f'{colour} {shape}')} {rng.choice(RELATIONS)} {_with_article(f'{other_colour} {other_shape}')}",
        f"there are {NUMBERS[count - 1]} {plural} and {_with_article(other_shape)} in the picture",
        f"the {shape} is {colour} and the {other_shape} is {other_colour}.",
        f"{rng.choice(OPENINGS)} {NUMBERS[count - 1]} {plural}, {rng.choice(PLACES)}",
    ]
    caption = rng.choice(templates)
    return caption[0].upper() + caption[1:] if rng.random() < 0.3 else caption


def shape_captions(count, seed=0):
    """``count`` captions from a generator seeded with ``seed``."""
    rng = random.Random(seed)
    return [_caption(rng) for _ in range(count)]


def _stdlib_docstrings():
    """Yield the docstrings of the standard library's modules, classes and functions.

    Folders and files are visited in sorted order so the text is the same on every
    run; test suites and installed third-party packages are skipped.
    """
    skipped = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
    for folder, subfolders, files in os.walk(sysconfig.get_paths()["stdlib"]):
        subfolders[:] = sorted(name for name in subfolders if name not in skipped)
        for name in sorted(files):
            if name.endswith(".py"):
                yield from _docstrings(Path(folder, name))


def _docstrings(path):
    """Yield the docstrings of the module, classes and functions in the file ``path``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return  # a few files are deliberately broken or not UTF-8
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node)
            if docstring:
                yield docstring


def english_text(max_bytes=1_000_000):
    """About ``max_bytes`` bytes of English from this Python's standard library, as a list of texts."""
    from pydoc_data.topics import topics  # the text that help("if") etc. prints

    licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    sources = [topics[name] for name in sorted(topics)]
    if licence.is_file():
        sources.append(licence.read_text(encoding="utf-8"))
    texts, size = [], 0
    for text in [*sources, *_stdlib_docstrings()]:
        if size >= max_bytes:
            break
        texts.append(text)
        size += len(text.encode("utf-8"))
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--captions", type=int, default=10_000, help="number of shape captions")
    parser.add_argument("--english-bytes", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=DEFAULT_VOCAB_PATH)
    args = parser.parse_args()

    texts = shape_captions(args.captions) + english_text(args.english_bytes)
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    start = time.perf_counter()
    tokenizer = BPETokenizer.train(texts, args.vocab_size)
    seconds = time.perf_counter() - start
    tokenizer.save(args.output)
    print(f"trained {len(tokenizer)} ids on {len(texts)} texts ({megabytes:.2f} MB) "
          f"in {seconds:.1f} s -> {args.output}")


if __name__ == "__main__":
    main()

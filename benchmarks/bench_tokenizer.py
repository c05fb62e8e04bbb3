"""Benchmark the tokenizer: BPE training time, and encoding speed against OpenAI's.

    python benchmarks/bench_tokenizer.py

1. Trains a 5,000-id vocabulary on about 1 MB of English (the standard-library
   text that scripts/build_default_vocab.py uses) and prints the time.
2. Encodes the same lines with miniclip's tokenizer and, when the ``clip`` package
   is installed, with OpenAI's pure-Python ``SimpleTokenizer`` (loaded from its
   file, without PyTorch), both starting with an empty word cache.

Everything runs on one core.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # miniclip, and the corpus helpers

from build_default_vocab import english_text, shape_captions  # noqa: E402
from make_tokenizer_fixture import load_reference  # noqa: E402

from miniclip.tokenizer import BPETokenizer, default_tokenizer, load_tokenizer  # noqa: E402
from miniclip.tokenizer.pretrained import find_openai_merges  # noqa: E402


def seconds(function, *args):
    """Wall-clock seconds of one call to ``function(*args)``, and its result."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def encode_all(encode, lines):
    """Encode every line; return the number of ids."""
    return sum(len(encode(line)) for line in lines)


def main():
    texts = english_text(1_000_000)
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    train_time, tokenizer = seconds(BPETokenizer.train, texts, 5000)
    print(f"train: {len(tokenizer)} ids from {megabytes:.2f} MB of English in {train_time:.2f} s")

    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    captions = shape_captions(10_000)
    try:
        find_openai_merges()
        have_openai = True
    except FileNotFoundError:
        have_openai = False
        print("OpenAI's clip package is not installed: timing miniclip only")

    for name, batch in (("English lines", lines), ("shape captions", captions)):
        print(f"encode {len(batch)} {name}:")
        candidates = {"miniclip, default vocabulary": BPETokenizer(default_tokenizer().merges)}
        if have_openai:
            candidates["miniclip, OpenAI's vocabulary"] = load_tokenizer()
            candidates["OpenAI SimpleTokenizer (reference)"] = load_reference()[0]
        for label, candidate in candidates.items():
            elapsed, count = seconds(encode_all, candidate.encode, batch)
            print(f"  {label:36s} {elapsed:6.2f} s  {len(batch) / elapsed:9.0f} texts/s  {count} ids")


if __name__ == "__main__":
    main()

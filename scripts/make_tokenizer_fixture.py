"""Record OpenAI's tokenizer on test strings, and check miniclip against it.

Needs OpenAI's ``simple_tokenizer.py`` and merges file, e.g. from
``pip install --no-deps clip-anytorch``. The module is loaded from its file, so
PyTorch is not needed.

    python scripts/make_tokenizer_fixture.py            # writes the fixture
    python scripts/make_tokenizer_fixture.py --check 5000

The fixture (tests/fixtures/tokenizer_reference_ids.json) holds, for each string,
the reference's cleaned text, pre-tokens, ids and decoded ids, so that the test
suite can compare against the reference without depending on it. A second fixture
(tests/fixtures/openai_merges_excerpt.json) keeps the few hundred of OpenAI's merges
that encoding those strings consults, with their ranks, so the suite can run the
exact BPE without OpenAI's file. ``--check N``
also compares encode and decode with miniclip's ``load_tokenizer()`` on N random
strings and N random id sequences, and prints any disagreement.
"""

import argparse
import importlib.util
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from miniclip.tokenizer import clean_text, load_tokenizer, pretokenize  # noqa: E402
from miniclip.tokenizer.bpe import merge_pair  # noqa: E402
from miniclip.tokenizer.pretokenizer import word_symbols  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "tokenizer_reference_ids.json"
EXCERPT = ROOT / "tests" / "fixtures" / "openai_merges_excerpt.json"

# Hand-picked strings, one or more per rule of the clean-up, pre-tokeniser and BPE.
STRINGS = [
    # The test vectors of the spec.
    "a diagram", "a dog", "a cat", "Hello, World!", "don't stop", "It's 2021!!",
    "&amp;amp; &lt;b&gt;", "naïve café", "unbelievably tokenization", "a <|STARTOFTEXT|> b",
    # Empty and blank.
    "", " ", "\t\n\r\u00a0\u2003\u3000", "!",
    # Case and white space.
    "A  PHOTO\tOF\nA   DOG", "  leading and trailing  ", "ÉCOLE ΣΟΦΙΑ ДОМ",
    # Contractions, also glued to following letters and upper-cased.
    "I'm we're they've you'll he'd it's can't", "'sup 'tis 'LL 'D", "rock 'n' roll",
    "’curly’ ‘quotes’ “double”",
    # Numbers: one digit per token, any script.
    "3.14159 1,000,000 2nd 42nd", "٣ ४ 五 ½ ² Ⅻ", "0x1F 1e-9 v1.2.3",
    # Punctuation runs and symbols.
    "wait... what?!?! (yes) [no] {maybe}", "a--b -- c---d", "#hashtag @user $5 100% a&b",
    "email@example.com https://example.com/path?q=1&r=2", "<html><body>hi</body></html>",
    "C++ and C# and F#", "→ ← ↑ ↓ ∀x ∈ ℝ: x² ≥ 0",
    # HTML entities, ftfy and html.unescape.
    "&quot;quoted&quot; &#39;single&#39; &#x27;hex&#x27;", "caf&eacute; &copy; 2024",
    "&amp;lt;b&amp;gt;", "&nbsp;non&nbsp;breaking", "<b>bold</b> &amp; <i>it</i>",
    "line one\n<tag> &amp; after", "&notanentity; & &#xZZ;",
    # Mojibake and other damaged Unicode that ftfy repairs.
    "cafÃ©", "â€œmojibakeâ€\x9d", "Ãºnico", "ﬁne ﬂower ﬀ", "ＦＵＬＬ　ＷＩＤＴＨ １２３",
    "e\u0301 vs é", "\x00nul\x07bell\x1b[31mred\x1b[0m", "a\u200bb\u200cc\u200dd", "\ufeffbom",
    # Scripts.
    "日本語のテキスト", "中文文本测试", "한국어 텍스트", "ภาษาไทย", "עברית", "العربية",
    "हिन्दी", "Ελληνικά", "Русский текст", "Tiếng Việt", "ქართული",
    # Emoji, with modifiers and joiners.
    "😀 😂 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️", "I ❤ NY", "🐱🐶🐭",
    # Quirks of the reference's IGNORECASE pattern.
    "'ſup ſtar", "<|ſtartoftext|>", "a\u0345b \u0345", "K Kelvin",
    # The special tokens, literal, in any case, glued to other text.
    "<|startoftext|>", "<|endoftext|>", "x<|endoftext|>y", "<|EndOfText|><|startoftext|>",
    "<|startoftext|", "<|endoftext |>",
    # Marker look-alikes.
    "</w>", "a</w>b", "w</w>w",
    # Long text, for truncation.
    "cat " * 80,
    "a photo of a large red circle next to a small blue square on a white background, "
    "with three green triangles in the top left corner and a yellow star at the bottom",
]


def load_reference():
    """OpenAI's ``SimpleTokenizer`` and module, loaded from the installed ``clip`` package's file."""
    spec = importlib.util.find_spec("clip")
    if spec is None:
        raise SystemExit("needs OpenAI's clip package: pip install --no-deps clip-anytorch")
    path = Path(spec.submodule_search_locations[0]) / "simple_tokenizer.py"
    module_spec = importlib.util.spec_from_file_location("reference_simple_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SimpleTokenizer(), module


def record(strings):
    """The reference's clean-up, pre-tokens, ids and decoding for each string."""
    reference, module = load_reference()
    cases = []
    for text in strings:
        cleaned = module.whitespace_clean(module.basic_clean(text)).lower()
        ids = reference.encode(text)
        cases.append({
            "text": text,
            "cleaned": cleaned,
            "pretokens": reference.pat.findall(cleaned),
            "ids": ids,
            "decoded": reference.decode(ids),
        })
    return cases


def random_text(rng, words):
    """A random string mixing scripts, symbols, emoji, entities, specials and English words."""
    blocks = [(0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x24F), (0x300, 0x36F), (0x370, 0x3FF),
              (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F), (0x2000, 0x206F),
              (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAC7F), (0xFB00, 0xFB06),
              (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x0, 0x1F), (0x80, 0x9F),
              (0xD800, 0xDFFF), (0x0, 0x10FFFF)]
    pieces = ["&amp;", "&lt;", "&gt;", "&#39;", "&eacute;", "&amp;amp;", "&nbsp;", "<|startoftext|>",
              "<|endoftext|>", "<|EndOfText|>", "'s", "'LL", "cafÃ©", "â€™", "</w>", " ", "\n", "  "]
    parts = []
    for _ in range(rng.randrange(1, 12)):
        kind = rng.random()
        if kind < 0.4:
            parts.append(rng.choice(words))
        elif kind < 0.55:
            parts.append(rng.choice(pieces))
        else:
            low, high = rng.choice(blocks)
            parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randrange(1, 6))))
        parts.append(rng.choice(["", " ", " ", "  ", "\t", "-", ", "]))
    return "".join(parts)


def check(count, seed=0):
    """Compare miniclip with the reference on ``count`` random strings and id sequences."""
    reference, _ = load_reference()
    ours = load_tokenizer()
    rng = random.Random(seed)
    words = [case["text"] for case in record(STRINGS)] + "the a photo of dog cat running quickly".split()
    failures = 0
    for _ in range(count):
        text = random_text(rng, words)
        ids = reference.encode(text)
        if ours.encode(text) != ids or ours.decode(ids) != reference.decode(ids):
            failures += 1
            print("encode/decode differ for", ascii(text))
        random_ids = [rng.randrange(len(ours)) for _ in range(rng.randrange(0, 20))]
        if ours.decode(random_ids) != reference.decode(random_ids):
            failures += 1
            print("decode differs for", random_ids)
    print(f"{count} random strings and {count} random id sequences: {failures} differences")
    return failures


def merges_excerpt(strings):
    """The part of OpenAI's merge list that encoding ``strings`` can ever consult.

    BPE looks up the rank of every neighbouring pair at every step. Keeping each pair
    that is an OpenAI merge and shows up at some step, with its rank, gives a small
    merge list that encodes these strings exactly as the full one does: the same
    pairs compete, in the same order. Ids are recovered as 512 + rank.
    """
    tokenizer = load_tokenizer()
    ranks = {pair: rank for rank, pair in enumerate(tokenizer.merges)}
    consulted = set()
    for text in strings:
        for word in pretokenize(clean_text(text)):
            symbols = word_symbols(word)
            while len(symbols) > 1:
                known = [pair for pair in zip(symbols, symbols[1:]) if pair in ranks]
                if not known:
                    break
                consulted.update(known)
                symbols = merge_pair(symbols, min(known, key=ranks.get))
    return sorted([first, second, ranks[(first, second)]] for first, second in consulted)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also compare with miniclip on N random strings")
    args = parser.parse_args()
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8") as file:
        json.dump(record(STRINGS), file, ensure_ascii=True, indent=1)
        file.write("\n")
    print(f"wrote {len(STRINGS)} cases to {FIXTURE}")
    excerpt = sorted(merges_excerpt(STRINGS), key=lambda merge: merge[2])
    with open(EXCERPT, "w", encoding="utf-8") as file:
        json.dump({"merges": excerpt}, file, ensure_ascii=True)
        file.write("\n")
    print(f"wrote {len(excerpt)} of OpenAI's merges (with their ranks) to {EXCERPT}")
    if args.check and check(args.check):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

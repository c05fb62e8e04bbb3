"""Tests for miniclip.tokenizer: clean-up, BPE, training, batches, files, and parity with OpenAI.

Parity is checked against a fixture of the reference tokenizer's outputs
(tests/fixtures/tokenizer_reference_ids.json, made by scripts/make_tokenizer_fixture.py).
OpenAI's merges file is not part of miniclip, so the suite runs the exact BPE on an
excerpt of it: the merges that encoding the fixture's strings consults, with their
ranks (tests/fixtures/openai_merges_excerpt.json). Tests that need the whole file are
skipped when it cannot be found.
"""

import gzip
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

import miniclip.tokenizer.bpe_tokenizer as bpe_tokenizer_module
from miniclip.tokenizer import (
    BPETokenizer,
    clean_text,
    default_tokenizer,
    load_tokenizer,
    pretokenize,
    tokenize,
)
from miniclip.tokenizer.bpe import apply_merges, merge_pair
from miniclip.tokenizer.pretokenizer import (
    BYTE_TO_CHAR,
    END_OF_TEXT,
    START_OF_TEXT,
    byte_tokens,
    word_symbols,
)
from miniclip.tokenizer.pretrained import find_openai_merges

FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer_reference_ids.json"
REFERENCE_CASES = json.loads(FIXTURE.read_text(encoding="utf-8"))
EXCERPT = Path(__file__).parent / "fixtures" / "openai_merges_excerpt.json"
OPENAI_SOT, OPENAI_EOT = 49406, 49407

# The toy corpus, worked by hand. Words and counts: low x3, lowest x1, newest x2.
# Starting symbols: l o w</w> | l o w e s t</w> | n e w e s t</w>.
#  1. (l, o)          count 4, the most frequent pair.
#  2. (e, s)          count 3, tied with (lo, w</w>), (s, t</w>), (w, e): "e" sorts first.
#  3. (es, t</w>)     count 3, tied with (lo, w</w>), (w, es).
#  4. (lo, w</w>)     count 3, tied with (w, est</w>): "lo" < "w".
#  5. (w, est</w>)    count 3.
#  6. (e, west</w>)   count 2, tied with (n, e): "e" < "n".
#  7. (n, ewest</w>)  count 2.
#  8. (lo, west</w>)  count 1. Then every word is one symbol and no pair is left.
TOY_CORPUS = ["low low low", "lowest newest", "NEWEST"]
TOY_MERGES = [("l", "o"), ("e", "s"), ("es", "t</w>"), ("lo", "w</w>"), ("w", "est</w>"),
              ("e", "west</w>"), ("n", "ewest</w>"), ("lo", "west</w>")]


@pytest.fixture(scope="module")
def toy():
    return BPETokenizer.train(TOY_CORPUS, 512 + len(TOY_MERGES) + 2)


@pytest.fixture(scope="module")
def openai_tokenizer():
    try:
        return load_tokenizer()
    except FileNotFoundError:
        pytest.skip("OpenAI's merges file is not installed (pip install --no-deps clip-anytorch)")


class OpenAIExcerpt:
    """OpenAI's tokenizer restricted to an excerpt of its merges, speaking OpenAI's ids.

    The excerpt keeps each merge's rank, so a ``BPETokenizer`` built from it makes the
    same merges in the same order; only the ids differ (the excerpt's merge k has id
    512 + k instead of 512 + rank), and are translated both ways here.
    """

    def __init__(self, path):
        merges = json.loads(path.read_text(encoding="utf-8"))["merges"]
        self.tokenizer = BPETokenizer([(first, second) for first, second, _ in merges])
        self.to_openai = list(range(512)) + [512 + rank for _, _, rank in merges]
        self.to_openai += [OPENAI_SOT, OPENAI_EOT]
        self.from_openai = {openai: own for own, openai in enumerate(self.to_openai)}

    def encode(self, text):
        return [self.to_openai[i] for i in self.tokenizer.encode(text)]

    def decode(self, ids):
        return self.tokenizer.decode([self.from_openai[i] for i in ids])


@pytest.fixture(scope="module")
def openai_excerpt():
    return OpenAIExcerpt(EXCERPT)


def without_spaces(text):
    """``text`` without white space, and without U+0345, which the reference's
    pre-tokenisation pattern drops (see miniclip/tokenizer/pretokenizer.py)."""
    return regex.sub(r"[\s\u0345]", "", text)


# ----------------------------------------------------------------------------- text

def test_clean_text_unescapes_collapses_white_space_and_lower_cases():
    assert clean_text("  A  PHOTO\tof\n\na DOG  ") == "a photo of a dog"
    assert clean_text("&amp;amp; &lt;b&gt;") == "& <b>"
    assert clean_text("’curly’ ﬁne ＷＩＤＥ") == "'curly' fine wide"


def test_pretokenize_splits_digits_contractions_and_punctuation():
    assert pretokenize("it's 2021!! don't") == ["it", "'s", "2", "0", "2", "1", "!!", "don", "'t"]
    assert pretokenize("a <|endoftext|> b<|startoftext|>") == ["a", END_OF_TEXT, "b", START_OF_TEXT]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=lambda case: ascii(case["text"])[:40])
def test_clean_up_and_pretokens_match_the_reference(case):
    assert clean_text(case["text"]) == case["cleaned"]
    assert pretokenize(case["cleaned"]) == case["pretokens"]


def test_every_byte_gets_a_distinct_printable_character():
    assert len(set(BYTE_TO_CHAR)) == 256
    assert all(char.isprintable() and not char.isspace() for char in BYTE_TO_CHAR)
    assert BYTE_TO_CHAR[ord("a")] == "a" and BYTE_TO_CHAR[ord(" ")] == "Ġ"


def test_byte_tokens_follow_clips_order():
    tokens = byte_tokens()
    assert len(tokens) == 512
    assert tokens[0] == "!" and tokens[187] == "ÿ" and tokens[188] == BYTE_TO_CHAR[0]
    assert tokens[256] == "!</w>" and tokens[511] == tokens[255] + "</w>"


def test_word_symbols_mark_the_end_of_the_word():
    assert word_symbols("cat") == ["c", "a", "t</w>"]
    assert word_symbols("é") == ["Ã", "©</w>"]


# ----------------------------------------------------------------------------- BPE

def test_merge_pair_merges_left_to_right_without_overlap():
    assert merge_pair(["a", "a", "a"], ("a", "a")) == ["aa", "a"]
    assert merge_pair(["a", "b", "a", "b"], ("a", "b")) == ["ab", "ab"]
    assert merge_pair(["a", "b"], ("b", "a")) == ["a", "b"]


def test_apply_merges_takes_the_earliest_learned_merge_first():
    ranks = {("b", "c"): 0, ("a", "b"): 1, ("a", "bc"): 2}
    assert apply_merges(["a", "b", "c"], ranks) == ["abc"]
    assert apply_merges(["a", "b", "d"], ranks) == ["ab", "d"]
    assert apply_merges(["x"], ranks) == ["x"]


def test_training_learns_the_hand_worked_merges_in_order(toy):
    assert toy.merges == TOY_MERGES
    assert toy.vocab[512:520] == ["lo", "es", "est</w>", "low</w>", "west</w>",
                                  "ewest</w>", "newest</w>", "lowest</w>"]


def test_training_stops_at_the_requested_size():
    tokenizer = BPETokenizer.train(TOY_CORPUS, 512 + 3 + 2)
    assert tokenizer.merges == TOY_MERGES[:3] and len(tokenizer) == 517
    # "newest" after three merges: n e w est</w>.
    assert [tokenizer.vocab[i] for i in tokenizer.encode("newest")] == ["n", "e", "w", "est</w>"]


def test_training_warns_when_the_text_runs_out_of_pairs():
    with pytest.warns(UserWarning, match="only allow 8 merges"):
        tokenizer = BPETokenizer.train(TOY_CORPUS, 1000)
    assert tokenizer.merges == TOY_MERGES


def test_training_ignores_special_tokens_and_rejects_tiny_vocabularies():
    with_specials = BPETokenizer.train([t + " <|endoftext|>" for t in TOY_CORPUS], 522)
    assert with_specials.merges == TOY_MERGES
    with pytest.raises(ValueError, match="at least 514"):
        BPETokenizer.train(TOY_CORPUS, 513)


def test_encoding_replays_training(toy):
    # With every merge learned, each training word is a single token.
    assert [toy.vocab[i] for i in toy.encode("lowest newest low")] == ["lowest</w>", "newest</w>", "low</w>"]


def naive_merges(texts, num_merges):
    """Slow but obvious BPE training: recount every pair before each merge."""
    word_counts = Counter(word for text in texts for word in pretokenize(clean_text(text)))
    words = [(word_symbols(word), count) for word, count in word_counts.items()]
    merges = []
    while len(merges) < num_merges:
        pair_counts = Counter()
        for symbols, count in words:
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        merges.append(best)
        words = [(merge_pair(symbols, best), count) for symbols, count in words]
    return merges


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(alphabet="abcaab é!1", max_size=25), max_size=8),
       num_merges=st.integers(0, 30))
def test_incremental_training_equals_recounting_from_scratch(texts, num_merges):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small texts often run out of pairs
        tokenizer = BPETokenizer.train(texts, 514 + num_merges)
    assert tokenizer.merges == naive_merges(texts, num_merges)


# ----------------------------------------------------------------------------- encode / decode

def test_vocabulary_layout(toy):
    assert len(toy) == toy.vocab_size == 522
    assert (toy.sot_token_id, toy.eot_token_id) == (520, 521)
    assert toy.vocab[-2:] == [START_OF_TEXT, END_OF_TEXT]


def test_special_tokens_in_text_become_special_ids(toy):
    low = toy.encode("low")[0]
    assert toy.encode("<|startoftext|>") == [toy.sot_token_id]
    assert toy.encode("low<|EndOfText|>") == [low, toy.eot_token_id]  # in any case, glued or not
    assert toy.decode([toy.sot_token_id, low, toy.eot_token_id]) == "<|startoftext|>low <|endoftext|>"


def test_decode_reverses_encode(toy):
    ids = toy.encode("Lowest  newest, naïve 😀!")
    assert toy.decode(ids) == "lowest newest , naïve 😀! "  # "😀!" is one pre-token: neither letter nor digit


def test_decode_replaces_broken_utf8():
    tokenizer = default_tokenizer()
    first_byte_of_e_acute = tokenizer.vocab.index(BYTE_TO_CHAR[0xC3])
    assert tokenizer.decode([first_byte_of_e_acute]) == "\ufffd"


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_decode_of_encode_is_the_cleaned_text_up_to_white_space(text):
    tokenizer = default_tokenizer()
    assert without_spaces(tokenizer.decode(tokenizer.encode(text))) == without_spaces(clean_text(text))


def test_the_cache_does_not_change_results(monkeypatch):
    tokenizer = BPETokenizer.train(TOY_CORPUS, 522)
    expected = tokenizer.encode("lowest newest low e s")
    monkeypatch.setattr(bpe_tokenizer_module, "_CACHE_LIMIT", 2)
    assert tokenizer.encode("lowest newest low e s") == expected  # served from the cache
    fresh = BPETokenizer(tokenizer.merges)
    assert fresh.encode("lowest newest low e s") == expected and len(fresh._cache) <= 2


# ----------------------------------------------------------------------------- batches

def test_batch_call_pads_with_zeros(toy):
    ids = toy(["low", "lowest newest"], context_length=6)
    assert ids.dtype == np.int64 and ids.shape == (2, 6)
    low, lowest, newest = toy.encode("low lowest newest")
    assert ids.tolist() == [[520, low, 521, 0, 0, 0], [520, lowest, newest, 521, 0, 0]]


def test_a_single_string_is_a_batch_of_one(toy):
    assert np.array_equal(toy("low", context_length=4), toy(["low"], context_length=4))
    assert toy([], context_length=4).shape == (0, 4)


def test_text_that_just_fits_is_kept_whole(toy):
    assert toy("low " * 4, context_length=6).tolist() == [[520] + [toy.encode("low")[0]] * 4 + [521]]


def test_too_long_text_raises_unless_truncated(toy):
    text = "low " * 5
    with pytest.raises(ValueError, match=r"text 1 \('low low .*'\) is 5 tokens long.*context length 6.*truncate=True"):
        toy(["low", text], context_length=6)
    truncated = toy(text, context_length=6, truncate=True)
    assert truncated.tolist() == [[520] + [toy.encode("low")[0]] * 4 + [521]]


def test_context_length_must_hold_start_and_end(toy):
    with pytest.raises(ValueError, match="context_length"):
        toy("low", context_length=1)


def test_miniclip_tokenize_uses_the_default_vocabulary():
    ids = tokenize("a photo of a red circle.")
    tokenizer = default_tokenizer()
    assert ids.dtype == np.int64 and ids.shape == (1, 77)
    assert len(tokenizer) == 4096 and ids[0, 0] == 4094 and ids.max() == 4095
    assert tokenizer.decode(ids[0, 1:ids[0].argmax()]) == "a photo of a red circle . "
    # Caption words are single tokens in the shipped vocabulary.
    assert len(tokenizer.encode("a photo of a small red circle on the left")) == 10


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad, error, message", [
    (None, TypeError, "not NoneType"),
    (b"a photo", TypeError, "decode it to str"),
    (["a photo", 3], TypeError, r"texts\[1\] must be a str, not int"),
    ([b"x"], TypeError, r"texts\[0\] is bytes"),
    (42, TypeError, "str or a list of str"),
])
def test_batch_call_rejects_non_strings(toy, bad, error, message):
    with pytest.raises(error, match=message):
        toy(bad)


@pytest.mark.parametrize("bad", [None, b"low", 3])
def test_encode_rejects_non_strings(toy, bad):
    with pytest.raises(TypeError, match="text"):
        toy.encode(bad)


def test_training_rejects_non_strings():
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        BPETokenizer.train(["low", None], 600)


@pytest.mark.parametrize("bad, error, message", [
    ([1, 522], ValueError, "unknown token id 522: ids go from 0 to 521"),
    ([-1], ValueError, "unknown token id -1"),
    ([1.5], TypeError, "must be ints, not float"),
    ([[1, 2]], TypeError, "decode each row"),
    ("low", TypeError, "not str"),
])
def test_decode_rejects_unknown_or_non_integer_ids(toy, bad, error, message):
    with pytest.raises(error, match=message):
        toy.decode(bad)


def test_decode_accepts_numpy_ids(toy):
    assert toy.decode(np.array(toy.encode("low"), dtype=np.int64)) == "low "


# ----------------------------------------------------------------------------- files

@pytest.mark.parametrize("name", ["merges.txt", "merges.txt.gz"])
def test_save_and_load_round_trip(toy, tmp_path, name):
    toy.save(tmp_path / name)
    loaded = BPETokenizer.load(tmp_path / name)
    assert loaded.merges == toy.merges and loaded.vocab == toy.vocab
    assert loaded.encode("lowest newest") == toy.encode("lowest newest")


def test_saved_file_has_openais_format_and_is_reproducible(toy, tmp_path):
    toy.save(tmp_path / "a.txt.gz")
    toy.save(tmp_path / "b.txt.gz")
    assert (tmp_path / "a.txt.gz").read_bytes() == (tmp_path / "b.txt.gz").read_bytes()
    lines = gzip.decompress((tmp_path / "a.txt.gz").read_bytes()).decode("utf-8").split("\n")
    assert lines[:3] == ["#version: 0.2", "l o", "e s"] and lines[-1] == ""


def test_load_can_keep_only_the_first_merges(toy, tmp_path):
    toy.save(tmp_path / "merges.txt")
    assert BPETokenizer.load(tmp_path / "merges.txt", max_merges=3).merges == TOY_MERGES[:3]


def test_load_rejects_damaged_files(tmp_path):
    (tmp_path / "bad_line.txt").write_text("#version: 0.2\nl o\nlo\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: expected two symbols"):
        BPETokenizer.load(tmp_path / "bad_line.txt")
    (tmp_path / "unknown.txt").write_text("#version: 0.2\nlo w\n", encoding="utf-8")
    with pytest.raises(ValueError, match="uses the symbol 'lo'"):
        BPETokenizer.load(tmp_path / "unknown.txt")


def write_hugging_face_pair(tokenizer, folder):
    """Write ``tokenizer`` as Hugging Face CLIP checkpoints store it: vocab.json + merges.txt."""
    folder.mkdir(exist_ok=True)
    tokenizer.save(folder / "merges.txt")
    vocab = {token: index for index, token in enumerate(tokenizer.vocab)}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    return folder


def test_load_tokenizer_reads_a_hugging_face_pair(toy, tmp_path):
    folder = write_hugging_face_pair(toy, tmp_path / "checkpoint")
    for path in (folder, folder / "vocab.json", folder / "merges.txt"):
        assert load_tokenizer(path).vocab == toy.vocab


def test_load_tokenizer_checks_vocab_json(toy, tmp_path):
    folder = write_hugging_face_pair(toy, tmp_path / "checkpoint")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    vocab["lo"], vocab["es"] = vocab["es"], vocab["lo"]
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(ValueError, match="gives 'lo' the id 513"):
        load_tokenizer(folder)


def test_load_tokenizer_explains_how_to_get_openais_file(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="clip-anytorch.*github.com/openai/CLIP"):
        find_openai_merges()


# ----------------------------------------------------------------------------- OpenAI's vocabulary

def test_openai_vocabulary_layout(openai_tokenizer):
    assert len(openai_tokenizer) == 49408
    assert (openai_tokenizer.sot_token_id, openai_tokenizer.eot_token_id) == (49406, 49407)
    assert openai_tokenizer.vocab[320] == "a</w>"


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=lambda case: ascii(case["text"])[:40])
def test_openai_ids_match_the_reference(openai_excerpt, case):
    assert openai_excerpt.encode(case["text"]) == case["ids"]
    assert openai_excerpt.decode(case["ids"]) == case["decoded"]


@pytest.mark.parametrize("case", REFERENCE_CASES[:12], ids=lambda case: ascii(case["text"])[:40])
def test_openai_ids_match_the_reference_with_the_whole_file(openai_tokenizer, case):
    assert openai_tokenizer.encode(case["text"]) == case["ids"]


def test_openai_batch_matches_the_reference(openai_tokenizer):
    ids = openai_tokenizer(["a diagram", "a dog", "a cat"])
    assert ids[:, :5].tolist() == [[49406, 320, 22697, 49407, 0], [49406, 320, 1929, 49407, 0],
                                   [49406, 320, 2368, 49407, 0]]
    truncated = openai_tokenizer("cat " * 80, truncate=True)
    assert truncated.tolist() == [[49406] + [2368] * 75 + [49407]]
    assert openai_tokenizer.decode([49406, 320, 1125, 539, 320, 2368, 49407]) == (
        "<|startoftext|>a photo of a cat <|endoftext|>")

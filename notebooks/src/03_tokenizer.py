# %% [markdown]
# # 3. The tokenizer: from a caption to token ids
#
# The text tower cannot read characters; it reads a row of integers, one per **token**,
# each indexing a row of its embedding table. CLIP turns text into tokens with
# **byte-level byte-pair encoding (BPE)**, in four steps:
#
# 1. *clean* the text (repair broken Unicode, unescape HTML, collapse white space, lower-case);
# 2. *pre-tokenise* it into words, digits and punctuation runs;
# 3. write each word as a sequence of **bytes**, each byte shown as one printable character;
# 4. apply learned **merges**, most frequent pair first, until no merge applies.
#
# You will write the heart of BPE yourself: counting pairs, one merge, and encoding a word
# (exercises 3a–3c; each is a function with a `raise NotImplementedError` line for you to
# replace, followed by a `with exercise(...)` cell that checks it).
#
# Then every row gets a start and an end token and is padded to 77 ids.
#
# The code: `miniclip/tokenizer/pretokenizer.py` (steps 1–3), `bpe.py` (merging and learning
# merges), `bpe_tokenizer.py` (the `BPETokenizer` class: train, encode, decode, the padded
# batch call, merges files) and `pretrained.py` (the shipped vocabulary and OpenAI's).

# %%
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import miniclip
from miniclip.tokenizer import clean_text, default_tokenizer, pretokenize
from miniclip.grading import exercise
from miniclip.tokenizer.bpe import learn_merges
from miniclip.tokenizer.pretokenizer import BYTE_TO_CHAR, word_symbols
from miniclip.system.threads import limit_blas_threads

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. Clean-up
#
# Captions scraped from the web are messy. `clean_text` runs `ftfy.fix_text` (which repairs
# *mojibake*, text decoded with the wrong encoding such as "cafÃ©" for "café", and turns
# ligatures and full-width letters into plain ones), unescapes HTML entities twice (so
# "&amp;amp;" becomes "&"), collapses runs of white space and lower-cases everything. The
# lower-casing means CLIP cannot tell "Apple" from "apple". HTML *tags* stay as they are;
# only entities such as `&lt;` are unescaped.

# %%
for raw in ["  A   Photo of a DOG\n\t", "Caf\u00c3\u00a9 &amp;amp; cr\u00e8me",
            "\ufb01ne \uff23\uff2c\uff29\uff30", "<b>bold</b> &lt;3"]:
    print(f"{raw!r:40} -> {clean_text(raw)!r}")

# %% [markdown]
# ## 2. Pre-tokenisation
#
# A regular expression (`_PRETOKEN_PATTERN` in `text.py`) cuts the cleaned text into
# pre-tokens: the special tokens, the English contractions `'s 't 're 've 'm 'll 'd`, runs
# of letters, *single* digits, and runs of other non-space characters. White space is
# dropped. BPE never merges across two pre-tokens, so "dog." can never become one token.

# %%
print(pretokenize(clean_text("It's 2021!! The dog's ball, the cats' toys...")))

# %% [markdown]
# ## 3. Bytes as printable characters
#
# BPE on *bytes* rather than on Unicode characters means there is no "unknown" token:
# every string is a sequence of UTF-8 bytes, and all 256 bytes are in the vocabulary. But
# merges files store symbols as text separated by spaces, so each byte needs a stand-in that
# is visible and is not white space. Bytes that already are such a character
# (33–126, 161–172, 174–255) stand for themselves; the other 68 (control codes, the space,
# ...) are mapped, in order, to the characters chr(256), chr(257), ... The table
# `BYTE_TO_CHAR` in `text.py` holds the mapping. Below, the 256 bytes in a 16×16 grid
# (row = high 4 bits, column = low 4 bits); shaded cells are the remapped ones.

# %%
fig, ax = plt.subplots(figsize=(8, 8))
remapped = np.array([ord(BYTE_TO_CHAR[b]) != b for b in range(256)]).reshape(16, 16)
ax.imshow(remapped, cmap="Oranges", vmin=0, vmax=2.5)
for b in range(256):
    ax.text(b % 16, b // 16, BYTE_TO_CHAR[b], ha="center", va="center", fontsize=10)
ax.set_xticks(range(16), [f"{i:X}" for i in range(16)])
ax.set_yticks(range(16), [f"{i:X}0" for i in range(16)])
ax.set_title("BYTE_TO_CHAR: byte value -> printable character (shaded: remapped)")
plt.show()
print("space (byte 32) ->", BYTE_TO_CHAR[32], "| newline (byte 10) ->", BYTE_TO_CHAR[10])

# %% [markdown]
# A word starts as one symbol per byte, with the end-of-word marker `</w>` glued to the last
# one (`word_symbols`). The marker makes "cat" at the end of a word and "cat" inside
# "catalog" different tokens, and decoding turns it back into a space. Characters outside
# ASCII take several bytes:

# %%
for word in ["cat", "café", "🙂"]:
    print(f"{word!r:8} {list(word.encode('utf-8'))!s:24} -> {word_symbols(word)}")

# %% [markdown]
# ## 4. Learning merges
#
# BPE learns its merges from a corpus. Count how often each pair of neighbouring symbols
# occurs (a word that occurs 5 times counts 5 times), merge the most frequent pair
# everywhere, and repeat. Each merge adds one token to the vocabulary. Let us do the first
# three steps by hand on a small corpus of captions, printing the top pairs each time.

# %%
corpus = [
    "a red circle on the left", "a small red circle", "a large green circle",
    "a blue square at the top", "a small blue square", "a green triangle on the right",
    "a red triangle at the bottom", "a large yellow circle", "two green circles",
    "three red squares", "a white cross on the left", "a purple diamond at the top",
    "the circle is red and the square is blue", "a circle inside a square",
]
word_counts = Counter(word for text in corpus for word in pretokenize(clean_text(text)))
words = {tuple(word_symbols(w)): n for w, n in word_counts.items()}
print(f"{len(word_counts)} distinct words, {sum(word_counts.values())} in all")

# %% [markdown]
# ### Exercise 3a: counting pairs
#
# Complete `pair_counts`: count the neighbouring pairs of every word, each weighted by the
# word's count, and return a `Counter` (a dict that starts every key at 0; the cells below
# call its `most_common`).

# %%
def pair_counts(words):
    """{(first, second): how often the pair occurs} over ``words``, a dict {symbols: count}."""
    # BEGIN SOLUTION 3a: pair counts
    counts = Counter()
    for symbols, n in words.items():
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += n
    return counts
    # END SOLUTION


# %%
with exercise("3a: pair counts") as check:
    toy = {("l", "o", "w</w>"): 5, ("l", "o", "w", "e", "r</w>"): 2}
    check.equal("pairs of the toy corpus", dict(pair_counts(toy)),
                {("l", "o"): 7, ("o", "w</w>"): 5, ("o", "w"): 2, ("w", "e"): 2, ("e", "r</w>"): 2})
    check.equal("a one-symbol word", dict(pair_counts({("a</w>",): 3})), {})
    check.true("the type", isinstance(pair_counts(toy), Counter),
               f"returned a {type(pair_counts(toy)).__name__}: return a Counter")

# %% [markdown]
# ### Exercise 3b: one merge
#
# Complete `merge`, one merge in one word, scanning left to right: where
# `symbols[i], symbols[i + 1]` is the pair, emit the joined symbol and skip two; otherwise
# emit `symbols[i]` and move on by one.

# %%
def merge(symbols, pair):
    """A new list: ``symbols`` with every occurrence of ``pair``, left to right and without
    overlap, replaced by the joined symbol (merging ('a', 'a') in a a a gives aa a)."""
    # BEGIN SOLUTION 3b: one merge
    merged, i = [], 0
    while i < len(symbols):
        if tuple(symbols[i:i + 2]) == pair:
            merged.append(pair[0] + pair[1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged
    # END SOLUTION


# %%
with exercise("3b: one merge") as check:
    from miniclip.tokenizer.bpe import merge_pair as reference_merge
    for symbols, pair in [(["c", "a", "t</w>"], ("a", "t</w>")), (["a", "a", "a"], ("a", "a")),
                          (["a", "b", "a", "b"], ("a", "b")), (["x", "y"], ("y", "x"))]:
        check.equal(f"merge({symbols}, {pair})", merge(list(symbols), pair),
                    reference_merge(symbols, pair))

# %% [markdown]
# With both, the first three steps of BPE by hand:

# %%
by_hand = []
for step in range(3):
    counts = pair_counts(words)
    # the most frequent pair; ties go to the smaller pair in string order, as in learn_merges
    best = min(counts, key=lambda pair: (-counts[pair], pair))
    print(f"step {step}: top pairs {counts.most_common(4)}\n        -> merge {best}")
    by_hand.append(best)
    words = {tuple(merge(list(s), best)): n for s, n in words.items()}

# %% [markdown]
# `learn_merges` in `bpe.py` does the same, but instead of recounting every pair after each
# merge it updates only the counts of the words that contained the merged pair and keeps the
# candidates in a heap, so it scales to large corpora. It finds the same first merges:

# %%
start = {tuple(word_symbols(w)): n for w, n in word_counts.items()}
merges = learn_merges(start, 60)
print("same first three:", merges[:3] == by_hand)
assert merges[:3] == by_hand, "the hand-counted merges must be the first ones learned"
print("the first 20 merges:", [a + b for a, b in merges[:20]])

# %% [markdown]
# ## Watching words get merged
#
# To *encode* a word, start from its bytes and repeatedly apply the earliest-learned merge
# that occurs in it. The merges are given as *ranks*, `{pair: the step it was learned at}`.
#
# ### Exercise 3c: encoding a word
#
# Write `encode_word(symbols, ranks)`: while the word has two or more symbols, find among
# its neighbouring pairs the one of lowest rank; if none is a learned merge, stop;
# otherwise `merge` it and repeat. (`min` with a `key` that gives unknown pairs the rank
# `float("inf")` finds it.) Applying merges in the order they were learned replays
# training on this one word; `miniclip/tokenizer/bpe.py` calls this `apply_merges`.

# %%
def encode_word(symbols, ranks):
    """The final symbols of one word under the merges ``ranks`` {pair: rank}."""
    # BEGIN SOLUTION 3c: encode a word
    while len(symbols) > 1:
        best = min(zip(symbols, symbols[1:]), key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        symbols = merge(symbols, best)
    return symbols
    # END SOLUTION


# %%
with exercise("3c: encode a word") as check:
    from miniclip.tokenizer.bpe import apply_merges as reference_encode
    some_ranks = {pair: rank for rank, pair in enumerate(merges[:30])}
    for word in ["circle", "squares", "hexagon", "a", "café"]:
        check.equal(f"encode_word of {word!r}", encode_word(word_symbols(word), some_ranks),
                    reference_encode(word_symbols(word), some_ranks))

# %% [markdown]
# With the first $k$ merges only, frequent words become single tokens first; rare ones stay
# in pieces.

# %%
def segment(word, k):
    ranks = {pair: rank for rank, pair in enumerate(merges[:k])}
    return encode_word(word_symbols(word), ranks)


for word in ["circle", "square", "triangle", "circles", "diamond", "hexagon"]:
    print(f"{word:9}", " | ".join(" ".join(segment(word, k)).ljust(24) for k in (0, 10, 30, 60)))

# %% [markdown]
# Every merge shortens the corpus. The curve below counts the tokens needed for the
# whole corpus after each number of merges: the first merges, which join the most frequent
# pairs, save the most.

# %%
tokens_after = [sum(len(segment(w, k)) * n for w, n in word_counts.items())
                for k in range(len(merges) + 1)]
characters = sum(len(w.encode("utf-8")) * n for w, n in word_counts.items())
plt.figure(figsize=(6, 3.5))
plt.plot(tokens_after)
plt.axhline(sum(word_counts.values()), color="grey", ls=":", label="one token per word")
plt.xlabel("merges learned")
plt.ylabel("tokens in the corpus")
plt.title(f"BPE compresses the corpus ({characters} bytes to start with)")
plt.legend()
plt.show()

# %% [markdown]
# ## A tokenizer of our own
#
# `miniclip.BPETokenizer.train(texts, vocab_size)` wraps all of this. The vocabulary follows CLIP's
# layout, so ids mean the same thing in every miniclip tokenizer: ids 0–255 are the byte
# symbols, 256–511 the same with `</w>`, then one id per merge in order, and the last two
# are `<|startoftext|>` and `<|endoftext|>`. Asking for $514 + 60$ ids gives the 60 merges
# above.

# %%
ours = miniclip.BPETokenizer.train(corpus, vocab_size=514 + 60)
print(ours, "| start", ours.sot_token_id, "| end", ours.eot_token_id)
for text in ["A red circle.", "a hexagon"]:
    ids = ours.encode(text)
    print(f"{text!r:16} -> {ids}\n{'':19} {[ours.vocab[i] for i in ids]}\n{'':16}<- {ours.decode(ids)!r}")

# %% [markdown]
# A word the corpus never saw still encodes, from smaller pieces or single bytes: there is no
# unknown token. Decoding reverses the byte mapping and turns each `</w>` into a space, so
# we get back the *cleaned* text (lower-case, with spaces after words), not the original.
#
# ## The batch call: start, end, padding
#
# The text model takes a fixed-width integer array. Calling a tokenizer on a list of texts
# (`BPETokenizer.__call__`) writes each row as the start id, the text's ids, the end id,
# then zeros up to `context_length` (77 in every released CLIP). `miniclip.tokenize` does
# this with **miniclip's own vocabulary** of 4,096 ids, shipped in
# `miniclip/tokenizer/assets/` and built by `scripts/build_default_vocab.py` from generated
# captions and English text from Python's standard library.

# %%
tokenizer = default_tokenizer()
print(tokenizer)
batch = miniclip.tokenize(["a photo of a red circle.", "a cat"])
print("shape", batch.shape, batch.dtype)
print(batch[:, :12])
print("start id", tokenizer.sot_token_id, "| end id", tokenizer.eot_token_id)
assert batch.shape == (2, 77) and (batch[:, 0] == tokenizer.sot_token_id).all()

# %% [markdown]
# The end token has the **largest** id in the vocabulary. That is deliberate: the text tower
# takes its output at each row's end token and finds it with `argmax` over the row
# (`TextTransformer.encode_text` in `miniclip/models/text_transformer.py`). The padding id 0 is also
# the id of the token "!"; that is harmless because the causal mask stops padding, which
# comes after the end token, from influencing it.
#
# A text longer than the context allows (75 tokens, plus start and end) is an error unless
# you ask for truncation, which keeps the end token as the last id:

# %%
long_caption = "a very " * 40 + "long caption"
try:
    miniclip.tokenize([long_caption])
except ValueError as error:
    print("ValueError:", error)

row = miniclip.tokenize([long_caption], truncate=True)[0]
print("truncated:", row[:4], "...", row[-3:], "| ends with the end id:", row[-1] == tokenizer.eot_token_id)
print("a shorter context:", miniclip.tokenize(["a red circle"], context_length=8)[0])
assert row[-1] == tokenizer.eot_token_id, "a truncated text still ends with the end id"

# %% [markdown]
# ## OpenAI's vocabulary
#
# Released CLIP weights need OpenAI's own vocabulary of 49,408 ids (48,894 merges).
# miniclip does not ship that file; `miniclip.load_tokenizer()` finds it in an
# installed `clip` or `open_clip` package, or reads a path you give it (OpenAI's
# `bpe_simple_vocab_16e6.txt.gz`, or the `merges.txt` + `vocab.json` of a Hugging Face
# checkpoint). The cell below uses it when it is available and says so when it is not.

# %%
try:
    openai_tokenizer = miniclip.load_tokenizer()
except FileNotFoundError as error:
    print("OpenAI's merges file is not installed here:\n", error)
else:
    print(openai_tokenizer)
    for text in ["a diagram", "a dog", "a cat"]:
        print(f"{text!r:12} -> {openai_tokenizer.encode(text)}")

# %% [markdown]
# **Where next.** The ids go into the text tower's embedding table
# (`04_towers.ipynb`), and `06_train_tiny_clip.ipynb` trains a CLIP with miniclip's
# vocabulary.

"""The :class:`BPETokenizer`: CLIP's byte-level BPE tokenizer, trainable and savable.

A tokenizer is fully described by its ordered list of merges. The vocabulary is
derived from it with CLIP's layout rule, so ids always mean the same thing as in
OpenAI's tokenizer:

====================  ==============================================
ids                   tokens
====================  ==============================================
0 - 255               the 256 byte symbols (see ``text.byte_tokens``)
256 - 511             the same symbols followed by ``</w>``
512 - 512+M-1         one per merge, in order: the merged symbol
last two              ``<|startoftext|>``, ``<|endoftext|>``
====================  ==============================================

With OpenAI's 48,894 merges this gives 49,408 ids, start 49406 and end 49407.
"""

import gzip
import io
import operator
import warnings
import zlib
from collections import Counter

import numpy as np

from .bpe import apply_merges, learn_merges
from .pretokenizer import (
    CHAR_TO_BYTE,
    END_OF_TEXT,
    END_OF_WORD,
    START_OF_TEXT,
    byte_tokens,
    clean_text,
    pretokenize,
    word_symbols,
)

#: Merges files start with one header line, which loading skips (as the reference
#: does). This is the header that :meth:`BPETokenizer.save` writes.
MERGES_HEADER = "#version: 0.2"

#: Ids the start, end and byte tokens take up in every vocabulary: a trained
#: vocabulary of ``vocab_size`` ids has ``vocab_size - RESERVED_IDS`` merges.
RESERVED_IDS = 256 + 256 + 2

# The per-word cache is emptied when it reaches this many entries, so that encoding
# an endless stream of distinct words cannot use up memory. Ordinary text repeats
# words so much that the cache rarely fills.
_CACHE_LIMIT = 100_000


def clip_vocabulary(merges):
    """The id -> token list for ``merges``, in CLIP's layout (see the module docstring).

    Raises:
        ValueError: if a merge uses a symbol that neither the bytes nor an earlier
            merge produce, or produces a token that already exists. Either means the
            merges were not learned by BPE (e.g. a wrong or damaged file).
    """
    vocab = byte_tokens()
    known = set(vocab)
    for rank, (first, second) in enumerate(merges):
        for symbol in (first, second):
            if symbol not in known:
                raise ValueError(
                    f"merge {rank} {first!r} + {second!r} uses the symbol {symbol!r}, "
                    "which no earlier merge produces"
                )
        merged = first + second
        if merged in known:
            raise ValueError(f"merge {rank} {first!r} + {second!r} produces {merged!r} a second time")
        known.add(merged)
        vocab.append(merged)
    return vocab + [START_OF_TEXT, END_OF_TEXT]


def _check_text(text, where):
    """Raise a ``TypeError`` naming ``where`` unless ``text`` is a ``str``."""
    if isinstance(text, str):
        return
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(f"{where} is bytes; decode it to str first, e.g. data.decode('utf-8')")
    raise TypeError(f"{where} must be a str, not {type(text).__name__}")


def _as_batch(texts):
    """Return ``texts`` as a list of strings; a single string is a batch of one."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):  # iterable, but surely not meant as a batch
        raise TypeError("texts is bytes; decode it to str first, e.g. data.decode('utf-8')")
    try:
        batch = list(texts)
    except TypeError:
        raise TypeError(
            f"texts must be a str or a list of str, not {type(texts).__name__}"
        ) from None
    for index, text in enumerate(batch):
        _check_text(text, f"texts[{index}]")
    return batch


def _short(text, limit=60):
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: The largest merges file read, after decompression: OpenAI's is 1.7 MB, so more is not a
#: merges file (and a small gzip file can inflate to gigabytes).
MAX_MERGES_FILE_BYTES = 64 << 20

#: What a merges file is, for the errors.
MERGES_FILE = ("expected a merges file: OpenAI's bpe_simple_vocab_16e6.txt.gz, a Hugging Face "
               "merges.txt or one written by BPETokenizer.save")


def _read_text_file(path):
    """Read a UTF-8 file that may be gzip-compressed (recognised by its first bytes).

    Raises ``ValueError`` naming the file for a damaged gzip stream, a file over
    :data:`MAX_MERGES_FILE_BYTES` and bytes that are not UTF-8 text.
    """
    with open(path, "rb") as file:
        data = file.read(MAX_MERGES_FILE_BYTES + 1)
    if data[:2] == b"\x1f\x8b":  # the gzip magic number
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                data = stream.read(MAX_MERGES_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise ValueError(f"{path}: a damaged or truncated gzip file ({error}); download it "
                             "again") from error
    if len(data) > MAX_MERGES_FILE_BYTES:
        raise ValueError(f"{path}: over {MAX_MERGES_FILE_BYTES >> 20} MiB of text; {MERGES_FILE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte "
                         f"{data[error.start:error.start + 1]!r}); {MERGES_FILE}") from None


class BPETokenizer:
    """CLIP's byte-level BPE tokenizer for a given list of merges.

    Any text can be encoded: every byte has a token, so there is no "unknown"
    token. Ids follow CLIP's layout (module docstring); ``sot_token_id`` and
    ``eot_token_id`` are the last two ids.

    Make one with :meth:`train`, :meth:`load`, ``miniclip.load_tokenizer`` (OpenAI's
    vocabulary) or ``miniclip.tokenizer.default_tokenizer()`` (miniclip's own).

    Attributes:
        merges: list of ``(first, second)`` symbol pairs, in the order learned.
        vocab: list of token strings; ``vocab[i]`` is the token with id ``i``.
    """

    def __init__(self, merges):
        """Build the tokenizer for ``merges``, a sequence of ``(first, second)`` pairs."""
        self.merges = [(first, second) for first, second in merges]
        self.vocab = clip_vocabulary(self.merges)
        self._token_ids = {token: index for index, token in enumerate(self.vocab)}
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._special_ids = {START_OF_TEXT: self.sot_token_id, END_OF_TEXT: self.eot_token_id}
        # Pre-token -> tuple of ids. Encoding a word costs a BPE loop; real text
        # repeats words so often that remembering the result pays off hugely.
        self._cache = {}

    @property
    def vocab_size(self):
        """Number of ids (the text model's embedding table needs this many rows)."""
        return len(self.vocab)

    def __len__(self):
        return len(self.vocab)

    @property
    def sot_token_id(self):
        """Id of ``<|startoftext|>``, put at the start of every row by the batch call."""
        return len(self.vocab) - 2

    @property
    def eot_token_id(self):
        """Id of ``<|endoftext|>``, the largest id; the text model pools at its position."""
        return len(self.vocab) - 1

    def __repr__(self):
        return f"BPETokenizer(vocab_size={self.vocab_size})"

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, texts, vocab_size):
        """Learn a tokenizer with ``vocab_size`` ids from ``texts``.

        The texts get the same clean-up and pre-tokenisation as when encoding; the
        special tokens, if they appear, are left out. Merges are learned by
        :func:`miniclip.tokenizer.bpe.learn_merges` (most frequent pair first, ties
        to the smaller pair in string order).

        Args:
            texts: an iterable of strings (a single string counts as one text).
            vocab_size: ids in the finished vocabulary, at least 514 (256 bytes,
                256 bytes with ``</w>``, start and end); the rest are merges.

        Returns:
            A new ``BPETokenizer``. If the texts run out of pairs to merge first, it
            has fewer ids than asked for, and a warning says so.
        """
        if vocab_size < RESERVED_IDS:
            raise ValueError(
                f"vocab_size must be at least {RESERVED_IDS} (256 bytes, 256 bytes with "
                f"{END_OF_WORD}, start and end tokens), got {vocab_size}"
            )
        word_counts = Counter()
        for text in _as_batch(texts):
            word_counts.update(pretokenize(clean_text(text)))
        for special in (START_OF_TEXT, END_OF_TEXT):
            word_counts.pop(special, None)

        symbol_counts = {tuple(word_symbols(word)): count for word, count in word_counts.items()}
        merges = learn_merges(symbol_counts, vocab_size - RESERVED_IDS)
        tokenizer = cls(merges)
        if len(tokenizer) < vocab_size:
            warnings.warn(
                f"the texts only allow {len(merges)} merges: the vocabulary has "
                f"{len(tokenizer)} ids instead of {vocab_size}",
                stacklevel=2,
            )
        return tokenizer

    # ------------------------------------------------------------------ encoding

    def encode(self, text):
        """Token ids of ``text``, without start and end tokens.

        A literal ``<|startoftext|>`` or ``<|endoftext|>`` in the text (in any case)
        becomes the special id, as in the reference.
        """
        _check_text(text, "text")
        ids = []
        for word in pretokenize(clean_text(text)):
            ids.extend(self._encode_word(word))
        return ids

    def _encode_word(self, word):
        """Ids of one pre-token, from the cache when possible."""
        ids = self._cache.get(word)
        if ids is None:
            if word in self._special_ids:
                ids = (self._special_ids[word],)
            else:
                symbols = apply_merges(word_symbols(word), self._ranks)
                ids = tuple(self._token_ids[symbol] for symbol in symbols)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def decode(self, ids):
        """Text of a sequence of ids (any ints, e.g. a row of a token array).

        The tokens' bytes are decoded as UTF-8 (an invalid sequence, e.g. from
        decoding only part of a character, becomes U+FFFD) and each ``</w>`` becomes
        a space, so the result is the cleaned text with spaces after words.

        Padding is not skipped (id 0 is also the token "!"): to decode a row of the
        batch call, pass the ids between the start and end ids.
        """
        if isinstance(ids, (str, bytes, bytearray)):
            raise TypeError(f"decode expects a sequence of int ids, not {type(ids).__name__}")
        tokens = []
        for token_id in ids:
            try:
                index = operator.index(token_id)  # any int type, numpy's included
            except TypeError:
                raise TypeError(
                    f"token ids must be ints, not {type(token_id).__name__} "
                    "(to decode a batch, decode each row)"
                ) from None
            if not 0 <= index < len(self.vocab):
                raise ValueError(f"unknown token id {index}: ids go from 0 to {len(self.vocab) - 1}")
            tokens.append(self.vocab[index])
        data = bytes(CHAR_TO_BYTE[char] for char in "".join(tokens))
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ")

    def __call__(self, texts, context_length=77, truncate=False):
        """Encode a batch for the text model: ``[N, context_length]`` int64 ids.

        Each row is the start id, the text's ids, the end id, then zeros.

        Args:
            texts: a string or a list of strings.
            context_length: columns of the result (77 in all CLIP models).
            truncate: if True, cut a text that does not fit, keeping the end id as
                the last id; if False (default), raise a ``ValueError`` instead.

        Raises:
            TypeError: if ``texts`` is not a string or an iterable of strings.
            ValueError: if a text is too long and ``truncate`` is False.
        """
        batch = _as_batch(texts)
        if context_length < 2:
            raise ValueError(f"context_length must leave room for the start and end tokens, got {context_length}")
        room = context_length - 2
        result = np.zeros((len(batch), context_length), dtype=np.int64)
        for row, text in enumerate(batch):
            ids = self.encode(text)
            if len(ids) > room:
                if not truncate:
                    raise ValueError(
                        f"text {row} ({_short(text)!r}) is {len(ids)} tokens long, more than "
                        f"the context length {context_length} allows ({room} tokens + start "
                        "and end); shorten it or pass truncate=True"
                    )
                ids = ids[:room]
            tokens = [self.sot_token_id, *ids, self.eot_token_id]
            result[row, : len(tokens)] = tokens
        return result

    # ------------------------------------------------------------------ files

    def save(self, path):
        """Write the merges file: a header line, then one ``first second`` line per merge.

        This is the format of OpenAI's ``bpe_simple_vocab_16e6.txt.gz``. A path ending
        in ``.gz`` is gzip-compressed, with a zero time stamp so that the same
        merges always give the same bytes.
        """
        lines = [MERGES_HEADER] + [f"{first} {second}" for first, second in self.merges]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if str(path).endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        with open(path, "wb") as file:
            file.write(data)

    @classmethod
    def load(cls, path, max_merges=None):
        """Read a merges file written by :meth:`save`, or OpenAI's, plain or gzipped.

        The first line is a header and is skipped, like the reference does.

        Args:
            path: the file.
            max_merges: use only the first this many merges. OpenAI's file holds
                262,144 merges but CLIP uses only the first 48,894;
                ``miniclip.load_tokenizer`` passes that limit.

        Raises ``FileNotFoundError`` for a missing file, and one ``ValueError`` naming the
        file, the line where it applies, and what a merges file is, for a damaged one:
        a truncated gzip stream, bytes that are not UTF-8, a line that is not two symbols,
        merges that BPE cannot have learned (binary garbage, or another kind of file).
        """
        lines = _read_text_file(path).split("\n")[1:]
        while lines and not lines[-1].strip():
            lines.pop()  # the file ends with a newline
        if not lines:
            raise ValueError(f"{path}: holds no merges (an empty or cut-short file); "
                             f"{MERGES_FILE}")
        merges = []
        for number, line in enumerate(lines[:max_merges], start=2):
            pair = line.split()
            if len(pair) != 2:
                raise ValueError(f"{path}, line {number}: expected two symbols, got "
                                 f"{_short(line)!r}; {MERGES_FILE}")
            merges.append(tuple(pair))
        try:
            return cls(merges)
        except ValueError as error:  # merges that BPE cannot have learned
            raise ValueError(f"{path}: {error}; {MERGES_FILE}") from error

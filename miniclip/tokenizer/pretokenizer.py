"""From raw text to the symbols that byte-pair encoding works on.

CLIP's tokenizer prepares text in three steps, each a function here:

1. :func:`clean_text` repairs and normalises the text (broken Unicode, HTML
   entities, runs of white space, upper case).
2. :func:`pretokenize` cuts the cleaned text into pre-tokens ("words"): runs of
   letters, single digits, runs of punctuation, the contractions ``'s``, ``'t``...
   BPE never merges across two pre-tokens.
3. :func:`word_symbols` turns one pre-token into its starting symbols: one
   printable character per UTF-8 byte, with the end-of-word marker ``</w>`` glued
   to the last one.

The rules follow OpenAI's ``simple_tokenizer.py`` exactly, so that a tokenizer built
from OpenAI's merges file gives the reference's ids for any Unicode text.
"""

import html

import regex

#: Appended to the last symbol of every word, so that "cat" at the end of a word
#: ("cat</w>") and "cat" inside a longer word ("cat" + "alog</w>") are different
#: tokens; decoding turns it back into a space.
END_OF_WORD = "</w>"

#: The two special tokens. They are never split: when one appears literally in the
#: text, it becomes the special id, as in the reference.
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"

# The reference uses the `regex` module (not `re`) because the standard library
# knows no Unicode properties such as \p{L} (any letter, in any script).
# Alternatives are tried in order at each position, so the special tokens win over
# the punctuation rule that would otherwise swallow "<|" and "|>". A number
# ([\p{N}]) is taken one digit at a time: "2021" is four pre-tokens. White space
# matches no alternative and is therefore dropped. IGNORECASE, kept for exact
# parity, only matters for two characters of lower-cased text: the long s "ſ"
# matches the "s" of "'s" and of "<|startoftext|>" (the latter then is an ordinary
# word, not the special token), and U+0345 COMBINING GREEK YPOGEGRAMMENI, which
# case-folds to the letter "ι" but is not a letter itself, matches no alternative
# at all and is dropped like white space.
_PRETOKEN_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)

# `regex`'s \s, like the reference's, so that exactly the same characters count
# as white space.
_WHITESPACE_RUN = regex.compile(r"\s+")


def clean_text(text):
    """Repair and normalise ``text`` the way CLIP does before tokenising.

    In order: ``ftfy.fix_text`` (fixes mojibake such as "cafÃ©", uncurls quotes,
    NFC-normalises, turns full-width characters and ligatures into plain ones,
    removes control characters, unescapes HTML entities), then ``html.unescape``
    twice (so "&amp;amp;" becomes "&"), then every run of white space becomes one
    space, the ends are stripped, and everything is lower-cased.

    Args:
        text: a ``str``.

    Returns:
        The cleaned ``str``.
    """
    # Imported here rather than at the top because importing ftfy takes about as
    # long as importing numpy, and `import miniclip` should stay fast for users
    # who never tokenise.
    import ftfy

    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    return text.lower()


def pretokenize(cleaned_text):
    """Split cleaned text into pre-tokens (the "words" that BPE encodes one by one).

    >>> pretokenize("it's 2021!!")
    ['it', "'s", '2', '0', '2', '1', '!!']
    """
    return _PRETOKEN_PATTERN.findall(cleaned_text)


def _byte_to_char_table():
    """Map each of the 256 byte values to a printable, non-space character.

    BPE works on strings, and the merges file stores symbols separated by spaces,
    one merge a line. So every byte needs a stand-in character that is visible and
    is neither white space nor a control character. Bytes that already are such a
    character (33-126, 161-172, 174-255) stand for themselves; the other 68 get
    the characters from chr(256) upwards, in byte order (the space, byte 32,
    becomes chr(288) "Ġ").

    Returns:
        A list of 256 one-character strings, indexed by byte value.
    """
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = [""] * 256
    for byte in printable:
        table[byte] = chr(byte)
    others = [byte for byte in range(256) if byte not in printable]
    for offset, byte in enumerate(others):
        table[byte] = chr(256 + offset)
    return table


#: ``BYTE_TO_CHAR[b]`` is the character that stands for byte ``b``.
BYTE_TO_CHAR = _byte_to_char_table()

#: The inverse mapping, used when decoding.
CHAR_TO_BYTE = {char: byte for byte, char in enumerate(BYTE_TO_CHAR)}


def byte_tokens():
    """The 512 tokens every vocabulary starts with, in CLIP's order.

    First the 256 byte symbols, printable bytes first (in byte order) and then the
    68 remapped ones, so id 0 is "!" and id 188 is byte 0; then the same 256
    symbols followed by ``</w>``.
    """
    symbols = sorted(BYTE_TO_CHAR, key=ord)
    return symbols + [symbol + END_OF_WORD for symbol in symbols]


def word_symbols(word):
    """The starting symbols of one pre-token: a character per UTF-8 byte, ``</w>`` on the last.

    >>> word_symbols("cat")
    ['c', 'a', 't</w>']
    >>> word_symbols("é")  # two UTF-8 bytes, 0xC3 0xA9
    ['Ã', '©</w>']
    """
    symbols = [BYTE_TO_CHAR[byte] for byte in word.encode("utf-8")]
    symbols[-1] += END_OF_WORD
    return symbols

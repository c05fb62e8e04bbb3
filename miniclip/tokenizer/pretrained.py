"""Ready-made tokenizers: miniclip's own default and OpenAI's CLIP vocabulary."""

import functools
import importlib.util
import json
from pathlib import Path

from .bpe_tokenizer import MAX_MERGES_FILE_BYTES, BPETokenizer

#: Merges CLIP uses. The paper's "49,152 vocab" counts the 256 bytes, the merges and
#: the two specials; with the 256 bytes + ``</w>`` the real total is 49,408 ids.
#: OpenAI's file holds 262,144 merges, of which the reference reads only these.
CLIP_NUM_MERGES = 49152 - 256 - 2

#: The vocabulary miniclip ships, built by ``scripts/build_default_vocab.py``.
DEFAULT_VOCAB_PATH = Path(__file__).resolve().parent / "assets" / "miniclip_bpe_4096.txt.gz"

OPENAI_MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
OPENAI_MERGES_URL = "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz"


@functools.lru_cache(maxsize=None)
def default_tokenizer():
    """miniclip's own tokenizer (4,096 ids), read from the package on first use."""
    return BPETokenizer.load(DEFAULT_VOCAB_PATH)


def tokenize(texts, context_length=77, truncate=False):
    """Encode a batch with :func:`default_tokenizer`: ``[N, context_length]`` int64 ids.

    See :meth:`BPETokenizer.__call__` for the arguments.
    """
    return default_tokenizer()(texts, context_length=context_length, truncate=truncate)


def find_openai_merges():
    """Path of OpenAI's merges file inside an installed ``clip`` or ``open_clip`` package.

    The packages are located, not imported (importing them would import PyTorch).

    Raises:
        FileNotFoundError: with instructions, if neither package has the file.
    """
    for package in ("clip", "open_clip"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue  # not installed, or a module rather than a package
        candidate = Path(spec.submodule_search_locations[0]) / OPENAI_MERGES_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"OpenAI's merges file {OPENAI_MERGES_FILE} was not found. miniclip does not ship "
        "it: install a package that does (pip install --no-deps clip-anytorch, or "
        f"open_clip_torch), or download {OPENAI_MERGES_URL} and pass its path. The folder "
        "of a Hugging Face CLIP checkpoint (vocab.json + merges.txt) works too."
    )


def load_tokenizer(path=None):
    """OpenAI's CLIP tokenizer: 49,408 ids, the reference's ids for any text.

    Args:
        path: one of

            * ``None``: find ``bpe_simple_vocab_16e6.txt.gz`` in an installed
              ``clip`` or ``open_clip`` package;
            * a merges file: OpenAI's (plain or gzipped), a Hugging Face
              ``merges.txt``, or one written by :meth:`BPETokenizer.save`;
            * a Hugging Face folder holding ``vocab.json`` and ``merges.txt``, or the
              path of that ``vocab.json``: the merges are read from ``merges.txt``
              and ``vocab.json`` is checked to give every token the same id.

    Like the reference, at most the first 48,894 merges of the file are used. A damaged
    merges file or ``vocab.json`` raises one ``ValueError`` naming the file (see
    :meth:`BPETokenizer.load`).
    """
    path = find_openai_merges() if path is None else Path(path)
    if path.is_dir():
        merges_path, vocab_path = path / "merges.txt", path / "vocab.json"
    elif path.name == "vocab.json":
        merges_path, vocab_path = path.with_name("merges.txt"), path
    else:
        merges_path, vocab_path = path, None
    tokenizer = BPETokenizer.load(merges_path, max_merges=CLIP_NUM_MERGES)
    if vocab_path is not None:
        _check_vocab_json(tokenizer, vocab_path)
    return tokenizer


def _check_vocab_json(tokenizer, vocab_path):
    """Raise ``ValueError`` unless ``vocab_path`` maps each token to the tokenizer's id.

    miniclip derives ids from the merges; a Hugging Face ``vocab.json`` states them.
    They agree for CLIP checkpoints; this makes sure the pair was not mixed up.
    """
    try:
        with open(vocab_path, "rb") as file:
            stated = json.loads(file.read(MAX_MERGES_FILE_BYTES + 1).decode("utf-8"))
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON (or a file too large)
        raise ValueError(f"{vocab_path}: not a readable JSON vocabulary ({error}); download "
                         "the Hugging Face folder again") from error
    if not isinstance(stated, dict):
        raise ValueError(f"{vocab_path}: a JSON {type(stated).__name__}, not the object of a "
                         "Hugging Face vocab.json")
    if len(stated) != len(tokenizer.vocab):
        raise ValueError(
            f"{vocab_path} has {len(stated)} tokens but its merges.txt gives {len(tokenizer.vocab)}"
        )
    for index, token in enumerate(tokenizer.vocab):
        if stated.get(token) != index:
            raise ValueError(
                f"{vocab_path} gives {token!r} the id {stated.get(token)}, but CLIP's layout gives {index}"
            )

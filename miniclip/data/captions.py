"""The captions file of an image–caption folder: its format, and reading it into a listing.

The captions file
-----------------
``DIR/captions.csv`` (or ``captions.tsv``, ``captions.jsonl``; the first that exists, unless
one is named) lists the images of ``DIR`` and their captions::

    filename,caption
    dogs/rex.jpg,a brown dog on a beach
    dogs/rex.jpg,"rex, asleep in the sun"
    cat.png,a tabby cat

* **Columns.** The first line is a header naming a ``filename`` and a ``caption`` column,
  in any order; other columns are allowed and ignored. File names are relative to ``DIR``.
* **Several captions per image.** An image may have several rows; they are grouped, in
  the order the images first appear. Training draws one of an image's captions on each
  visit (seeded); evaluation uses them all.
* **Quoting** (CSV as Excel and Python's ``csv`` write it). A caption containing a comma
  must be in double quotes, and a double quote inside a quoted caption is written twice:
  ``"a ""big"" cat, asleep"``. A row with more fields than the header (an unquoted comma)
  is an error, not a cut caption.
* **TSV** (``.tsv``): the same with tabs between the fields; captions may then contain
  commas unquoted.
* **JSONL** (``.jsonl``): one JSON object per line, ``{"filename": "cat.png", "caption":
  "a tabby cat"}``; ``caption`` may also be a list of captions.
* **Encodings.** UTF-8, with or without the byte-order mark Excel writes ("CSV UTF-8"), or
  UTF-16 with a byte-order mark (Excel's "Unicode Text", tab-separated).

What is an error and what is skipped
------------------------------------
A problem with the file's structure stops everything before training starts, with a
:class:`DataError` naming the file, the line and the fix: no header or a header without
the two columns, a row with extra fields, an unclosed or stray quote, text that is not
UTF-8, a JSONL line that is not an object with both keys, a file with no usable row. A
problem with one row is skipped and counted, and the first few are named in one warning:
an empty caption, a row without a file name, a caption over
:data:`MAX_CAPTION_CHARACTERS` (or a field over the 131,072 characters Python's csv
module holds) (CLIP reads 77 tokens, a few hundred characters; a longer
"caption" is a paste gone wrong), and (when the images are read, ``images.py``) an image
that is missing or cannot be opened.
"""
import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .problems import DataError, Skipped, require_folder

#: Captions files looked for, in this order, when none is named.
CAPTIONS_FILES = ("captions.csv", "captions.tsv", "captions.jsonl")

#: The header names of the two columns.
IMAGE_COLUMN, CAPTION_COLUMN = "filename", "caption"

#: Why a quoted field would span lines.
UNCLOSED_QUOTE = ("a quote opened on this line is not closed on it; close it (captions are "
                  "one line each)")

#: The longest caption kept: CLIP's 77 tokens hold at most a few hundred characters of
#: text, and a longer one is a paste gone wrong (the tokenizer would cut it anyway).
MAX_CAPTION_CHARACTERS = 2000


@dataclass
class CaptionFolder:
    """An image–caption folder, listed: ``captions[i]`` are the captions of ``paths[i]``."""
    root: Path
    captions_file: Path
    paths: list             # [N] Path
    captions: list          # [N] lists of str, each non-empty
    skipped_rows: Skipped   # rows without a caption or a file name


def find_captions_file(root, captions=None):
    """The captions file of folder ``root``: ``captions`` (relative to ``root`` unless
    absolute) or the first of :data:`CAPTIONS_FILES` that exists."""
    root = require_folder(root, "expected images and a captions file")
    if captions is not None:
        path = root / captions
        if not path.is_file():
            raise FileNotFoundError(f"no such captions file: {path}")
        return path
    for name in CAPTIONS_FILES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{root} has no captions file ({', '.join(CAPTIONS_FILES)}, "
                            f"with a {IMAGE_COLUMN} and a {CAPTION_COLUMN} column)")


def read_caption_rows(path):
    """The rows of a captions file (see the module docstring) as ``(line, filename,
    caption)`` triples, with white space stripped, and a :class:`Skipped` of the rows
    without a caption or a file name or with an over-long caption. Raises
    :class:`DataError` for a structural problem."""
    path = Path(path)
    text = _decode(path)
    rows, skipped = [], Skipped(f"rows of {path}")
    read = _jsonl_rows if path.suffix.lower() == ".jsonl" else _delimited_rows
    for line, filename, caption in read(path, text):
        if filename is None:
            skipped.add(f"line {line}", caption)
        elif not filename:
            skipped.add(f"line {line}", "no file name")
        elif not caption:
            skipped.add(f"line {line}", f"no caption for {filename}")
        elif len(caption) > MAX_CAPTION_CHARACTERS:
            skipped.add(f"line {line}", f"a caption of {len(caption):,} characters for "
                        f"{filename}, over {MAX_CAPTION_CHARACTERS:,}")
        else:
            rows.append((line, filename, caption))
    if not rows:
        raise DataError(f"{path} lists no image with a file name and a non-empty caption"
                        + (f" ({skipped.message(len(skipped))})" if skipped else ""))
    return rows, skipped


def _decode(path):
    """The text of ``path``: UTF-8 (a byte-order mark is dropped) or UTF-16 with one."""
    data = path.read_bytes()
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not {'UTF-16' if utf16 else 'UTF-8'} text "
                        f"(byte {data[error.start:error.start + 1]!r}: {error.reason}); save "
                        "it as UTF-8 (in Excel: 'CSV UTF-8')") from None


def _delimited_rows(path, text):
    """``(line, filename, caption)`` of a CSV (or, for ``.tsv``, tab-separated) text; a row
    with a field longer than the csv module holds comes as ``(line, None, why)``."""
    tsv = path.suffix.lower() == ".tsv"
    separator = "tab" if tsv else "comma"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                        strict=True)
    header = image_at = caption_at = None
    end = 0  # the last line read so far
    while True:
        start = end + 1
        try:
            fields = next(reader, None)
        except csv.Error as error:
            if "unexpected end of data" in str(error):  # the quote is never closed
                raise DataError(f"{path}, line {start}: {UNCLOSED_QUOTE}") from None
            if "field larger than field limit" in str(error) and header is not None:
                end = reader.line_num  # the reader goes on with the next line
                yield start, None, f"a field over {csv.field_size_limit():,} characters"
                continue
            raise DataError(f"{path}, line {reader.line_num}: {error}; in a quoted caption, "
                            'write a double quote twice ("a ""big"" cat")') from None
        if fields is None:
            break
        end = reader.line_num
        if end > start:
            raise DataError(f"{path}, line {start}: {UNCLOSED_QUOTE} (or it is closed only "
                            f"on line {end})")
        if not fields:  # a blank line
            continue
        if header is None:
            header = [name.strip() for name in fields]
            missing = [name for name in (IMAGE_COLUMN, CAPTION_COLUMN) if name not in header]
            if missing:
                raise DataError(
                    f"{path}, line {start}: the header {fields} has no "
                    f"{' or '.join(map(repr, missing))} column; the first line must name the "
                    f"columns, e.g. '{IMAGE_COLUMN},{CAPTION_COLUMN}'"
                    + (" (tab-separated)" if tsv else ""))
            image_at, caption_at = header.index(IMAGE_COLUMN), header.index(CAPTION_COLUMN)
            continue
        if len(fields) > len(header):
            raise DataError(
                f"{path}, line {start}: {len(fields)} fields but the header names "
                f"{len(header)} ({', '.join(header)}); does a caption contain a {separator}? "
                f"Quote captions that contain {separator}s: "
                + _quoted(fields, len(header), caption_at, reader.dialect.delimiter))
        fields = fields + [""] * (len(header) - len(fields))
        yield start, fields[image_at].strip(), fields[caption_at].strip()
    if header is None:
        raise DataError(f"{path} is empty; its first line must name the columns, e.g. "
                        f"'{IMAGE_COLUMN},{CAPTION_COLUMN}'")


def _quoted(fields, size, at, delimiter):
    """The row ``fields`` was meant to be, as CSV writes it: the ``size - len(fields)``
    surplus fields merged back into field ``at`` (the caption), quoted."""
    end = at + len(fields) - size + 1
    fields = fields[:at] + [delimiter.join(fields[at:end])] + fields[end:]
    line = io.StringIO()
    csv.writer(line, delimiter=delimiter, lineterminator="").writerow(fields)
    return line.getvalue()


def _jsonl_rows(path, text):
    """``(line, filename, caption)`` of a JSON-lines text; a list of captions gives a row
    per caption."""
    for line, record in enumerate(text.split("\n"), start=1):
        if not record.strip():
            continue
        try:
            value = json.loads(record)
            filename, captions = value[IMAGE_COLUMN], value[CAPTION_COLUMN]
        except (ValueError, KeyError, TypeError, RecursionError) as error:  # nesting too deep
            raise DataError(f"{path}, line {line}: expected a JSON object with "
                            f"'{IMAGE_COLUMN}' and '{CAPTION_COLUMN}', got "
                            f"{record.strip()[:60]!r} ({error})") from None
        captions = captions if isinstance(captions, list) else [captions]
        if not isinstance(filename, str) or not all(caption is None or isinstance(caption, str)
                                                    for caption in captions):
            raise DataError(f"{path}, line {line}: file names and captions must be strings, "
                            f"got {record.strip()[:60]!r}")
        for caption in captions:
            yield line, filename.strip(), (caption or "").strip()


def read_caption_folder(root, captions=None):
    """List an image–caption folder: its captions grouped per image (no image is opened).

    ``captions`` names the captions file (see :func:`find_captions_file`). Rows without a
    caption or a file name are skipped, counted in ``skipped_rows`` and named in a
    warning; a structural problem raises :class:`DataError`.
    """
    root = Path(root)
    path = find_captions_file(root, captions)
    rows, skipped = read_caption_rows(path)
    skipped.warn(len(rows) + len(skipped))
    grouped = {}  # filename -> its captions, in order of first appearance
    for _, filename, caption in rows:
        grouped.setdefault(filename, []).append(caption)
    return CaptionFolder(root, path, [root / name for name in grouped], list(grouped.values()),
                         skipped)

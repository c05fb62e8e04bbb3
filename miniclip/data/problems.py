"""What the readers of a user's files report: a problem that stops everything, and the
files or rows skipped.

* :class:`DataError` (a ``ValueError``): a captions file or folder that cannot be used as
  it is; one line naming the file (and line) and the fix.
* :class:`UnreadableImage` (a ``ValueError``): one image file that cannot be used.
* :class:`Skipped`: the images or rows left out, each with its reason, reported as one
  self-contained warning that gives the count and names the first
  :data:`NAMED_IN_WARNINGS` (``skipped 2 of 40 image files that could not be read:
  DIR/a.jpg (truncated); DIR/b.png (no such file)``).
"""
import warnings
from dataclasses import dataclass, field
from pathlib import Path

#: How many skipped rows or files a warning names (the rest are counted).
NAMED_IN_WARNINGS = 5


class DataError(ValueError):
    """A captions file or image folder that cannot be used as it is; the message names the
    file (and line) and says how to fix it."""


class UnreadableImage(ValueError):
    """An image file that cannot be used (``images.py`` says which): ``cannot read an image
    from PATH: REASON``."""

    def __init__(self, path, reason):
        self.path, self.reason = str(path), str(reason)
        super().__init__(f"cannot read an image from {self.path}: {self.reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


@dataclass
class Skipped:
    """Things left out (rows, image files), each with the reason: ``(where, reason)``."""
    what: str = "image files that could not be read"
    entries: list = field(default_factory=list)

    def add(self, where, reason):
        """Record ``where`` and ``reason``: a text, or an exception (an
        :class:`UnreadableImage` gives its reason without the file, which ``where`` names
        already)."""
        if isinstance(reason, UnreadableImage):
            reason = reason.reason
        self.entries.append((str(where), str(reason)))

    def __len__(self):
        return len(self.entries)

    def message(self, total):
        """One line saying how many of ``total`` were skipped, naming the first few."""
        named = "; ".join(f"{where} ({reason})" for where, reason in
                          self.entries[:NAMED_IN_WARNINGS])
        more = len(self.entries) - NAMED_IN_WARNINGS
        return (f"skipped {len(self.entries)} of {total} {self.what}: {named}"
                + (f"; and {more} more" if more > 0 else ""))

    def warn(self, total):
        """Issue :meth:`message` as a ``UserWarning`` when anything was skipped."""
        if self.entries:
            warnings.warn(self.message(total), stacklevel=3)


def require_folder(root, layout):
    """``root`` as a ``Path``; ``FileNotFoundError`` saying what ``layout`` was expected when
    it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        what = "no such folder" if not root.exists() else "not a folder"
        raise FileNotFoundError(f"{what}: {root} ({layout})")
    return root

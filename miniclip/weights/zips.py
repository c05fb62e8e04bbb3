"""Opening an untrusted checkpoint: the file itself, and a zip archive checked before any
member is read.

PyTorch files, ``.npz`` files and training states are zip archives. Python's ``zipfile``
trusts the sizes an archive declares and reads or inflates that many bytes, so a few bytes
of damage can make it ask for gigabytes. :class:`Archive` checks every member's declared
sizes against the file before reading it:

* no two members share a name (two readers could otherwise see different data);
* each member is stored or deflated (the two methods PyTorch and NumPy write), and not
  encrypted;
* each member's compressed bytes lie inside the file, and together they fit in it (members
  that overlap are how the classic zip bombs multiply their data);
* a stored member declares as many bytes as it occupies, a deflated one at most
  :data:`DEFLATE_MAX_RATIO` times as many (the most deflate can expand).

Reading a member then allocates at most its declared size, and zip's CRC-32 check still
catches damage inside it.
"""
import collections
import contextlib
import os
import stat
import zipfile

from .errors import DAMAGED, UNSUPPORTED, CheckpointError, parsing, short_repr

__all__ = ["Archive", "DEFLATE_MAX_RATIO", "open_regular_file"]

#: deflate's largest expansion: a 258-byte run costs at least 2 bits, about 1032 to 1.
DEFLATE_MAX_RATIO = 1032

# A deflate stream's own overhead (block headers, the end marker) on top of that ratio.
_DEFLATE_SLACK = 64


def open_regular_file(path):
    """``open(path, "rb")`` for a regular file (following links); a ``CheckpointError`` for
    a folder, a pipe or a device, which would hang or never end (``/dev/zero``)."""
    path = os.fspath(path)
    # O_NONBLOCK: opening a named pipe must not wait for a writer before we can refuse it.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise CheckpointError(path, None, f"is {kind}", f"pass the weights file itself; {UNSUPPORTED}")
    file = os.fdopen(descriptor, "rb")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return file


class Archive:
    """A zip archive whose members' declared sizes were checked against the file.

    Use as a context manager; ``names`` lists the members in archive order, ``name in
    archive`` asks for one, and :meth:`read` returns one member's bytes.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open_regular_file(self.path)
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            with parsing(self.path, None, "corrupt or truncated zip archive"):
                self._zip = zipfile.ZipFile(self._file)
            self._infos = {}
            self._check_members(self._zip.infolist())
        except BaseException:
            self._file.close()
            raise

    def _check_members(self, infos):
        """Refuse member lists and sizes that no honest writer produces (module docstring)."""
        counts = collections.Counter(info.filename for info in infos)
        repeated = [name for name, count in counts.items() if count > 1]
        if repeated:
            raise CheckpointError(self.path, f"member {short_repr(repeated[0])}",
                                  f"appears {counts[repeated[0]]} times in the archive")
        compressed_total = 0
        for info in infos:
            part = f"member {short_repr(info.filename)}"
            if info.flag_bits & 0x1:
                raise CheckpointError(self.path, part, "is encrypted", UNSUPPORTED)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise CheckpointError(self.path, part, f"uses zip compression method "
                                      f"{info.compress_type}, not stored or deflate", UNSUPPORTED)
            if info.header_offset + info.compress_size > self.size:
                raise CheckpointError(self.path, part, f"declares {info.compress_size} bytes at "
                                      f"offset {info.header_offset}, past the end of the "
                                      f"{self.size}-byte file: the file is truncated")
            limit = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
                     else DEFLATE_MAX_RATIO * info.compress_size + _DEFLATE_SLACK)
            if info.file_size > limit or (info.compress_type == zipfile.ZIP_STORED
                                          and info.file_size != info.compress_size):
                raise CheckpointError(self.path, part, f"declares {info.file_size} bytes from "
                                      f"{info.compress_size} stored, which its compression "
                                      "cannot give")
            compressed_total += info.compress_size
            self._infos[info.filename] = info
        if compressed_total > self.size:
            raise CheckpointError(self.path, None, f"its members declare {compressed_total} "
                                  f"bytes in a {self.size}-byte file: they overlap")

    @property
    def names(self):
        return list(self._infos)

    def __contains__(self, name):
        return name in self._infos

    def read(self, name) -> bytes:
        """The bytes of member ``name``; a ``CheckpointError`` naming it if it is missing or
        fails its CRC-32 (damaged) or its deflate stream."""
        part = f"member {short_repr(name)}"
        if name not in self._infos:
            raise CheckpointError(self.path, part, "is missing from the archive")
        try:
            with parsing(self.path, part, "cannot be read"):  # zlib.error, EOFError, ...
                data = self._zip.read(self._infos[name])
        except CheckpointError as error:
            if "CRC" in str(error.__cause__):  # zipfile's "Bad CRC-32 for file ..."
                raise CheckpointError(self.path, part, "fails its CRC-32 check",
                                      DAMAGED) from error.__cause__
            raise
        if len(data) != self._infos[name].file_size:
            raise CheckpointError(self.path, part, f"holds {len(data)} bytes, its header "
                                  f"says {self._infos[name].file_size}")
        return data

    def close(self):
        with contextlib.suppress(Exception):
            self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

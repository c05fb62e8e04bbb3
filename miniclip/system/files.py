"""Atomic file writes, for everything that writes files (weights, training states, downloads).

``atomic_write`` is here, not beside one of its users, because checkpoint formats, the
training state and the download cache all need it and none of them should import another
just for it.
"""
import contextlib
import os
import secrets


@contextlib.contextmanager
def atomic_write(path):
    """Open ``path`` for binary writing so that it appears complete or not at all.

    The data goes to a temporary file in the same folder, which replaces
    ``path`` only once the ``with`` block has finished without error.  If
    anything goes wrong (a bad array, a full disk, Ctrl-C) the temporary file
    is deleted and an existing file at ``path`` is left untouched.  The
    temporary file must be in the same folder because ``os.replace`` is only
    atomic within one file system.
    """
    path = os.fspath(path)
    temporary = f"{path}.{secrets.token_hex(4)}.tmp"
    try:
        # "x" refuses to overwrite: the random suffix should never collide.
        with open(temporary, "xb") as file:
            yield file
            # Make sure the bytes are on disk before the file gets its name.
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise

"""Download OpenAI's released CLIP checkpoints into a local cache.

Each released model is one TorchScript ``.pt`` file, published at an address
that contains the file's SHA-256 hash.  :func:`download` fetches a file once,
checks the hash, and afterwards returns the cached copy::

    path = download("ViT-B/32")   # ~/.cache/miniclip/ViT-B-32.pt

A file only gets its final name after its hash has been checked, so an
interrupted or corrupted download never looks like a finished one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.parse
import urllib.request
import warnings

from tqdm import tqdm

from ..system.files import atomic_write
from .releases import RELEASES, available_models

__all__ = ["BASE_URL", "available_models", "download", "model_url"]

# Where OpenAI publishes the checkpoints; a model's address is
# BASE_URL/<sha256>/<file name>.  A module constant, so that tests (or a
# mirror) can point it somewhere else.
BASE_URL = "https://openaipublic.azureedge.net/clip/models"

_CHUNK_SIZE = 1 << 20  # read and hash 1 MiB at a time, so big files never sit in memory

# Seconds to wait for the server to connect or send more data before giving up; without
# a limit a stalled connection would hang the download forever.
_TIMEOUT = 60


def model_url(name: str) -> str:
    """The download address of a released model."""
    release = RELEASES[name]
    return f"{BASE_URL}/{release.sha256}/{release.file_name}"


def _default_root() -> str:
    """``$MINICLIP_CACHE`` if set, else ``~/.cache/miniclip``."""
    return os.environ.get("MINICLIP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "miniclip")


def _sha256_of_file(path: str) -> str:
    """The SHA-256 of a file as 64 hex digits, read in chunks (checkpoints reach ~1.7 GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(name_or_url: str, root=None, expected_sha256: str | None = None) -> str:
    """Return the path of a cached checkpoint, downloading it first if needed.

    ``name_or_url`` is a name from :func:`available_models` or any URL.  For
    a name the expected hash is known; for a URL pass ``expected_sha256`` to
    have the file checked (without it, any file of that name in the cache is
    trusted).  Files are cached in ``root``, else ``$MINICLIP_CACHE``, else
    ``~/.cache/miniclip``.

    A cached file with the wrong hash is reported with a warning and
    downloaded again.  Raises ``RuntimeError`` naming the URL when the
    download fails, stalls for a minute, is cut short or has the
    wrong hash; no partial file is left behind.
    """
    if name_or_url in RELEASES:
        url = model_url(name_or_url)
        expected_sha256 = expected_sha256 or RELEASES[name_or_url].sha256
    elif re.match(r"[a-z][a-z0-9+.-]*://", name_or_url, re.IGNORECASE):  # "<scheme>://..."
        url = name_or_url
    else:
        raise ValueError(f"unknown model {name_or_url!r}; available models: {', '.join(available_models())}")
    if expected_sha256 is not None:
        expected_sha256 = expected_sha256.lower()

    root = os.fspath(root) if root is not None else _default_root()
    os.makedirs(root, exist_ok=True)
    file_name = os.path.basename(urllib.parse.urlsplit(url).path)
    if file_name in ("", ".", ".."):
        raise ValueError(f"cannot tell a file name from the URL {url!r}")
    path = os.path.join(root, file_name)

    if os.path.isfile(path):
        if expected_sha256 is None:
            return path
        actual = _sha256_of_file(path)
        if actual == expected_sha256:
            return path
        warnings.warn(
            f"{path} has SHA-256 {actual}, expected {expected_sha256}; downloading it again",
            RuntimeWarning,
            stacklevel=2,
        )

    _fetch(url, path, expected_sha256)
    return path


def _fetch(url: str, path: str, expected_sha256: str | None) -> None:
    """Stream ``url`` into ``path``, hashing as we go; keep it only if complete and correct."""
    # atomic_write writes to a temporary file next to `path` and deletes it
    # if anything below raises, so `path` only ever holds a verified file.
    with atomic_write(path) as file:
        digest = hashlib.sha256()
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
                length = response.headers.get("Content-Length", "")
                total = int(length) if length.isdecimal() else None  # absent or malformed: unknown
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=os.path.basename(path)) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK_SIZE), b""):
                        file.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
        # URLError, HTTPError and socket errors are all OSErrors; HTTPException
        # covers malformed responses.
        except (OSError, http.client.HTTPException) as error:
            raise RuntimeError(
                f"downloading {url} failed: {error}. Without a network here, download that URL "
                f"on another machine and load the file by its path (miniclip.load(PATH)), or "
                f"copy it to {path}, where this name looks first") from error

        # http.client does not complain when the server closes the connection
        # early; compare with the announced length ourselves.
        if total is not None and received != total:
            raise RuntimeError(f"downloading {url} failed: the connection closed after {received} of {total} bytes")
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise RuntimeError(f"downloaded {url} but its SHA-256 is wrong: expected {expected_sha256}, got {actual}")

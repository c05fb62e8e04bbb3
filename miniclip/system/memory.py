"""Keeping freed memory for reuse, so that NumPy's temporary arrays don't page-fault.

Every op of a training step makes new arrays: a tiny ViT's step makes hundreds, many of a
few megabytes (an MLP activation ``[64, 17, 512]`` float32 is 2.2 MB). NumPy gets them
from the C library's ``malloc``. glibc's ``malloc`` (Linux) serves a request above its
*mmap threshold* (128 KB at start) with a fresh ``mmap`` of pages from the kernel, and
hands them back with ``munmap`` when the array is freed. So every such array is new
memory: the kernel zeroes each 4 KB page at its first touch (a page fault), about 540
faults for 2.2 MB, and the step spends a third of its time there instead of computing.

glibc adapts by itself: when a mapped block is freed it raises the threshold to that
block's size (up to 32 MB), so that the next ones come from its heap, where freed memory
is reused. But whether a program ever frees a block big enough to trigger that depends on
chance (on what its start-up happened to allocate and free). :func:`reuse_freed_memory`
makes it certain:
it sets the threshold at its maximum, and keeps up to twice that of freed memory at the
top of the heap (the *trim threshold*, which is what glibc's own adaptation sets it to;
without it the heap's freed top would go back to the kernel and be faulted in again).

The cost is memory: up to 64 MB freed memory stays with the process instead of going back
to the system. Nothing changes off glibc (macOS, Windows, musl), or when the user set
``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` (glibc's own variables) themselves.
"""
import ctypes
import os

#: ``mallopt`` parameter numbers, from glibc's ``malloc.h``.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3

#: The largest mmap threshold glibc accepts on a 64-bit machine (``HEAP_MAX_SIZE / 2``),
#: and the trim threshold glibc itself pairs with it.
MMAP_THRESHOLD = 32 * 2 ** 20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

#: glibc's environment variables for the same settings; a user who set them meant it.
ENV_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _mallopt():
    """glibc's ``mallopt`` as a ctypes function, or None where there is none.

    ``CDLL(None)`` is this process's own symbol table: the C library already loaded, whose
    ``malloc`` NumPy uses (no search of the disk for a ``libc``)."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # Windows has no process-wide symbol table to open
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc: other allocators differ
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def reuse_freed_memory(environ=os.environ):
    """Make glibc's ``malloc`` keep freed blocks of up to 32 MB for reuse (module docstring);
    returns a one-line description of what was done, for the program's log.

    Call it once at start-up. It affects the whole process, and only how memory is
    recycled, never a result.
    """
    if any(environ.get(name) for name in ENV_VARS):
        return "memory reuse: left to the MALLOC_*_THRESHOLD_ variables you set"
    mallopt = _mallopt()
    if mallopt is None:
        return "memory reuse: left to the system allocator (not glibc)"
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "memory reuse: glibc refused the settings; left as they were"
    return (f"memory reuse: blocks up to {MMAP_THRESHOLD >> 20} MB are recycled, not "
            f"returned to the system")

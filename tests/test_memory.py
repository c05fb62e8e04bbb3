"""Keeping freed memory for reuse (``miniclip/system/memory.py``): that glibc then serves
a big array from its heap instead of fresh pages, and keeps the heap after the array is
freed. Measured in a child process, since the setting lasts for the whole process."""
import ctypes
import subprocess
import sys
import textwrap

import pytest

from miniclip.system import memory

# The probe allocates an 8 MB array (far above glibc's starting 128 KB mmap threshold),
# reads mallinfo2's bytes in mapped blocks while it lives, frees it, then reads the heap's
# size. It prints "mapped_bytes heap_bytes_after_free".
PROBE = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from miniclip.system.memory import reuse_freed_memory

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    if sys.argv[1] == "reuse":
        reuse_freed_memory({})
    array = np.ones(2 ** 20)  # [1M] float64: 8 MB
    mapped = libc.mallinfo2().hblkhd
    del array
    print(mapped, libc.mallinfo2().arena)
""")

EIGHT_MB = 8 * 2 ** 20


def has_mallinfo2():
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")  # glibc >= 2.33
    except OSError:
        return False


def probe(mode):
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                            text=True, check=True, env={"PATH": ""})
    return tuple(int(field) for field in result.stdout.split())


@pytest.mark.skipif(not has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_without_it_a_big_array_is_fresh_mapped_memory():
    mapped, _ = probe("default")
    assert mapped >= EIGHT_MB


@pytest.mark.skipif(not has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_with_it_a_big_array_comes_from_the_heap_which_keeps_it_after_the_free():
    mapped, heap_after_free = probe("reuse")
    assert mapped < EIGHT_MB                # not mmapped: the mmap threshold was raised
    assert heap_after_free >= EIGHT_MB      # not trimmed: the trim threshold was raised


def test_glibc_s_own_variables_are_respected():
    message = memory.reuse_freed_memory({"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert "MALLOC_*_THRESHOLD_" in message


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(memory, "_mallopt", lambda: None)
    assert "not glibc" in memory.reuse_freed_memory({})

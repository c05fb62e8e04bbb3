"""What NumPy's matrix products run on, and how fast they can go: the BLAS library, its
kernel and threads, and the machine's measured float32 matrix-product peak.

OpenBLAS picks its kernel (the inner loops written for one CPU family) when it loads: from
the CPU it finds, unless ``OPENBLAS_CORETYPE`` names another. ``Haswell`` (AVX2) on a CPU
with AVX-512 runs float32 products at less than half the speed of its own ``SkylakeX``
kernel, so a benchmark that does not say which kernel ran says little.

The peak is measured, not looked up: a few square float32 products (``PEAK_SIZE``) timed
with the BLAS threads in use, the best run kept, once per process and thread count. Model
FLOP utilisation is then ``achieved FLOP/s / matmul_peak_flops()`` (``models/flops.py``
counts the model's FLOPs), as llm.c reports it: the share of what this machine's products
reach that the whole program reaches.

Standard library and NumPy only, like the rest of ``system/``.
"""
import ctypes
import functools
import time

import numpy as np

from .threads import blas_threads, openblas_symbol

#: OpenBLAS's kernel-name getters, by build (see ``threads.SETTERS``).
CORENAMES = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename_64_",
             "openblas_get_corename64_", "openblas_get_corename")

#: The side of the square float32 products the peak probe times: 2 x 1536³ = 7.2 GFLOP
#: each, large enough for BLAS to reach its rate, about 50 ms per product on one core.
PEAK_SIZE = 1536


def blas_kernel():
    """The name of the kernel OpenBLAS chose (``"SkylakeX"``, ``"Haswell"``...), or None
    when NumPy's BLAS is not an OpenBLAS that says."""
    getter = openblas_symbol(CORENAMES)
    if getter is None:
        return None
    getter.argtypes, getter.restype = [], ctypes.c_char_p
    return getter().decode()


def blas_library():
    """NumPy's BLAS as ``"name version"`` (e.g. ``"scipy-openblas 0.3.31.188.0"``), as its
    build configuration records it."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy 1.x prints its configuration only
        return "unknown BLAS"
    return f"{blas.get('name', 'unknown BLAS')} {blas.get('version', '')}".strip()


def blas_description():
    """One line for a log: the library, its kernel and its thread count."""
    threads = blas_threads()
    return (f"BLAS: {blas_library()}, kernel {blas_kernel() or 'unknown'}, "
            f"{threads if threads is not None else 'unknown'} thread"
            f"{'' if threads == 1 else 's'}")


def matmul_peak_flops(repeats=3, clock=time.perf_counter):
    """The float32 matrix-product rate of this machine with the BLAS threads in use, in
    FLOP/s: the best of ``repeats`` timed ``PEAK_SIZE`` products after one warm-up (about
    0.2 s on one core), by ``clock`` (``time.process_time`` gives the rate per CPU second
    of one thread). Measured once per process, thread count and clock."""
    return _measured_peak(blas_threads(), repeats, clock)


@functools.lru_cache(maxsize=None)
def _measured_peak(threads, repeats, clock):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32) for _ in range(2))
    out = a @ b  # warm-up: pages touched, threads started
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        np.matmul(a, b, out=out)
        best = min(best, clock() - start)
    return 2 * PEAK_SIZE ** 3 / best


def model_flops_utilization(flops, seconds, peak=None):
    """The share of the peak (``matmul_peak_flops()`` unless given) that ``flops`` model
    FLOPs done in ``seconds`` reach (0..1, or above when the peak was measured while the
    machine was busier)."""
    return flops / seconds / (matmul_peak_flops() if peak is None else peak)

"""Choosing how many threads BLAS may use, at run time, from the cores that are free.

NumPy hands matrix products to a BLAS library (OpenBLAS in the wheels on PyPI), which
starts one thread per core it sees. On a busy machine those threads fight the other
programs' for the same cores: each waits for its slowest sibling at every matrix product,
and a run that takes a minute alone can take ten. One thread per *free* core avoids it.

The thread count is normally fixed by ``OPENBLAS_NUM_THREADS`` before NumPy is imported;
:func:`limit_blas_threads` changes it afterwards, as ``threadpoolctl`` does (without adding
it as a dependency): it finds the OpenBLAS library NumPy has loaded (listed in
``/proc/self/maps`` on Linux, or in the ``numpy.libs``/``.dylibs`` folder next to NumPy)
and calls its ``openblas_set_num_threads`` entry point through ``ctypes``. NumPy's own
OpenBLAS is built with a symbol suffix (``scipy_openblas_set_num_threads64_`` in NumPy 2,
``openblas_set_num_threads64_`` in NumPy 1.x); every known spelling is tried.

The count is, in order of precedence: the ``threads`` argument (``--threads`` of the
training program), the ``MINICLIP_NUM_THREADS`` variable, ``OPENBLAS_NUM_THREADS`` or
``OMP_NUM_THREADS`` if the user set them, and otherwise the cores this process may run on
(``os.sched_getaffinity``) less the cores other programs keep busy (the threads runnable
over a fifth of a second; ``os.getloadavg`` where that can't be read), at least 1. It is
chosen once, at start-up: a program started later is not seen. When nothing can be set
(another BLAS, an unknown build, no ``ctypes`` access) it says so and changes nothing: set
``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) before starting
Python instead.

It uses only the standard library and NumPy, so anything may import it early.
"""
import ctypes
import glob
import math
import os
import time

#: The environment variable that overrides the automatic choice.
ENV_VAR = "MINICLIP_NUM_THREADS"

#: OpenBLAS's thread-count setters, by build: NumPy 2's scipy-openblas (64-bit ints, two
#: spellings), NumPy 1.x's 64-bit-int build, and a plain system OpenBLAS.
SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads_64_",
           "openblas_set_num_threads64_", "openblas_set_num_threads")
GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads_64_",
           "openblas_get_num_threads64_", "openblas_get_num_threads")


def available_cores():
    """The number of cores this process may run on (its CPU affinity, which containers and
    ``taskset`` restrict), or ``os.cpu_count()`` where affinity is unknown."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_thread_count(threads=None, environ=os.environ, cores=None, load=None, processes=1):
    """``(count, why)``: how many BLAS threads to use, and what decided it.

    ``threads`` if given, else ``$MINICLIP_NUM_THREADS``, else ``$OPENBLAS_NUM_THREADS`` or
    ``$OMP_NUM_THREADS`` (a user who set them meant it), else this process's share of the
    free cores: ``(cores - floor(load)) // processes``, at least 1. ``processes`` is how
    many processes of one job share this machine (the ranks of a ``--distributed`` run on
    it, which would otherwise each take every free core and fight over them). They start
    together, so ``load`` counts the other ``processes - 1`` as busy; that part of it is taken off
    before the free cores are shared out, or 8 ranks on 16 cores would take 1 thread each.
    ``cores`` defaults to :func:`available_cores`, ``load`` to :func:`other_load`.
    """
    if threads is not None:
        return _positive(threads), "--threads"
    for name in (ENV_VAR, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if environ.get(name):
            return _positive(environ[name]), name
    cores = available_cores() if cores is None else cores
    load = other_load() if load is None else load
    # Only whole busy cores count: a load of 0.7 (a program busy 70% of the time) leaves
    # both of 2 cores to us, a load of 1.1 one of them.
    outside = max(0.0, load - (processes - 1))  # the load of programs outside this job
    free = max(1, min(cores, cores - int(math.floor(outside))))
    shared = f", shared by {processes} processes" if processes > 1 else ""
    return max(1, free // processes), f"{cores} cores, load {load:.1f}{shared}"


def other_load(samples=10, interval=0.02, path="/proc/loadavg"):
    """How many cores other programs keep busy now.

    On Linux, the mean number of other threads runnable over ``samples`` reads of
    ``/proc/loadavg`` (``path``) ``interval`` seconds apart (its fourth field, "runnable/all", counts
    this reading thread too). Elsewhere, the one-minute load average. The average lags a
    minute both ways: it would hide a run started together with this one, and it would count
    a program that has just ended, halving an idle run's threads; the instant count does
    neither.

    Between reads it spins instead of sleeping, so that it is runnable itself: two programs
    started together reach this point together, and if both slept through their reads,
    each would find the other asleep and take every core.
    """
    counts = []
    for sample in range(samples):
        try:
            with open(path) as file:
                counts.append(int(file.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        deadline = time.perf_counter() + interval * (sample + 1 < samples)
        while time.perf_counter() < deadline:  # spin, not sleep: see the docstring
            pass
    return sum(counts) / len(counts)


def _positive(value):
    count = int(value)
    if count < 1:
        raise ValueError(f"the number of BLAS threads must be at least 1, got {value!r}")
    return count


def _loaded_libraries():
    """Paths of the shared libraries this process has mapped, as far as they can be found:
    ``/proc/self/maps`` (Linux), else the libraries bundled next to NumPy."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if ".so" in line and "/" in line})
    except OSError:
        import numpy
        root = os.path.dirname(os.path.dirname(numpy.__file__))
        return sorted(glob.glob(os.path.join(root, "numpy*libs", "*")))


def openblas_symbol(names):
    """The first of ``names`` that the OpenBLAS NumPy uses exports, as a ctypes function
    (its types still to be set), or None (no such symbol, or NumPy linked to MKL or
    Accelerate)."""
    import numpy  # noqa: F401  (loads NumPy's BLAS, so that it is mapped)
    for path in _loaded_libraries():
        if "blas" not in os.path.basename(path).lower():
            continue
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        symbol = next((getattr(library, name) for name in names if hasattr(library, name)), None)
        if symbol is not None:
            return symbol
    return None


def openblas_functions():
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS NumPy uses, as ctypes
    functions, or ``(None, None)`` if there is none (NumPy linked to MKL or Accelerate)."""
    setter, getter = openblas_symbol(SETTERS), openblas_symbol(GETTERS)
    if setter is None or getter is None:
        return None, None
    # The argument is a C int in every build (even the 64-bit-integer ones).
    setter.argtypes, setter.restype = [ctypes.c_int], None
    getter.argtypes, getter.restype = [], ctypes.c_int
    return setter, getter


def blas_threads():
    """The number of threads NumPy's OpenBLAS uses now, or None if it cannot be read."""
    _, getter = openblas_functions()
    return None if getter is None else int(getter())


def limit_blas_threads(threads=None, environ=os.environ, processes=1):
    """Set NumPy's BLAS thread count (:func:`choose_thread_count`, ``processes`` the
    processes of this job on this machine); returns a one-line description of what was
    done, for the program's log.

    Run it once at start-up, before the first big matrix product: the count applies to
    every later NumPy call of the process.
    """
    count, why = choose_thread_count(threads, environ, processes=processes)
    setter, getter = openblas_functions()
    if setter is None:
        return (f"BLAS threads: not set (no OpenBLAS found in this NumPy); set "
                f"OPENBLAS_NUM_THREADS={count} before starting Python")
    setter(count)
    return f"BLAS threads: {getter()} ({why})"

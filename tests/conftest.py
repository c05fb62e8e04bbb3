"""Shared test set-up: the devices every op and module test runs on.

``cpu`` is NumPy; ``strict`` is the CuPy stand-in of ``strict_backend.py`` (refuses
implicit NumPy conversion); ``cuda`` is added when CuPy and a GPU are present, so the
same suite is the CuPy suite on a machine with a GPU.
"""
import os
import sys

# One BLAS thread per process: the suite runs as two pytest-xdist workers (and notebook
# kernels) on two cores, where OpenBLAS's own threads would fight the other process for
# them and slow small matrix products down many times. Set before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import strict_backend  # noqa: E402,F401  (registers the "strict" device)


def _cuda_available():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver or no GPU: all mean "skip cuda"
        return False


DEVICES = ["cpu", "strict"] + (["cuda"] if _cuda_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test once per device (cpu, strict, and cuda when there is a GPU)."""
    return request.param

"""Shared test set-up: the devices every op and module test runs on, ``cpu`` and ``cuda``.

``cuda`` is miniclip's real CuPy device. On a machine with CuPy and a GPU it runs on the
GPU; everywhere else (CI) a fake ``cupy`` (``fake_cupy.py``) is installed first, so the
same device code runs on arrays that behave like CuPy's but live in host memory.
"""
import os
import sys

# One BLAS thread per process: the suite runs as two pytest-xdist workers (and notebook
# kernels) on two cores, where OpenBLAS's own threads would fight the other process for
# them and slow small matrix products down many times. Set before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import collections  # noqa: E402
import contextlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import fake_cupy  # noqa: E402


def _gpu_available():
    """Whether real CuPy sees a GPU (asked in a child process, so that this one imports
    nothing of CuPy: miniclip must be the first to ask for it, lazily)."""
    import subprocess

    probe = "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


GPU = _gpu_available()
if not GPU:
    fake_cupy.install()

DEVICES = ["cpu", "cuda"]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test once per device: cpu, and cuda (a real GPU, or the fake CuPy)."""
    return request.param


def pytest_report_header(config):
    return "cuda device: " + ("real CuPy on a GPU" if GPU else "fake CuPy (tests/fake_cupy.py)")


@contextlib.contextmanager
def recorded_dtypes(device):
    """Yields {op name: Counter of dtypes}, filled with the output of every op's forward and
    every gradient a backward hands to the engine (before the engine casts it to its
    input's dtype) inside the block; on the fake CuPy also, under "any array created", the
    dtype of every array created, intermediates included."""
    from miniclip import autograd

    seen = collections.defaultdict(collections.Counter)
    call, fit = autograd.Function.__call__, autograd._fit_gradient

    def recording_call(self, *inputs):
        outputs = call(self, *inputs)
        for out in outputs if isinstance(outputs, tuple) else (outputs,):
            seen[type(self).__name__][out.dtype] += 1
        return outputs

    def recording_fit(grad, tensor, fn):
        seen[type(fn).__name__ + ".backward"][grad.dtype] += 1
        return fit(grad, tensor, fn)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(autograd.Function, "__call__", recording_call)
        patch.setattr(autograd, "_fit_gradient", recording_fit)
        if device == "cuda" and not GPU:
            with fake_cupy.record_dtypes() as created:
                yield seen
            seen["any array created"] = created
        else:
            yield seen


def where(seen, dtype):
    """The names in a ``recorded_dtypes`` record that saw ``dtype``."""
    return sorted(name for name, counts in seen.items() if counts[np.dtype(dtype)])

"""``miniclip.system.blas``: which BLAS kernel runs, and the measured matmul peak."""
import subprocess
import sys

import pytest

from miniclip.system import blas

pytestmark = pytest.mark.skipif(blas.blas_kernel() is None, reason="NumPy's BLAS is not OpenBLAS")


def kernel_in_a_process(environment):
    code = "from miniclip.system.blas import blas_kernel; print(blas_kernel())"
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_kernel_is_the_one_openblas_coretype_names():
    assert kernel_in_a_process({"OPENBLAS_CORETYPE": "Haswell"}) == "Haswell"


def test_the_description_names_library_kernel_and_threads():
    line = blas.blas_description()
    assert line.startswith("BLAS: ") and f"kernel {blas.blas_kernel()}," in line
    assert line.endswith("thread") or line.endswith("threads")


def test_the_peak_is_measured_once_per_process():
    first = blas.matmul_peak_flops(repeats=1)
    assert first > 1e8 and blas.matmul_peak_flops(repeats=1) == first


def test_utilization_is_the_achieved_rate_over_the_peak():
    assert blas.model_flops_utilization(3e9, 2.0, peak=6e9) == pytest.approx(0.25)

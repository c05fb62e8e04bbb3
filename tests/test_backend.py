"""The array backends: devices by name, moving arrays, and never touching a GPU API on import."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import GPU
from miniclip import Tensor, backend


def test_importing_miniclip_and_using_the_cpu_never_imports_cupy():
    code = ("import sys, numpy as np, miniclip\n"
            "x = miniclip.Tensor(np.ones(3), requires_grad=True)\n"
            "(x * 2).sum().backward()\n"
            "miniclip.create_model('tiny-vit')\n"
            "print('cupy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_first_cuda_array_of_a_fresh_process_is_known_as_a_cuda_array():
    # The lazy import path, run from the start: in this test process the cuda module may
    # already be loaded by an earlier test, which would hide a to_device that bypasses it.
    tests = os.path.dirname(__file__)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import fake_cupy, conftest\n"
            "import numpy as np, miniclip\n"
            "x = miniclip.Tensor(np.ones(3), requires_grad=True, device='cuda')\n"
            "y = (x * 2).sum()\n"
            "y.backward()\n"
            "print(x.device.name, y.device.name, type(x.grad).__module__.split('.')[0])") % tests
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    expected_module = "cupy" if GPU else "fake_cupy"
    assert result.stdout.split() == ["cuda", "cuda", expected_module]


def test_devices_are_found_by_name_with_or_without_an_index():
    assert backend.get_device("cpu") is backend.CPU
    assert backend.get_device("cuda:1") is backend.CUDA


def test_an_unknown_device_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown device 'tpu'.*'cpu'"):
        backend.get_device("tpu")


def test_moving_an_array_copies_it_between_devices(device):
    host = np.arange(6.0).reshape(2, 3)
    moved = backend.move(host, device)
    assert backend.device_of(moved).name == device
    assert np.array_equal(backend.to_numpy(moved), host)
    assert backend.move(moved, device) is moved  # already there: no copy


def test_get_array_module_gives_the_devices_module(device):
    array = backend.move(np.ones(2), device)
    assert backend.get_array_module(array) is backend.get_device(device).xp


def test_erf_matches_the_standard_library_to_float64_round_off(device):
    import math
    x = np.linspace(-6, 6, 1201)
    got = backend.to_numpy(backend.erf(backend.move(x, device)))
    assert np.max(np.abs(got - [math.erf(v) for v in x])) < 1e-15


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_keeps_the_dtype_of_its_input(device, dtype):
    x = backend.move(np.linspace(-3, 3, 7).astype(dtype), device)
    assert backend.erf(x).dtype == dtype


def test_cuda_without_cupy_explains_how_to_install_it(monkeypatch):
    monkeypatch.setattr(backend.CUDA, "_module", None)  # as before the first cuda array
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(RuntimeError, match="pip install cupy-cuda12x"):
        Tensor(np.ones(2)).to("cuda")


def test_finite_flags_tells_which_arrays_hold_inf_or_nan(device):
    arrays = [backend.move(np.array(values), device)
              for values in ([1.0, 2.0], [1.0, np.inf], [np.nan], [0.0])]
    assert backend.finite_flags(arrays).tolist() == [True, False, False, True]
    assert backend.finite_flags([]).tolist() == []

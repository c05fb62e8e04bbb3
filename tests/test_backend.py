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


@backend.fuse
def _scaled_sum_and_product(xp, x, y):
    return 2.0 * x + y, xp.exp(x) * y


@backend.fuse
def _reshaping(xp, x):
    return x.reshape(-1)


@backend.fuse
def _moment_update(xp, m, g, rate):
    m += rate * (g - m)


def test_a_fused_function_gives_its_array_code_results_on_every_device(device):
    x, y = (backend.move(np.array(v, np.float32), device) for v in ([0.5, -1.0], [2.0, 3.0]))
    total, product = _scaled_sum_and_product(x, y)
    np.testing.assert_allclose(backend.to_numpy(total), [3.0, 1.0])
    np.testing.assert_allclose(backend.to_numpy(product), np.exp([0.5, -1.0]) * [2.0, 3.0],
                               rtol=1e-6)
    assert backend.device_of(total).name == device and total.dtype == np.float32


def test_a_fused_function_updates_its_arguments_in_place(device):
    m = backend.move(np.zeros(3, np.float32), device)
    _moment_update(m, backend.move(np.ones(3, np.float32), device), np.float32(0.25))
    np.testing.assert_allclose(backend.to_numpy(m), [0.25] * 3)


def test_what_cupy_cannot_fuse_falls_back_to_array_code_with_a_warning(device):
    x = backend.move(np.arange(4.0).reshape(2, 2), device)
    if device == "cpu":  # NumPy runs the plain code: nothing to fall back from
        assert backend.to_numpy(_reshaping(x)).tolist() == [0.0, 1.0, 2.0, 3.0]
        return
    with pytest.warns(RuntimeWarning, match="could not compile _reshaping"):
        assert backend.to_numpy(_reshaping(x)).tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.skipif(GPU, reason="checks the fake CuPy's imitation of cupy.fuse")
def test_the_fake_cupy_fuse_traces_on_stand_ins_that_are_not_arrays():
    import fake_cupy

    cupy = backend.get_device("cuda").xp
    seen = []
    traced = cupy.fuse(lambda x: seen.append(type(x)) or x * 2)
    traced(cupy.asarray(np.ones(2)))
    assert seen == [fake_cupy.FusionArgument] * 2   # the trace, then the run
    with pytest.raises(TypeError, match="expected an array of a known device"):
        cupy.fuse(lambda x: backend.get_array_module(x).exp(x))(cupy.asarray(np.ones(2)))
    with pytest.raises(TypeError, match="stack is not supported inside a fused function"):
        cupy.fuse(lambda x: cupy.stack([x, x]))(cupy.asarray(np.ones(2)))

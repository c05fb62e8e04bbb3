"""Choosing BLAS threads at run time (``miniclip/training/threads.py``): the count, and that setting
it through ctypes reaches the OpenBLAS NumPy really uses."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from miniclip.training import threads


def test_thread_count_takes_the_flag_then_the_variables_then_the_free_cores():
    env = {"MINICLIP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "5"}
    assert threads.choose_thread_count(2, env, cores=8, load=0)[0] == 2
    assert threads.choose_thread_count(None, env, cores=8, load=0) == (3, "MINICLIP_NUM_THREADS")
    assert threads.choose_thread_count(None, {"OPENBLAS_NUM_THREADS": "5"}, cores=8,
                                       load=0) == (5, "OPENBLAS_NUM_THREADS")
    # no setting: the cores the load leaves free, at least one, at most all
    assert threads.choose_thread_count(None, {}, cores=2, load=0.2)[0] == 2
    assert threads.choose_thread_count(None, {}, cores=2, load=0.9)[0] == 2  # a fading load
    assert threads.choose_thread_count(None, {}, cores=2, load=1.1)[0] == 1  # another run
    assert threads.choose_thread_count(None, {}, cores=2, load=6.0)[0] == 1
    assert threads.choose_thread_count(None, {}, cores=16, load=3.6)[0] == 13


def test_a_thread_count_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        threads.choose_thread_count(None, {"MINICLIP_NUM_THREADS": "0"})


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_available_cores_is_this_process_s_affinity():
    assert threads.available_cores() == len(os.sched_getaffinity(0))


def numpy_blas_name():
    """The BLAS NumPy was built with, as NumPy >= 1.25 reports it ("" if it can't)."""
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):
        return ""


def test_limit_blas_threads_sets_numpy_s_own_openblas():
    before = threads.blas_threads()
    if before is None:
        assert "openblas" not in numpy_blas_name(), "NumPy's OpenBLAS was not found"
        pytest.skip("this NumPy is not linked to OpenBLAS")
    try:
        assert threads.limit_blas_threads(2, environ={}) == "BLAS threads: 2 (--threads)"
        assert threads.blas_threads() == 2
        assert threads.limit_blas_threads(None, {"MINICLIP_NUM_THREADS": "1"}).startswith(
            "BLAS threads: 1")
        assert threads.blas_threads() == 1
        a = np.random.default_rng(0).standard_normal((64, 64))
        np.testing.assert_allclose(a @ np.eye(64), a)  # BLAS still works after the change
    finally:
        threads.limit_blas_threads(before, environ={})


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux only")
def test_other_load_sees_a_program_busy_right_now():
    # A one-minute average would barely have moved a third of a second after it started.
    time.sleep(0.3)  # OpenBLAS's threads spin a little after their last matrix product
    before = threads.other_load(samples=25)  # half a second, to average others' bursts
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.other_load(samples=25) >= before + 0.5  # others' load moves it a little
    finally:
        busy.kill()
        busy.wait()

"""Choosing BLAS threads at run time (``miniclip/system/threads.py``): the count, and that setting
it through ctypes reaches the OpenBLAS NumPy really uses."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from miniclip.system import threads


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


def test_processes_of_one_job_on_a_machine_share_its_free_cores():
    # two ranks started together on an idle 2-core machine: one thread each, not two
    assert threads.choose_thread_count(None, {}, cores=2, load=0, processes=2)[0] == 1
    assert threads.choose_thread_count(None, {}, cores=16, load=0.5, processes=4)[0] == 4
    assert threads.choose_thread_count(None, {}, cores=2, load=1.2, processes=2)[0] == 1
    # the other ranks, busy starting too, are not load from outside the job
    assert threads.choose_thread_count(None, {}, cores=16, load=7.1, processes=8)[0] == 2
    assert threads.choose_thread_count(None, {}, cores=16, load=9.0, processes=8)[0] == 1
    assert "shared by 4 processes" in threads.choose_thread_count(None, {}, cores=16, load=0,
                                                                  processes=4)[1]
    assert threads.choose_thread_count(3, {}, cores=2, load=0, processes=2)[0] == 3  # --threads


# Waits (sleeping) until the wall-clock time argv[1], then prints what other_load sees.
SAMPLE_AT = """
import sys, time
from miniclip.system.threads import other_load
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
print(other_load())
"""


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux only")
def test_two_programs_measuring_the_load_at_the_same_moment_see_each_other():
    # Two runs started together measure together; each must count the other as a busy core
    # (if both slept between reads, both would see an idle machine and take every core).
    # The second starts half a read interval (10 ms) after the first, as two programs
    # started together would, rather than in lockstep, where sleepers wake and read together.
    start = time.time() + 1.5  # after both have imported
    children = [subprocess.Popen([sys.executable, "-c", SAMPLE_AT, str(start + offset)],
                                 stdout=subprocess.PIPE, text=True) for offset in (0, 0.01)]
    loads = [float(child.communicate(timeout=60)[0]) for child in children]
    assert min(loads) >= 0.5, loads


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


def test_other_load_counts_the_threads_runnable_now_not_the_minute_s_average(tmp_path):
    # /proc/loadavg: three load averages, then "runnable/all" (the reader included), then
    # the last process id. Here 3 runnable: the reader and two others, on a machine whose
    # averages are still near zero (they lag a minute behind).
    fake = tmp_path / "loadavg"
    fake.write_text("0.05 0.10 0.20 3/412 98765\n")
    assert threads.other_load(samples=3, interval=0, path=str(fake)) == 2.0
    assert threads.choose_thread_count(None, {}, cores=2,
                                       load=threads.other_load(1, 0, str(fake)))[0] == 1

"""Data-parallel training under a real ``mpiexec -n 2`` on loopback (MPICH from the dev
requirements: ``pip install mpi4py mpich`` puts ``mpiexec`` beside the Python executable)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "mpi_program.py"
TIMEOUT = 60  # seconds; every run here takes a few


def mpiexec():
    """The ``mpiexec`` of this Python's environment (the mpich wheel installs it beside the
    interpreter), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail(f"no mpiexec beside {sys.executable} or on PATH: the distributed tests need "
                    "MPI, `pip install -r requirements-dev.txt` (mpi4py and mpich)")
    return found


def run(args, processes=2):
    """Run ``python ARGS`` in ``processes`` ranks (one plain process for 0), one BLAS thread
    each, importing this checkout's miniclip."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    launcher = [mpiexec(), "-n", str(processes)] if processes else []
    return subprocess.run(launcher + [sys.executable] + [str(a) for a in args], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_one_step_on_two_processes_gives_the_weights_of_one_process_on_the_double_batch(device):
    """On ``cuda`` (the fake CuPy, which has no NCCL) the collectives are host-staged."""
    result = run([PROGRAM, "step", device])
    assert result.returncode == 0, result.stderr
    assert "rank 0: step ok" in result.stdout and "rank 1: step ok" in result.stdout


#: float16's machine epsilon, 2⁻¹⁰: the spacing of float16 numbers just above 1.
FLOAT16_EPS = float(np.finfo(np.float16).eps)
#: The most terms one gradient entry of the tiny ViT sums in this step: the text tower's
#: biases and weights sum over every token position of the batch, 8 captions x 32 positions.
MOST_TERMS = 8 * 32


def test_one_mixed_precision_step_on_two_processes_gives_the_update_of_one_process():
    """``--distributed --amp``: the ranks' float16 backward passes each sum 4 rows where one
    process sums 8, and round those partial sums to float16 (relative error up to eps/2
    each). Such round-off adds up like a random walk over the K terms of a gradient entry,
    to about sqrt(K) eps of the terms' size, which bounds the update's size except where
    the terms cancel (the biases come closest). So each parameter's update may differ by
    sqrt(K) eps = 16 x 2⁻¹⁰ = 1.6e-2 of its largest entry; the tiny ViT's worst is 9.4e-3
    (a text MLP bias), its weights' about 2e-3. A step that skips the all-reduce leaves
    the ranks' weights apart; one that clips each rank's own gradient before it misses the
    update by 0.6 of its size."""
    tolerance = np.sqrt(MOST_TERMS) * FLOAT16_EPS
    result = run([PROGRAM, "amp-step", tolerance])
    assert result.returncode == 0, result.stderr
    assert "rank 0: amp step ok" in result.stdout and "rank 1: amp step ok" in result.stdout


def test_a_rank_that_raises_ends_the_job_with_an_error_naming_it():
    result = run([PROGRAM, "raise"])  # rank 0 waits in an all-reduce: a hang without abort
    assert result.returncode != 0
    assert "error: rank 1 of 2 failed: RuntimeError: planted failure" in result.stderr


def test_a_killed_rank_ends_the_job_with_an_error():
    result = run([PROGRAM, "kill"])
    assert result.returncode != 0
    assert "BAD TERMINATION" in result.stdout + result.stderr


def losses(folder):
    with np.load(folder / "checkpoint.npz") as file:
        return json.loads(str(file["meta"]))["extra"]["history"]["losses"]


def test_two_processes_train_as_one_resume_with_two_and_refuse_one(tmp_path):
    tiny = ["-m", "miniclip.train", "--tiny", "--batch-size", "8", "--train-size", "64",
            "--eval-size", "60", "--warmup", "1", "--quiet"]
    two, one = tmp_path / "two", tmp_path / "one"
    distributed = run(tiny + ["--steps", "3", "--distributed", "--out", two])
    assert distributed.returncode == 0, distributed.stderr
    assert distributed.stdout.count("training steps 1..3") == 1  # rank 0 alone prints
    assert "2 processes: rank 0 spent" in distributed.stdout
    single = run(tiny + ["--steps", "3", "--out", one], processes=0)
    assert single.returncode == 0, single.stderr
    assert losses(two) == pytest.approx(losses(one), rel=1e-5)
    # one writer (rank 0: checkpoint, metrics, plots), no temporaries left behind
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())

    resumed = run(tiny + ["--steps", "4", "--distributed", "--out", two, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("training steps 4..4") == 1
    assert len(losses(two)) == 4

    refused = run(tiny + ["--steps", "5", "--out", two, "--resume"], processes=0)
    assert refused.returncode != 0
    assert "world_size 2 -> 1" in refused.stderr

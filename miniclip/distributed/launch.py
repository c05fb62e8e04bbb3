"""``python -m miniclip.train --distributed``: one rank of an MPI job.

``mpiexec -n 4 python -m miniclip.train --tiny --distributed`` starts four processes
that each run ``training.run.train`` with their ``MPIWorld``: ``--batch-size`` is the global
batch, split evenly over the ranks; each rank reads its own rows (``shard.py``); only rank
0 prints, evaluates and writes checkpoints (the other ranks' standard output goes
nowhere, and their progress bars are off).

**Failures end the job.** A rank that raises while the others wait in a collective would
leave them waiting forever (an MPI program that exits with an exception still calls
``MPI_Finalize``, which waits for the others too). ``abort_on_error`` prints the
traceback and a line naming the rank, then calls ``MPI_Abort``, which makes ``mpiexec``
kill every rank and exit with an error. A rank killed outright (out of memory, a signal)
is noticed by ``mpiexec`` itself, which ends the job the same way.
"""
import contextlib
import dataclasses
import os
import traceback

from ..system.program import UsageError
from ..system.threads import limit_blas_threads


def run(train, config):
    """``train(config, world)`` as this process's rank (``config``: a
    ``training.config.RunConfig``); returns its result."""
    try:
        from .comm import connect
        world = connect(config.device)
    except ImportError as error:
        raise UsageError(f"--distributed needs mpi4py and an MPI library ({error}); "
                         "install them with `pip install mpi4py mpich` "
                         "(or `pip install -e .[mpi]`)") from error
    with abort_on_error(world):
        # The ranks on this machine share its free cores (threads.choose_thread_count).
        print(limit_blas_threads(config.threads, processes=world.local_size))
        if world.rank == 0:
            result = train(config, world)
            print(f"{world.size} processes: rank 0 spent {world.seconds:.2f} s in collectives, "
                  f"{world.seconds / max(result['train_seconds'], 1e-9):.1%} of the training time")
        else:
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                result = train(dataclasses.replace(config, quiet=True), world)
    return result


@contextlib.contextmanager
def abort_on_error(world):
    """Abort the whole MPI job, naming this rank, if the block raises (module docstring)."""
    try:
        yield
    except BaseException as error:  # noqa: B902 -- KeyboardInterrupt must end the job too
        world.abort(f"{traceback.format_exc()}error: rank {world.rank} of {world.size} "
                    f"failed: {type(error).__name__}: {error}\nAborting all {world.size} "
                    "ranks (MPI_Abort).")

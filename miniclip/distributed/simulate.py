"""Simulated ranks: a world of threads in one process, with ``MPIWorld``'s collectives.

``simulate(2, function)`` runs ``function(world)`` in two threads, one per rank, and
returns their results in rank order. The collectives meet at a barrier and combine the
ranks' arrays in rank order, so every rank gets bit-identical results, as with MPI. This
is how the tests and the tutorial check the gathered loss and its backward against a
single process, with finite differences, without ``mpiexec``::

    def rank_gradient(world):
        x = Tensor(halves[world.rank], requires_grad=True)    # this rank's rows [n, E]
        all_gather(world, x).sum().backward()                  # [2n, E]
        return x.grad

    simulate(2, rank_gradient)   # [grad of rank 0, grad of rank 1]

A rank that raises breaks the barrier, so the others stop with it instead of waiting
forever, and ``simulate`` re-raises the first error (as ``MPI_Abort`` ends a real job).
"""
import threading
import time

from .. import backend


def simulate(size, function):
    """Run ``function(world)`` for ranks ``0..size-1`` in threads; their results in rank order."""
    barrier = threading.Barrier(size)
    slots = [None] * size
    results, errors = [None] * size, [None] * size

    def run(rank):
        try:
            results[rank] = function(ThreadWorld(rank, size, barrier, slots))
        except BaseException as error:  # noqa: B902 -- handed to the caller below
            errors[rank] = error
            barrier.abort()  # the other ranks stop waiting for this one

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    raised = [e for e in errors if e is not None]
    if raised:  # the first rank that failed by itself, not one the broken barrier stopped
        raise next((e for e in raised if not isinstance(e, threading.BrokenBarrierError)),
                   raised[0])
    return results


class ThreadWorld:
    """One simulated rank: ``rank``, ``size``, ``seconds`` and the collectives of
    ``comm.MPIWorld``, on arrays of any device (combined with that array's ``xp``)."""

    def __init__(self, rank, size, barrier, slots):
        self.rank, self.size = rank, size
        self._barrier, self._slots = barrier, slots
        self.seconds = 0.0

    def all_reduce_(self, array):
        parts = self._exchange(array.copy())
        total = parts[0]
        for part in parts[1:]:  # in rank order on every rank: identical sums
            total = total + part
        array[...] = total
        return array

    def all_gather(self, array):
        return backend.get_array_module(array).concatenate(self._exchange(array.copy()))

    def broadcast_(self, array, root=0):
        array[...] = self._exchange(array.copy())[root]
        return array

    def mean(self, value):
        return sum(self._exchange(float(value))) / self.size

    def abort(self, message, code=1):
        raise RuntimeError(message)

    def _exchange(self, value):
        """Every rank's ``value``, in rank order."""
        began = time.perf_counter()
        self._slots[self.rank] = value
        self._barrier.wait()          # all values posted
        values = list(self._slots)
        self._barrier.wait()          # all values read: the slots may be reused
        self.seconds += time.perf_counter() - began
        return values

"""The world of ranks, and the four collectives data parallelism needs, over MPI.

``mpiexec -n W python ...`` starts W copies of one program; MPI numbers them 0..W-1 (the
*rank*) and lets them exchange arrays. Data-parallel training needs four exchanges, each
a *collective* (every rank calls it, with arrays of the same shape, in the same order):

* ``all_reduce_(a)``   every rank's ``a`` becomes the sum over the ranks, in place
  (gradient averaging);
* ``all_gather(a)``    ``a [n, ...]`` of every rank, concatenated in rank order:
  ``[W * n, ...]`` (the gathered features of the contrastive loss);
* ``broadcast_(a)``    rank 0's ``a`` copied into every rank's, in place (the first weights);
* ``mean(x)``          a Python number averaged over the ranks (the logged loss).

``MPIWorld`` implements them with ``mpi4py``'s buffer methods (``Allreduce``,
``Allgather``, ``Bcast``), which hand NumPy memory to MPI without pickling. A GPU array
goes through NCCL when CuPy has it (``nccl.py``: the GPUs exchange directly over NVLink or
the network), and otherwise through the host: copied to a NumPy array, reduced by MPI,
copied back. The host path is slower (two PCIe copies per collective) but needs nothing
beyond MPI. ``simulate.ThreadWorld`` offers the same methods with threads in one process.

A world also counts ``seconds``, the wall time spent inside its collectives, which
includes waiting for the slowest rank to arrive: on a balanced job that is the cost of
communication.

``connect()`` is the one place ``mpi4py`` is imported: ``from mpi4py import MPI``
initialises MPI, and a program that is not distributed must not pay for (or need) it.
Run without ``mpiexec``, MPI starts a world of one rank ("singleton init").
"""
import sys
import time

import numpy as np

from .. import backend


def connect(device="cpu"):
    """The ``MPIWorld`` of this process, set up for training on ``device``.

    On ``"cuda"`` each rank first picks a GPU (its rank among the ranks of its machine,
    modulo the number of GPUs), then GPU collectives use NCCL when ``cupy.cuda.nccl`` is
    available, else they are staged through the host.
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    machine = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this rank's machine
    nccl = None
    if backend.get_device(device) is backend.CUDA:
        from . import nccl as nccl_module

        nccl = nccl_module.connect(comm, machine.Get_rank())
    return MPIWorld(comm, nccl, local_size=machine.Get_size())


class MPIWorld:
    """Collectives over an ``mpi4py`` communicator (see the module docstring).

    ``nccl``: an ``nccl.NcclCollectives`` for GPU arrays, or None to stage them through
    the host. ``local_size``: how many of the ranks run on this rank's machine (they share
    its cores).
    """

    def __init__(self, comm, nccl=None, local_size=1):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.local_size = local_size
        self.nccl = nccl
        self.seconds = 0.0

    def all_reduce_(self, array):
        """Sum ``array`` (contiguous) over the ranks, in place; returns it."""
        from mpi4py import MPI

        def host(a):
            self.comm.Allreduce(MPI.IN_PLACE, a)
            return a

        return self._run("all_reduce_", array, host, in_place=True)

    def all_gather(self, array):
        """``array [n, ...]`` of every rank in rank order: a new ``[size * n, ...]`` array.
        Every rank must pass the same shape."""
        def host(a):
            # A gather only copies bits, and not every MPI has a float16 type: send its bits.
            sent = np.ascontiguousarray(a)
            sent = sent.view(np.uint16) if sent.dtype == np.float16 else sent
            out = np.empty((self.size,) + a.shape, sent.dtype)          # [W, n, ...]
            self.comm.Allgather(sent, out)
            return out.view(a.dtype).reshape((self.size * a.shape[0],) + a.shape[1:])  # [W n, ...]

        return self._run("all_gather", array, host, in_place=False)

    def broadcast_(self, array, root=0):
        """Overwrite ``array`` (contiguous) with rank ``root``'s, in place; returns it."""
        def host(a):
            self.comm.Bcast(a, root=root)
            return a

        return self._run("broadcast_", array, host, in_place=True, root=root)

    def mean(self, value):
        """The mean over the ranks of a Python number."""
        began = time.perf_counter()
        total = self.comm.allreduce(float(value))
        self.seconds += time.perf_counter() - began
        return total / self.size

    def abort(self, message, code=1):
        """Print ``message`` to stderr and end every rank of the job (``MPI_Abort``): the
        other ranks may be waiting in a collective this rank will never join."""
        print(message, file=sys.stderr, flush=True)
        self.comm.Abort(code)

    def _run(self, name, array, host, in_place, **options):
        """Run a collective on ``array``: ``host(numpy_array)`` for host arrays, NCCL for
        GPU arrays when available, else ``host`` on a host copy (copied back)."""
        began = time.perf_counter()
        device = backend.device_of(array)
        if device is backend.CPU:
            result = host(array)
        elif self.nccl is not None:
            result = getattr(self.nccl, name)(array, **options)
        else:
            result = device.to_device(host(device.to_host(array)))
            if in_place:
                array[...] = result
                result = array
        self.seconds += time.perf_counter() - began
        return result

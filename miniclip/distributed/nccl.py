"""GPU collectives through NCCL (``cupy.cuda.nccl``), with MPI only exchanging NCCL's id.

NCCL (NVIDIA's collective communications library) moves GPU memory between GPUs directly,
over NVLink inside a machine and over the network (InfiniBand, RoCE, TCP) between them,
with ring and tree algorithms run by GPU kernels: no copy to the host, no host CPU in the
loop. It starts from a shared secret, a 128-byte *unique id* that rank 0 draws and every
rank must receive; MPI (already connecting the ranks) broadcasts it, and from then on
MPI carries no GPU data.

The collectives are launched on CuPy's current stream, so they are ordered after the
kernels that computed their input and before those that read their output, and the host
does not wait for them.

**Unmeasured.** This path has not been run on a GPU yet (the tests use a fake CuPy without
NCCL, which takes the host-staged path of ``comm.py``).
"""


def connect(comm, local_rank):
    """Select this rank's GPU and return ``NcclCollectives`` over ``comm``'s ranks, or None
    when this CuPy has no NCCL (``comm.py`` then stages GPU arrays through the host)."""
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    if count > 1:  # else every rank uses the one GPU there is
        cupy.cuda.Device(local_rank % count).use()
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    if not getattr(nccl, "available", True):
        return None
    unique_id = nccl.get_unique_id() if comm.Get_rank() == 0 else None
    unique_id = comm.bcast(unique_id, root=0)  # the only thing MPI sends for NCCL
    return NcclCollectives(nccl.NcclCommunicator(comm.Get_size(), unique_id, comm.Get_rank()),
                           nccl, comm.Get_size())


class NcclCollectives:
    """``all_reduce_``, ``all_gather`` and ``broadcast_`` of CuPy arrays (as ``MPIWorld``)."""

    def __init__(self, communicator, nccl, size):
        self.communicator, self.nccl, self.size = communicator, nccl, size

    def all_reduce_(self, array):
        self.communicator.allReduce(array.data.ptr, array.data.ptr, array.size,
                                    self._dtype(array), self.nccl.NCCL_SUM, self._stream())
        return array

    def all_gather(self, array):
        import cupy

        array = cupy.ascontiguousarray(array)
        out = cupy.empty((self.size * array.shape[0],) + array.shape[1:], array.dtype)
        self.communicator.allGather(array.data.ptr, out.data.ptr, array.size,
                                    self._dtype(array), self._stream())
        return out

    def broadcast_(self, array, root=0):
        self.communicator.bcast(array.data.ptr, array.size, self._dtype(array), root,
                                self._stream())
        return array

    def _dtype(self, array):
        return getattr(self.nccl, f"NCCL_{array.dtype.name.upper()}")  # NCCL_FLOAT32, ...

    @staticmethod
    def _stream():
        import cupy

        return cupy.cuda.get_current_stream().ptr

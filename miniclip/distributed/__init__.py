"""Data-parallel training: the paper's gathered contrastive loss over MPI (and NCCL on GPUs).

CLIP was trained with a batch of 32,768 pairs spread over hundreds of GPUs. Data parallelism
gives every process (a *rank*) the whole model and a slice of the batch; the contrastive
loss, though, scores every image against every text of the *global* batch, so each rank
gathers the other ranks' features before building its logits, and the gradient of those
gathered features must flow back to the rank that computed them. One job per file:

* ``comm.py``          the world (rank, size) and its collectives over MPI (``mpi4py``);
                       GPU arrays go through NCCL (``nccl.py``) or are staged through the host
* ``nccl.py``          NCCL collectives via ``cupy.cuda.nccl``, MPI exchanging only the id
* ``simulate.py``      a world of threads in one process, to test and teach without MPI
* ``gather.py``        ``all_gather`` as an autograd Function: the backward and why
* ``loss.py``          the gathered loss in both forms: ``local_loss`` and ``global_loss``
* ``data_parallel.py`` broadcast of the first weights, bucketed gradient averaging, and the
                       hooks that make ``training.step.train_step`` one rank's step
* ``shard.py``         each rank's disjoint, seeded rows of the global batch stream
* ``launch.py``        ``python -m miniclip.train --distributed``: rank-0 output, MPI abort

Nothing here imports ``mpi4py`` until ``comm.connect()`` is called, so a single process
never needs MPI.
"""
from .comm import connect
from .data_parallel import average_gradients, broadcast_parameters, data_parallel, rank_loss
from .gather import all_gather
from .loss import global_loss, local_loss
from .shard import shard
from .simulate import simulate

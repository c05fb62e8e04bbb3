"""Data parallelism: the same model on every rank, a slice of the batch each, one update.

Every rank starts from the same weights (``broadcast_parameters``), computes the loss
of its slice of the global batch and its gradient, and then every rank replaces its
gradient by the mean of all ranks' (``average_gradients``). The ranks then hold the same
gradient, clip it by the same norm and take the same AdamW step, so their weights stay
identical without ever being sent again. With the gathered loss (``loss.py``) the mean
gradient is the gradient of the single-process loss of the global batch, so W ranks with
b pairs each train exactly as one process with W b pairs would, to float32 round-off.
The step itself is every run's (``training/step.py``): ``data_parallel`` hands it this
rank's loss and the averaging, which comes before a loss scaler unscales (``--amp``).

**Buckets.** A model has a few hundred parameter arrays, many of them tiny (biases,
gains). One all-reduce per array would pay a collective's fixed cost (a few µs between
processes on one machine, tens of µs over a network or for a NCCL launch) hundreds of
times per step. The gradients are instead laid end to end in flat arrays of up to
``optim.BUCKET_ELEMENTS`` (2 MB of float32, ``optim/buckets.py``), one all-reduce each,
large enough for the bandwidth to dominate: the tiny ViT's 1.37M gradients go in 3
messages.

**No overlap with the backward pass.** PyTorch's DDP starts a bucket's all-reduce as
soon as the backward has produced its gradients, hiding communication behind the rest of
the backward. That pays when the network or a GPU's copy engines move data while the
compute units work. On a CPU, MPI makes progress only inside MPI calls and the cores are
busy with the backward (one per rank), so an overlapped all-reduce would wait for the
backward to end anyway. And there is little to hide: ``docs/results.md`` measures the tiny ViT's
gradient all-reduce on 2 processes at about a tenth of a step.

**Batch norm.** The ResNet's batch norms normalise by the statistics of each rank's own
b images (as PyTorch's DDP does without ``SyncBatchNorm``), so ``--tower rn`` on W ranks
is close to, not exactly, one process with W b images. The ViT has no batch statistics.
"""
import functools

from .. import backend
from .. import functional as F
from ..optim.buckets import buckets, flat_grads, set_flat_grads
from .loss import local_loss


def broadcast_parameters(world, model, root=0):
    """Copy rank ``root``'s parameters and buffers into every rank's ``model``, in flat
    buckets (the seed makes them equal already; this makes sure of it)."""
    tensors = list(model.parameters()) + list(model.buffers())
    for bucket in buckets(tensors, lambda t: t.dtype, lambda t: t.data):
        arrays = [t.data for t in bucket]
        flat = world.broadcast_(backend.flatten(arrays), root)   # [P bucket]
        for array, value in zip(arrays, backend.unflatten(flat, arrays)):
            array[...] = value


def average_gradients(world, parameters):
    """Replace every gradient by its mean over the ranks: one all-reduce per bucket."""
    for bucket, flat in flat_grads([p for p in parameters if p.grad is not None]):
        world.all_reduce_(flat)                                  # [P bucket], Σ over ranks
        flat /= world.size
        set_flat_grads(bucket, flat)


def rank_loss(world, loss, model, images, tokens):
    """This rank's part of the gathered loss (``loss``: ``local_loss`` or ``global_loss``)
    of its rows ``images [b, 3, R, R]``, ``tokens [b, C]`` of the global batch."""
    image_features = F.normalize(model.encode_image(images), dim=-1)   # [b, E]
    text_features = F.normalize(model.encode_text(tokens), dim=-1)     # [b, E]
    return loss(world, image_features, text_features, model.logit_scale)


def data_parallel(world, loss=local_loss):
    """What makes ``training.step.train_step`` the step of one rank of ``world``:
    ``train_step(model, ..., **data_parallel(world))`` computes this rank's ``loss``
    and averages the gradients over the ranks before the update. It returns this rank's
    loss; ``world.mean`` of it is the loss of the global batch (``loss.py``)."""
    return {"loss": functools.partial(rank_loss, world, loss),
            "reduce_gradients": functools.partial(average_gradients, world)}

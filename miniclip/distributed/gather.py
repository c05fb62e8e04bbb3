"""``all_gather`` of features as an autograd ``Function``, and why its backward is a sum.

Each of the W ranks holds the features of its own n pairs, ``x_r [n, E]``. The gathered
loss needs all of them on every rank, so the forward pass is an all-gather::

    y = [x_0; x_1; ...; x_{W-1}]            # [W n, E], the same on every rank

**The backward.** Rank s computes its loss L_s from its copy of y. Data-parallel training
averages the parameter gradients over the ranks, so what it descends is the total
J = (1/W) Σ_s L_s. The features x_r of rank r enter J through the copy of y on *every*
rank, so by the chain rule

    ∂J/∂x_r = (1/W) Σ_s (∂L_s/∂y)[rows of r]

Rank s knows only its own ``G_s = ∂L_s/∂y [W n, E]``. The backward therefore sums the
G_s over the ranks (an all-reduce) and keeps its own rows, ``r n : (r + 1) n``; the 1/W is
the gradient averaging of ``data_parallel.average_gradients``, which every parameter
gradient gets anyway. These are the semantics of open_clip's ``gather_with_grad=True``.

**What goes wrong without the sum.** ``torch.distributed.all_gather`` has no backward, so
the usual shortcut (open_clip's default, ``gather_with_grad=False``) gathers without
gradient and puts the local ``x_r`` back into its rows of y: rank r's backward then keeps
only ``(∂L_r/∂y)[rows of r]``, the s = r term. Every other rank uses rank r's texts as
negatives for its images (and its images for its texts), and those W - 1 terms are
lost: the step pulls the positive pairs together correctly but pushes the negatives
apart only within each rank's own rows. For the full-matrix loss, where every L_s is the
same L, the s = r term is 1/W of the sum, so the feature gradients come out W times too
small beside the temperature's. ``tests/test_distributed.py`` checks the sum against
finite differences of the single-process loss.

The all-reduce sends twice what the backward needs: each rank keeps a 1/W slice of the
sum, which a reduce-scatter (the exact adjoint of all-gather) would compute alone. The
features are small beside the gradients (``[W n, E]`` against every weight), so the
four collectives of ``comm.py`` are kept to what data parallelism cannot do without.
"""
from ..autograd import Function


class AllGather(Function):
    """``x [n, ...]`` of every rank -> ``[W n, ...]`` in rank order; backward: this rank's
    rows of the gradient summed over the ranks (module docstring)."""

    def __init__(self, world):
        self.world = world

    def forward(self, x):
        self.n = x.shape[0]
        return self.world.all_gather(x)                            # [W n, ...]

    def backward(self, grad_y):                                    # [W n, ...]
        total = self.world.all_reduce_(grad_y.copy())              # Σ_s G_s (grad_y is shared)
        start = self.world.rank * self.n
        return total[start:start + self.n]                         # [n, ...]


def all_gather(world, x):
    """Every rank's ``x [n, ...]`` concatenated in rank order, ``[W n, ...]``, differentiably:
    the gradient of ``x`` is its rows of the gradient summed over the ranks."""
    return AllGather(world)(x)

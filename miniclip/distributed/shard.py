"""Each rank's disjoint, seeded share of the global batch stream.

Every rank draws the same global batches, in the same seeded order, as the
single-process ``DataLoader`` with the global batch size would (``epoch_batches``
depends only on the seed and the epoch), and loads only its own rows of each:
``rank b .. rank b + b - 1`` of the ``N = W b`` indices. So the ranks read disjoint data,
their rows gathered in rank order *are* the single-process batch, and a run resumed at
step s picks up the same batches as the one that stopped (``DataLoader.batches``).
"""
from ..data import DataLoader


def shard(loader, world):
    """A ``ShardedLoader`` of this rank's rows of ``loader``'s global batches."""
    if not loader.drop_last:
        raise ValueError("shard: the loader must drop the last, smaller batch of an epoch "
                         "(drop_last=True), so that every rank gets as many rows")
    if loader.batch_size % world.size:
        raise ValueError(f"the global batch of {loader.batch_size} pairs does not split evenly "
                         f"over {world.size} processes; choose a --batch-size divisible by "
                         f"{world.size}")
    return ShardedLoader(loader.dataset, loader.batch_size, world.rank, world.size,
                         shuffle=loader.shuffle, seed=loader.seed, collate=loader.collate)


class ShardedLoader(DataLoader):
    """A ``DataLoader`` of global batches of ``batch_size`` (N) of which it loads only the
    rows of rank ``rank`` of ``size``: batches of N / size items (module docstring)."""

    def __init__(self, dataset, batch_size, rank, size, **options):
        super().__init__(dataset, batch_size, drop_last=True, **options)
        local = batch_size // size
        self.rows = slice(rank * local, (rank + 1) * local)

    def epoch_batches(self, epoch):
        return [indices[self.rows] for indices in super().epoch_batches(epoch)]

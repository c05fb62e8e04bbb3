"""From a dataset to batches of arrays.

* :class:`DataLoader` — shuffles indices with a seed, cuts them into batches and turns each
  batch into arrays with a ``collate`` function;
* :class:`CLIPCollate` — the collate CLIP needs: ``images [N, 3, R, R] float32``
  (preprocessed exactly as CLIP does) and ``tokens [N, C] int64``;
* :class:`ArrayDataset` — a dataset prepared once into those arrays, so that training
  epochs do not decode, draw and tokenize the same items again and again.
"""
import numpy as np


class CLIPCollate:
    """Turns a list of ``(image, caption)`` pairs into CLIP's two input arrays.

    Args:
        image_transform: PIL image -> ``float32 [3, R, R]``, e.g. miniclip's CLIP preprocessing.
        tokenize: list of captions -> ``int64 [N, C]`` token ids.

    Returns ``(images [N, 3, R, R] float32, tokens [N, C] int64)``, both NumPy (the training
    loop moves them to its device).
    """

    def __init__(self, image_transform, tokenize):
        self.image_transform = image_transform
        self.tokenize = tokenize

    @classmethod
    def for_model(cls, image_size, context_length, truncate=True):
        """The collate a CLIP of this input resolution and context length needs, built from
        miniclip's preprocessing and default tokenizer."""
        from ..tokenizer import tokenize
        from .preprocess import transform

        def tokenize_batch(captions):
            return tokenize(captions, context_length=context_length, truncate=truncate)

        return cls(transform(image_size), tokenize_batch)

    def __call__(self, pairs):
        images = np.stack([np.asarray(self.image_transform(image), dtype=np.float32)
                           for image, _ in pairs])
        tokens = np.asarray(self.tokenize([caption for _, caption in pairs]), dtype=np.int64)
        return images, tokens


def stack_fields(items):
    """Collate for items that are tuples of arrays: one stacked array per field."""
    return tuple(np.stack(field) for field in zip(*items))


class ArrayDataset:
    """A dataset whose items are rows of arrays: item ``i`` is ``(arrays[0][i], arrays[1][i])``.

    ``ArrayDataset.prepare(dataset, collate)`` runs ``collate`` over a whole dataset once
    (e.g. :class:`CLIPCollate`, giving ``(images, tokens)``), trading memory for time:
    a 4,096-item synthetic set at 32 x 32 is 50 MB of float32 pixels, and every later epoch
    is a matter of indexing. Batch it with ``DataLoader(..., collate=stack_fields)``.
    """

    def __init__(self, *arrays):
        if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
            raise ValueError(f"ArrayDataset needs arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = arrays

    @classmethod
    def prepare(cls, dataset, collate, chunk_size=256):
        """Collate every item of ``dataset`` (``chunk_size`` at a time) into one dataset."""
        chunks = [collate([dataset[i] for i in range(start, min(start + chunk_size, len(dataset)))])
                  for start in range(0, len(dataset), chunk_size)]
        return cls(*(np.concatenate(field) for field in zip(*chunks)))

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)


class DataLoader:
    """Batches of a dataset, in a seeded random order, as arrays.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__``.
        batch_size: items per batch.
        shuffle: visit the items in a new random order every epoch. The order of epoch ``e``
            depends only on ``(seed, e)``, so a resumed run sees the same batches.
        seed: seed of the shuffling.
        drop_last: drop the final batch of an epoch when it is smaller than ``batch_size``
            (contrastive training prefers equal-size batches: a batch of 3 is an easy task).
        collate: list of items -> batch; by default the list itself.

    ``iter(loader)`` yields one epoch and then advances :attr:`epoch`. For step-based
    training, :meth:`batches` yields an endless stream that can start at any global step.
    """

    def __init__(self, dataset, batch_size, *, shuffle=False, seed=0, drop_last=False,
                 collate=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate = collate if collate is not None else list
        self.epoch = 0
        if len(self) == 0:
            raise ValueError(f"a dataset of {len(dataset)} items gives no batch of "
                             f"{batch_size} with drop_last=True")

    def __len__(self):
        """Batches per epoch."""
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch_batches(self, epoch):
        """The item indices of every batch of epoch ``epoch`` (a list of int arrays)."""
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        return [order[i:i + self.batch_size] for i in range(0, len(self) * self.batch_size,
                                                             self.batch_size)]

    def load(self, indices):
        """The batch made of these item indices."""
        return self.collate([self.dataset[int(i)] for i in indices])

    def __iter__(self):
        for indices in self.epoch_batches(self.epoch):
            yield self.load(indices)
        self.epoch += 1

    def batches(self, start_step=0):
        """Batches for global steps ``start_step, start_step + 1, …`` forever, crossing epochs.

        The batch of step ``s`` is batch ``s % len(self)`` of epoch ``s // len(self)``, so a
        run resumed at step ``s`` continues exactly where the interrupted one stopped.
        """
        epoch, skip = divmod(start_step, len(self))
        while True:
            for indices in self.epoch_batches(epoch)[skip:]:
                yield self.load(indices)
            epoch, skip = epoch + 1, 0

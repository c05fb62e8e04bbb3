"""From a dataset to batches of arrays.

* :class:`DataLoader` — shuffles indices with a seed, cuts them into batches and turns each
  batch into arrays with a ``collate`` function;
* :class:`CLIPCollate` — the collate CLIP needs: ``images [N, 3, R, R] float32``
  (preprocessed exactly as CLIP does) and ``tokens [N, C] int64``;
* :class:`ArrayDataset` — a dataset prepared once into those arrays, so that training
  epochs do not decode, draw and tokenize the same items again and again;
* :class:`Prefetcher` — an iterator run in a background thread a few items ahead, so that
  the training step never waits for images to be decoded.
"""
import queue
import threading

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
    a 16,384-item synthetic set at 32 x 32 is 201 MB of float32 pixels, and every later epoch
    is a matter of indexing. Batch it with ``DataLoader(..., collate=stack_fields)``.
    """

    def __init__(self, *arrays):
        if not arrays or any(len(a) != len(arrays[0]) for a in arrays):
            raise ValueError(f"ArrayDataset needs arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = arrays

    @classmethod
    def prepare(cls, dataset, collate, chunk_size=256):
        """Collate every item of ``dataset`` (``chunk_size`` at a time) into one dataset.

        Each chunk is copied into arrays allocated once for the whole dataset, so the data
        is held once, not twice as a list of chunks and their concatenation would hold it.
        """
        fields = []
        for start in range(0, len(dataset), chunk_size):
            chunk = collate([dataset[i] for i in range(start, min(start + chunk_size, len(dataset)))])
            if not fields:
                fields = [np.empty((len(dataset),) + a.shape[1:], a.dtype) for a in chunk]
            for field, array in zip(fields, chunk):
                field[start:start + len(array)] = array
        return cls(*fields)

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
        prefetch: prepare up to this many batches of :meth:`batches` ahead in a background
            thread (:class:`Prefetcher`); 0 prepares each when it is asked for.

    ``iter(loader)`` yields one epoch and then advances :attr:`epoch`. For step-based
    training, :meth:`batches` yields an endless stream that can start at any global step.

    An item is ``dataset[i]``, unless the dataset has a method ``visit(i, epoch)``: then
    that, for datasets whose items change from visit to visit (a caption drawn among
    several, a random crop) and that must draw them from the epoch, not from a hidden
    state, to give the same batches whether or not they are prefetched or resumed.
    """

    def __init__(self, dataset, batch_size, *, shuffle=False, seed=0, drop_last=False,
                 collate=None, prefetch=0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate = collate if collate is not None else list
        self.prefetch = prefetch
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

    def load(self, indices, epoch=0):
        """The batch made of these item indices, visited in epoch ``epoch``."""
        visit = getattr(self.dataset, "visit", None)
        if visit is None:
            return self.collate([self.dataset[int(i)] for i in indices])
        return self.collate([visit(int(i), epoch) for i in indices])

    def __iter__(self):
        for indices in self.epoch_batches(self.epoch):
            yield self.load(indices, self.epoch)
        self.epoch += 1

    def batches(self, start_step=0):
        """Batches for global steps ``start_step, start_step + 1, …`` forever, crossing epochs.

        The batch of step ``s`` is batch ``s % len(self)`` of epoch ``s // len(self)``, so a
        run resumed at step ``s`` continues exactly where the interrupted one stopped. With
        ``prefetch`` the stream is a :class:`Prefetcher` (the same batches, in the same order).
        """
        stream = self._stream(start_step)
        return Prefetcher(stream, self.prefetch) if self.prefetch else stream

    def _stream(self, start_step):
        epoch, skip = divmod(start_step, len(self))
        while True:
            for indices in self.epoch_batches(epoch)[skip:]:
                yield self.load(indices, epoch)
            epoch, skip = epoch + 1, 0


class Prefetcher:
    """Iterates over ``iterable`` in a background thread, at most ``depth`` items ahead.

    The items are those of ``iterable``, in its order: one thread runs it, so anything
    it draws from a seed is drawn exactly as without prefetching. Decoding and resizing
    in PIL, like NumPy's matrix products, release Python's GIL, so the thread prepares the
    next batches while the training step computes. An exception in the thread is raised
    again by ``next`` in the caller's, after the items before it; :meth:`close` (also on
    leaving a ``with`` block, or when the prefetcher is garbage-collected) stops the
    thread once it has finished its current item. The thread is a daemon, so it never
    keeps the program from exiting.
    """

    _ITEM, _END, _ERROR = "item", "end", "error"
    _thread = None  # until started (``__del__`` may run on a prefetcher __init__ refused)

    def __init__(self, iterable, depth=2):
        if depth < 1:
            raise ValueError(f"Prefetcher: depth must be at least 1, got {depth}")
        self._queue = queue.Queue(maxsize=depth)  # (kind, value) pairs
        self._stop = threading.Event()
        self._done = False
        # The thread holds the queue and the event, not the prefetcher, so that dropping
        # the prefetcher lets it be collected, which stops the thread.
        self._thread = threading.Thread(target=_fill, args=(iter(iterable), self._queue,
                                                            self._stop),
                                        name="miniclip-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == self._ITEM:
            return value
        self._done = True
        self._thread.join()
        if kind == self._ERROR:
            raise value
        raise StopIteration

    def close(self):
        """Stop the thread (after the item it is preparing) and wait for it."""
        self._done = True
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        self.close()


def _fill(iterator, items, stop):
    """The prefetch thread: put ``iterator``'s items into the queue ``items`` until it ends,
    fails or ``stop`` is set."""
    try:
        for item in iterator:
            if not _put(items, stop, (Prefetcher._ITEM, item)):
                return
        _put(items, stop, (Prefetcher._END, None))
    except BaseException as error:  # noqa: BLE001 (raised again in the consumer's thread)
        _put(items, stop, (Prefetcher._ERROR, error))


def _put(items, stop, entry):
    """Put ``entry`` into the bounded queue, waiting while it is full; False if ``stop`` was
    set meanwhile (checked every 50 ms, so that a closed prefetcher's thread ends)."""
    while not stop.is_set():
        try:
            items.put(entry, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False

"""What the experiments share: their scale, where they write, and the data and models they
have already made (so that ``python -m miniclip.experiments all`` draws each seed's
pictures once and trains each model once)."""
import dataclasses
import json
import multiprocessing
import os
import time

import numpy as np

from ..system.files import atomic_write
from .data import ShapesData
from .objectives import OBJECTIVES
from .training import ModelCache


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big an experiment is.

    ``seeds`` runs (data and weights), each training ``steps`` batches of ``batch_size``
    from ``train_size`` pictures; ``test_size`` test pictures and ``shifted_size`` per
    shifted set; ``sweep_batches``: the batch sizes of the softmax-against-sigmoid
    comparison; few-shot probes of ``shots`` examples per class, ``draws`` times each,
    from a pool of ``pool_size`` labelled pictures.
    """

    seeds: int = 3
    train_size: int = 4096
    test_size: int = 600
    shifted_size: int = 300
    steps: int = 300
    batch_size: int = 32
    sweep_batches: tuple = (8, 32)
    shots: tuple = (1, 2, 4, 8, 16)
    draws: int = 10
    pool_size: int = 1200


#: The scale of the published results (docs/results.md): about 15 minutes on 2 idle cores.
FULL = Scale()

#: A minute's worth, for the notebook and the tests: the same code, too short to learn much.
QUICK = Scale(seeds=3, train_size=512, test_size=150, shifted_size=60, steps=24,
              batch_size=16, sweep_batches=(8, 16), shots=(1, 2, 4), draws=3, pool_size=240)


class Context:
    """One session of experiments: ``scale``, the results folder ``out`` (one subfolder per
    experiment) and the model cache ``out/models``; each seed's data is drawn once."""

    def __init__(self, out, scale=FULL):
        self.out, self.scale = out, scale
        self.cache = ModelCache(os.path.join(out, "models"))
        self._data = {}

    @property
    def seeds(self):
        return range(self.scale.seeds)

    def data(self, seed):
        if seed not in self._data:
            scale = self.scale
            self._data[seed] = ShapesData(seed, scale.train_size, scale.test_size,
                                          scale.shifted_size)
        return self._data[seed]

    def trained(self, objective, seed, batch_size=None):
        """``(model, record)`` of ``objective`` trained from ``seed`` at this scale."""
        return self.cache.trained(objective, self.data(seed), self.scale.steps,
                                  batch_size or self.scale.batch_size)

    def train_ahead(self, needed, jobs):
        """Train the models ``needed`` (``[(objective name, batch size or None)]``, for
        every seed) in ``jobs`` processes, so that the experiments then find them cached.

        The models are dealt out by cost (steps x batch, plus a per-step overhead worth 8
        pictures), the biggest first, each to the least busy process; a process draws the
        data of each seed it trains for once."""
        tasks = [(seed, name, batch or self.scale.batch_size) for seed in self.seeds
                 for name, batch in dict.fromkeys(needed)]
        tasks = [(seed, name, batch) for seed, name, batch in tasks
                 if not os.path.exists(self.cache.path(OBJECTIVES[name],
                                                       _Sized(seed, self.scale.train_size),
                                                       self.scale.steps, batch))]
        shares = [[] for _ in range(jobs)]
        for task in sorted(tasks, key=lambda task: -task[2]):
            min(shares, key=lambda share: sum(task[2] + 8 for task in share)).append(task)
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pool.starmap(_train_share, [(self.out, self.scale, share) for share in shares
                                        if share])

    def folder(self, name):
        folder = os.path.join(self.out, name)
        os.makedirs(folder, exist_ok=True)
        return folder

    def write_results(self, name, results, began):
        """``out/name/results.json``: ``results`` with the scale, the wall and CPU seconds
        since ``began`` (a :func:`clock`) and the machine's load (on a shared machine the
        CPU seconds are the better guide to an idle machine's wall time)."""
        wall, cpu = clock()
        results = dict(experiment=name, scale=dataclasses.asdict(self.scale),
                       wall_seconds=round(wall - began[0], 1),
                       cpu_seconds=round(cpu - began[1], 1),
                       load_average=os.getloadavg(), **results)
        path = os.path.join(self.folder(name), "results.json")
        with atomic_write(path) as file:
            file.write(json.dumps(results, indent=1, default=_plain).encode())
        return path


@dataclasses.dataclass
class _Sized:
    """What ``ModelCache.path`` reads of a ``ShapesData``, without drawing it."""

    seed: int
    size: int

    @property
    def images(self):
        return range(self.size)


def _train_share(out, scale, tasks):
    """One process of ``Context.train_ahead``: train ``tasks`` into ``out``'s cache."""
    context = Context(out, scale)
    for seed, name, batch in sorted(tasks):
        context.trained(OBJECTIVES[name], seed, batch)


def clock():
    """``(wall seconds, this process's CPU seconds)`` now, for ``write_results``."""
    return time.perf_counter(), time.process_time()


def mean_and_spread(values):
    """``{"mean": ..., "std": ..., "runs": [...]}`` of one number per seed (std over seeds,
    ddof=1, 0 for one seed)."""
    values = np.asarray(values, dtype=float)
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": spread, "runs": values.tolist()}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} to results.json")

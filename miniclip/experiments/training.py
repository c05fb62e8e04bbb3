"""Training an objective for an experiment, and the cache that lets experiments share models.

Every objective is trained the same way, the tiny run's recipe (``python -m miniclip.train``)
with its one step (``training.step.train_step``): AdamW with the paper's β, ε and
weight-decay groups for a ViT tower, a linear warm-up over the first tenth of the steps
then cosine decay from a peak rate of 1e-3, gradients clipped to norm 1 and the logit scale
(where the objective has one) capped at 100. Only the loss differs.

A trained model is saved in the cache folder under a name that says what made it
(objective, seed, steps, batch size, training pictures), with the zero-shot scores measured
along the way; an experiment asking for the same model again loads it instead of training
it. The CLIP of a seed is thus trained once, by whichever experiment runs first, and serves
the few-shot, robustness and prompt experiments too.
"""
import json
import os
import time

import numpy as np

from .. import nn
from ..data import DataLoader
from ..optim import GradScaler, WarmupCosine
from ..system.files import atomic_write
from ..training.recipe import paper_optimizer
from ..training.step import train_step
from ..weights import read_npz
from .data import ONE_TEMPLATE

PEAK_LR = 1e-3
MAX_GRAD_NORM = 1.0

#: Zero-shot scores are measured this many times along a run, evenly spaced, the last at
#: its end (always, so that a cached model has them whichever experiment trained it).
EVALUATIONS = 4


def zero_shot(objective, model, data, templates=ONE_TEMPLATE):
    """Zero-shot top-1 of ``model`` on the test pictures: ``zeroshot_top1_seen``,
    ``_unseen`` (the held-out pairs) and over all of them."""
    model.eval()
    try:
        scores = objective.scores(model, data, data.benchmark.images, templates)   # [N, 30]
    finally:
        model.train()
    return data.benchmark.zero_shot_metrics(scores)


def train(objective, data, steps, batch_size, seed):
    """A model of ``objective`` trained for ``steps`` batches of ``batch_size`` pictures of
    ``data`` from ``seed``; returns ``(model, record)``, ``record`` holding the zero-shot
    scores at ``EVALUATIONS`` points against the images seen, and the seconds spent
    training."""
    evaluate_at = {round(steps * (i + 1) / EVALUATIONS) for i in range(EVALUATIONS)}
    nn.manual_seed(seed)
    model = objective.build(data, batch_size).train()
    optimizer = paper_optimizer(model, PEAK_LR, "vit")
    schedule = WarmupCosine(optimizer, steps // 10, steps)
    loader = DataLoader(np.arange(len(data.images)), batch_size, shuffle=True, seed=seed,
                        drop_last=True, collate=np.asarray)
    batches = loader.batches()
    record = {"objective": objective.name, "seed": seed, "steps": steps,
              "batch_size": batch_size, "evaluations": [], "train_seconds": 0.0}
    scaler = GradScaler(enabled=False)

    def loss_of_batch(model, images, batch):  # train_step's loss(model, images, tokens)
        return objective.loss(model, data, dict(batch, images=images))

    began = time.perf_counter()
    for step in range(1, steps + 1):
        schedule(step - 1)
        batch = data.batch(next(batches))
        loss = train_step(model, optimizer, scaler, batch.pop("images"), batch, step, "cpu",
                          MAX_GRAD_NORM, loss=loss_of_batch)
        if step in evaluate_at:
            record["train_seconds"] += time.perf_counter() - began
            record["evaluations"].append(dict(step=step, images_seen=step * batch_size,
                                              loss=loss,
                                              **zero_shot(objective, model, data)))
            began = time.perf_counter()
    return model.eval(), record


class ModelCache:
    """Trained models in ``folder``, one ``.npz`` (weights and record) per training run."""

    def __init__(self, folder):
        self.folder = folder

    def path(self, objective, data, steps, batch_size):
        name = (f"{objective.name}-seed{data.seed}-steps{steps}-batch{batch_size}"
                f"-train{len(data.images)}.npz")
        return os.path.join(self.folder, name)

    def trained(self, objective, data, steps, batch_size):
        """``(model, record)``: from the cache, or trained now and cached."""
        path = self.path(objective, data, steps, batch_size)
        if os.path.exists(path):
            nn.manual_seed(data.seed)
            model = objective.build(data, batch_size)
            arrays = read_npz(path)  # a damaged cache file is a CheckpointError naming it
            model.load_state_dict({key: value for key, value in arrays.items() if key != "record"})
            record = json.loads(str(arrays["record"]))
            return model.eval(), dict(record, cached=True)
        model, record = train(objective, data, steps, batch_size, data.seed)
        os.makedirs(self.folder, exist_ok=True)
        with atomic_write(path) as file:
            np.savez(file, record=np.array(json.dumps(record)), **model.state_dict())
        return model, dict(record, cached=False)

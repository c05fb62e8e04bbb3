"""The checks that keep a run folder's run whole: never replaced without being told, and
resumed only with the settings it was trained with.

A resumed run must continue the very run it picks up: the same model, loss, batch, seed,
data, learning rate, weight decay and number of processes (the learning rate and weight decay
come back from the optimiser's saved state, so a different ``--lr`` would be silently
ignored: it is refused instead), and the same warm-up. A longer ``--steps`` is allowed:
it stretches the cosine but keeps the warm-up done.
"""
import dataclasses
import json
import os

import numpy as np

from ..system.program import UsageError
from .config import CHECKPOINT, METRICS
from .state import load_training_state


def check_run_folder(config):
    """Refuse to replace a run without ``--overwrite``, or to resume one that isn't there."""
    existing = [f for f in (CHECKPOINT, METRICS) if os.path.exists(os.path.join(config.out, f))]
    if config.resume and CHECKPOINT not in existing:
        raise UsageError(f"--resume: there is no {CHECKPOINT} in {config.out}; start the run "
                         "without --resume")
    if existing and not (config.resume or config.overwrite):
        raise UsageError(f"{config.out} already holds a run ({', '.join(existing)}); continue "
                         "it with --resume, replace it with --overwrite, or choose another --out")


#: The value of a setting a checkpoint written before the setting existed was trained with.
SETTING_DEFAULTS = {"loss": "clip"}


def run_settings(config, world_size):
    """What a resumed run must share with the run it continues (module docstring)."""
    return {"model": config.model, "batch_size": config.batch_size, "seed": config.seed,
            "data": config.data, "train_size": config.train_size, "lr": config.lr,
            "weight_decay": config.weight_decay, "world_size": world_size,
            "loss": config.loss}


def resume(config, model, optimizer, scaler, settings):
    """Load ``config.out``'s checkpoint into the objects; returns ``(config, step,
    history)``, the config with the saved schedule's ``steps`` and ``warmup`` where the
    command line left them out."""
    path = os.path.join(config.out, CHECKPOINT)
    # The settings first: other ones (another loss, say) may not even fit the objects.
    with np.load(path, allow_pickle=False) as file:
        saved = {**SETTING_DEFAULTS, **(json.loads(str(file["meta"]))["extra"] or {})}
    changed = [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in settings.items()
               if saved.get(key) != value]
    if changed:
        raise UsageError(f"--resume: {path} was trained with other settings "
                         f"({', '.join(changed)}); resume with the same ones, or start afresh "
                         "in another --out folder")
    step = load_training_state(path, model, optimizer, scaler)["step"]
    schedule = saved["schedule"]
    steps = schedule["steps"] if config.steps is None else config.steps
    if steps < step:
        raise UsageError(f"--resume: {path} has already trained {step} steps; pass --steps "
                         f"{step} or more (or leave it out to finish the saved schedule of "
                         f"{schedule['steps']} steps)")
    if config.warmup is not None and config.warmup != schedule["warmup"]:
        raise UsageError(f"--resume: the run warms up over {schedule['warmup']} steps; "
                         "leave --warmup out (changing it mid-run would jump the learning rate)")
    config = dataclasses.replace(config, steps=steps, warmup=schedule["warmup"])
    return config, step, saved["history"]

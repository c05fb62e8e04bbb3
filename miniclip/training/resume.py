"""The checks that keep a run folder's run whole: never replaced without being told, and
resumed only with the settings it was trained with.

A resumed run must continue the very run it picks up: the same model, loss, batch, seed,
data, learning rate, weight decay and number of processes (the learning rate and weight decay
come back from the optimiser's saved state, so a different ``--lr`` would be silently
ignored: it is refused instead), and the same warm-up; a fine-tuning run also the same
starting weights (by SHA-256), locked towers and shift of its pictures. A longer
``--steps`` is allowed: it stretches the cosine but keeps the warm-up done.
"""
import dataclasses
import os

from ..system.program import UsageError
from ..weights import CheckpointError
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

#: Settings only some runs have (how a fine-tuning run began and what it locks, the shift
#: of its pictures: ``run.initial_model``); absent means "not so", and a resumed run must
#: agree on them both ways.
ADAPTATION = ("init_from", "init_from_sha256", "adam", "locked", "train_shift")


def run_settings(config, world_size, adaptation=None):
    """What a resumed run must share with the run it continues (module docstring), with
    ``adaptation``: what a fine-tuning run started from and how (``run.py``)."""
    return {"model": config.model, "batch_size": config.batch_size, "seed": config.seed,
            "data": config.data, "train_size": config.train_size, "lr": config.lr,
            "weight_decay": config.weight_decay, "world_size": world_size,
            "loss": config.loss, **(adaptation or {})}


def resume(config, model, optimizer, scaler, settings):
    """Load ``config.out``'s checkpoint into the objects; returns ``(config, step,
    history)``, the config with the saved schedule's ``steps`` and ``warmup`` where the
    command line left them out."""
    path = os.path.join(config.out, CHECKPOINT)
    # The settings first, from the model's pass: a run that locked another tower has an
    # optimiser state of other parameters, which would fail to load less helpfully.
    state = load_training_state(path, model)
    saved, step = {**SETTING_DEFAULTS, **(state["extra"] or {})}, state["step"]
    keys = [*settings, *(key for key in ADAPTATION if key in saved and key not in settings)]
    changed = [f"{key} {saved.get(key)!r} -> {settings.get(key)!r}" for key in keys
               if saved.get(key) != settings.get(key)]
    if changed:
        raise UsageError(f"--resume: {path} was trained with other settings "
                         f"({', '.join(changed)}); resume with the same ones, or start afresh "
                         "in another --out folder")
    load_training_state(path, model, optimizer, scaler)
    schedule, history = _schedule_and_history(path, saved)
    steps = schedule["steps"] if config.steps is None else config.steps
    if steps < step:
        raise UsageError(f"--resume: {path} has already trained {step} steps; pass --steps "
                         f"{step} or more (or leave it out to finish the saved schedule of "
                         f"{schedule['steps']} steps)")
    if config.warmup is not None and config.warmup != schedule["warmup"]:
        raise UsageError(f"--resume: the run warms up over {schedule['warmup']} steps; "
                         "leave --warmup out (changing it mid-run would jump the learning rate)")
    config = dataclasses.replace(config, steps=steps, warmup=schedule["warmup"])
    return config, step, history


def _schedule_and_history(path, saved):
    """The saved schedule (``steps``, ``warmup``) and loss history, or a ``CheckpointError``
    naming the file's ``extra`` field when a damaged or foreign checkpoint lacks them."""
    schedule, history = saved.get("schedule"), saved.get("history")
    if not (isinstance(schedule, dict) and isinstance(history, dict)
            and all(isinstance(schedule.get(key), int) for key in ("steps", "warmup"))):
        raise CheckpointError(path, "extra", "does not hold the run's schedule and history "
                              "that python -m miniclip.train writes",
                              "resume only a checkpoint.npz written by python -m miniclip.train, "
                              "or start afresh in another --out folder")
    return schedule, history

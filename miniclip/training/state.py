"""The state of a training run: checking it is finite, saving it, restoring it.

A run's state is the model's weights (and buffers), the optimiser's state (moments,
step counts, per-group settings such as the current learning rate), the loss scaler's
state in mixed precision, and the step number. ``save_training_state`` writes all of it
to one ``.npz`` file and ``load_training_state`` puts it back, so a run can stop and go
on exactly where it was.

Two guarantees:

* **No inf or NaN is ever saved.** A diverged run must not overwrite the last good
  checkpoint with garbage, so saving first checks every floating array and refuses,
  naming the offending array, before anything is written.
* **A checkpoint file is complete or absent.** The file is written under a temporary
  name in the same directory and renamed over the target (``os.replace`` is atomic), so a
  crash while saving leaves the previous checkpoint intact, never half a file.

``check_finite(model, step, loss)`` is the per-step counterpart for plain float32
training (mixed precision skips such steps instead, see ``optim.GradScaler``): it raises
``NonFiniteError`` saying at which step and in which parameter values first became
inf or NaN, which is where to start looking.
"""
import json

import numpy as np

from .. import backend
from ..system.files import atomic_write
from ..weights import CheckpointError, read_npz
from ..weights.errors import DAMAGED, summary

FORMAT = "miniclip-training-state"
VERSION = 1


class NonFiniteError(FloatingPointError):
    """A loss, gradient, weight or optimiser state holds inf or NaN."""


def _nonfinite_names(named_arrays):
    """Names of the floating arrays holding inf or NaN, in the order given (one device
    synchronisation for all of them, see ``backend.finite_flags``)."""
    named = [(name, a) for name, a in named_arrays if a is not None and a.dtype.kind == "f"]
    finite = backend.finite_flags(a for _, a in named)
    return [name for (name, _), ok in zip(named, finite) if not ok]


def _describe(name, array):
    host = backend.to_numpy(array)
    nans, infs = int(np.isnan(host).sum()), int(np.isinf(host).sum())
    return f"{name!r} ({nans} NaN and {infs} inf of {host.size} values)"


def check_finite(model, step, loss=None, gradients=True):
    """Raise ``NonFiniteError`` if a weight, the loss or a gradient is inf or NaN; else
    return the loss as a float (None without one). ``gradients=False`` leaves the gradients
    out: a loss scaler's scaled gradients overflow now and then by design, and it skips
    such a step itself.

    Call it after ``backward()`` and before ``optimizer.step()``, so that a bad gradient
    is caught before it reaches the weights. The message names the step and the first
    thing that is bad, looking in the order cause -> effect: weights (made non-finite by
    the previous update), then the loss, then the gradients. For weights and gradients it
    names the first offending parameter in ``model.named_parameters()`` order and counts
    the others.

    The verdicts are computed on the model's device and come back together with the loss
    in one transfer: on a GPU the step waits for the device once, not once per check.
    """
    params = list(model.named_parameters())
    weights = [(name, p.data) for name, p in params]
    grads = [(name, p.grad) for name, p in params if gradients and p.grad is not None]
    xp = backend.get_array_module(weights[0][1])
    on_device = hasattr(loss, "data")  # a loss Tensor is read with the verdicts
    dtype = backend.accumulation_dtype(loss.dtype) if on_device else np.float32
    read = [backend.all_finite(a for _, a in weights)]
    if grads:
        read.append(backend.all_finite(a for _, a in grads))
    if on_device:
        read.append(loss.data.reshape(()))
    values = backend.to_numpy(xp.stack([a.astype(dtype) for a in read])).tolist()
    weights_ok = values.pop(0)
    grads_ok = values.pop(0) if grads else True
    value = values.pop(0) if on_device else (None if loss is None else float(loss))
    # all_finite can only err towards "not finite" (a sum that overflows): confirm by name
    if not weights_ok:
        _raise_for("weight", _nonfinite_names(weights), dict(weights), step)
    if value is not None and not np.isfinite(value):
        raise NonFiniteError(f"step {step}: the loss is {value}, although every weight "
                             "is finite")
    if not grads_ok:
        _raise_for("gradient", _nonfinite_names(grads), dict(grads), step)
    return value


def _raise_for(kind, bad, arrays, step):
    if bad:
        others = f"; {len(bad) - 1} other parameter(s) too" if len(bad) > 1 else ""
        raise NonFiniteError(f"step {step}: non-finite {kind} in parameter "
                             f"{_describe(bad[0], arrays[bad[0]])}{others}")


# ---------------------------------------------------------------------------- saving
def save_training_state(path, model, optimizer=None, step=0, scaler=None, extra=None):
    """Write model, optimiser and scaler state and the step number to ``path`` (.npz).

    Arrays are stored under ``model/<name>`` and ``optimizer/<param index>/<name>``; all
    other values (group settings, step counts, scaler, ``extra`` — anything JSON can
    hold, e.g. the data loader's position) go to one JSON string under ``meta``. Refuses
    with ``NonFiniteError``, writing nothing, if any floating array holds inf or NaN.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    meta = {"format": FORMAT, "version": VERSION, "step": int(step), "extra": extra,
            "scaler": scaler.state_dict() if scaler is not None else None, "optimizer": None}
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars = {}
        for index, values in state["state"].items():
            for name, value in values.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{index}/{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        meta["optimizer"] = {"param_groups": state["param_groups"], "scalars": scalars}

    bad = _nonfinite_names(arrays.items())
    if bad:
        raise NonFiniteError(f"refusing to save a checkpoint at step {step}: "
                             f"{_describe(bad[0], arrays[bad[0]])}"
                             + (f" and {len(bad) - 1} more array(s)" if len(bad) > 1 else "")
                             + " hold inf/NaN; the previous checkpoint is kept")

    arrays["meta"] = np.array(json.dumps(meta, default=_plain_number))
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def _plain_number(value):
    """JSON for NumPy scalars (a learning rate set from a NumPy computation, say)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save a {type(value).__name__} in a training state")


def load_training_state(path, model, optimizer=None, scaler=None):
    """Restore what ``save_training_state`` wrote into existing objects, in place.

    ``model`` (and ``optimizer``, built over the model's parameters the same way as when
    saving) keep their identity; arrays go to the device of the tensors they fill.
    Returns ``{"step": int, "extra": ...}``.

    Reading never writes to ``path``. A damaged file, a file that is not a training state
    and one saved by a different model or optimiser raise a ``CheckpointError`` (a
    ``ValueError``) naming the file, the member or field, and the fix. The file is read
    and checked whole before the model is touched, and the model's ``load_state_dict``
    changes nothing on a mismatch.
    """
    try:
        arrays = read_npz(path)
        meta = _read_meta(path, arrays)
    except CheckpointError as error:
        if error.fix != DAMAGED:
            raise
        # a run's own checkpoint is not downloaded: say what can be done instead
        raise CheckpointError(error.path, error.part, error.problem, _DAMAGED_RUN) \
            from error.__cause__ or error
    model_arrays = {key[len("model/"):]: value for key, value in arrays.items()
                    if key.startswith("model/")}
    try:
        model.load_state_dict(model_arrays)
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(path, "the model's tensors", f"do not fit this model "
                              f"({summary(error)})", _OTHER_RUN) from error
    if optimizer is not None:
        if meta["optimizer"] is None:
            raise CheckpointError(path, "member 'meta.npy'", "holds no optimiser state",
                                  _OTHER_RUN)
        try:
            optimizer.load_state_dict(_optimizer_state(arrays, meta["optimizer"]))
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as error:
            raise CheckpointError(path, "the optimiser state", f"does not fit this optimiser "
                                  f"({summary(error)})", _OTHER_RUN) from error
    if scaler is not None and meta["scaler"] is not None:
        try:
            scaler.load_state_dict(meta["scaler"])
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(path, "member 'meta.npy', field 'scaler'",
                                  f"is not a loss scaler's state ({summary(error)})",
                                  _DAMAGED_RUN) from error
    return {"step": meta["step"], "extra": meta["extra"]}


#: The fix for a damaged training state.
_DAMAGED_RUN = ("the checkpoint is damaged: restore a copy of it, or start the run afresh "
                "(--overwrite replaces it)")

#: The fix when a training state is intact but belongs to another model or optimiser.
_OTHER_RUN = ("it was saved by a run with another model or optimiser: resume with that "
              "run's settings, or start afresh in another --out folder")

#: The entries of ``meta`` and the types they must have.
_META_TYPES = {"format": str, "version": int, "step": int, "extra": (dict, type(None)),
               "scaler": (dict, type(None)), "optimizer": (dict, type(None))}


def _read_meta(path, arrays):
    """The ``meta`` entry of a training state's arrays, checked field by field."""
    part = "member 'meta.npy'"
    meta_array = arrays.get("meta")
    if meta_array is None or meta_array.shape != () or meta_array.dtype.kind != "U":
        raise CheckpointError(path, None, f"is not a miniclip training state (no '{FORMAT}' "
                              "header)", "pass the checkpoint.npz of a python -m miniclip.train "
                              "run")
    try:
        meta = json.loads(str(meta_array))
    except ValueError as error:  # json's errors (and RecursionError's kin) on damaged text
        raise CheckpointError(path, part, f"is not valid JSON ({summary(error)})") from error
    except RecursionError as error:
        raise CheckpointError(path, part, "nests JSON too deeply") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(path, None, f"is not a miniclip training state (no '{FORMAT}' "
                              "header)", "pass the checkpoint.npz of a python -m miniclip.train "
                              "run")
    for name, kind in _META_TYPES.items():
        if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
            raise CheckpointError(path, f"{part}, field {name!r}", f"is "
                                  f"{type(meta.get(name)).__name__}, not what a training state "
                                  "holds there")
    if meta["version"] != VERSION:
        raise CheckpointError(path, f"{part}, field 'version'", f"is {meta['version']}; this "
                              f"miniclip reads version {VERSION}",
                              "resume with the miniclip version that saved it")
    if meta["step"] < 0:
        raise CheckpointError(path, f"{part}, field 'step'", f"is {meta['step']}")
    optimizer = meta["optimizer"]
    if optimizer is not None and not (isinstance(optimizer.get("param_groups"), list)
                                      and all(isinstance(group, dict)
                                              for group in optimizer["param_groups"])
                                      and isinstance(optimizer.get("scalars"), dict)
                                      and all(isinstance(values, dict)
                                              for values in optimizer["scalars"].values())):
        raise CheckpointError(path, f"{part}, field 'optimizer'", "is not an optimiser's "
                              "param_groups and scalars")
    return meta


def _optimizer_state(arrays, saved):
    """``optimizer.state_dict()`` as it was saved: arrays from ``optimizer/<index>/<name>``,
    scalars and groups from ``meta``."""
    state = {}
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in saved["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()}
              for group in saved["param_groups"]]
    return {"state": state, "param_groups": groups}

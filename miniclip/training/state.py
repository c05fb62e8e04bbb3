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
    """
    with np.load(path, allow_pickle=False) as file:
        meta = json.loads(str(file["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a miniclip training state (no '{FORMAT}' header)")
        model.load_state_dict({key[len("model/"):]: file[key] for key in file.files
                               if key.startswith("model/")})
        if optimizer is not None:
            if meta["optimizer"] is None:
                raise ValueError(f"{path} holds no optimiser state")
            state = {}
            for key in file.files:
                if key.startswith("optimizer/"):
                    _, index, name = key.split("/", 2)
                    state.setdefault(int(index), {})[name] = file[key]
            for index, values in meta["optimizer"]["scalars"].items():
                state.setdefault(int(index), {}).update(values)
            groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()}
                      for group in meta["optimizer"]["param_groups"]]
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    if scaler is not None and meta["scaler"] is not None:
        scaler.load_state_dict(meta["scaler"])
    return {"step": meta["step"], "extra": meta["extra"]}

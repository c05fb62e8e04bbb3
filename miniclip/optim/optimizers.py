"""The optimisers: ``AdamW`` (CLIP's) and ``SGD``, on the arrays of each parameter.

An optimiser turns gradients into parameter updates. It works directly on the arrays of
each parameter — ``p.data`` (the weights) and ``p.grad`` (dL/dp after ``backward()``) —
with ``xp = backend.get_array_module(p.data)``, so the same code updates NumPy and CuPy
parameters and keeps its per-parameter state (Adam's moments, SGD's momentum) on the
parameter's device.

``AdamW`` works on all parameters of a group at once ("multi-tensor", as PyTorch's
``foreach`` implementations): the weights, gradients and moments of a group are laid end
to end in flat arrays of up to ``BUCKET_ELEMENTS`` each (``buckets.py``), updated with a
handful of large array operations, and each parameter's arrays become views of the
results. The arithmetic per element is unchanged; what changes is that a GPU runs about
ten kernels per bucket instead of about ten per parameter, and on a model with a few
hundred parameters the per-kernel launch cost is most of an optimiser step.

The classes copy PyTorch's ``torch.optim`` interface and arithmetic (same constructor
arguments, same order of operations, same bias correction), so a step here equals a
``torch.optim.AdamW`` step to float32 round-off — at most the last bit differs, where
PyTorch's CPU kernels fuse a multiply and an add into one rounding. ``tests/test_optim.py``
checks that against recorded PyTorch updates.
"""
import numpy as np

from .. import backend
from .buckets import buckets


class Optimizer:
    """What every optimiser shares: parameter groups, per-parameter state, saving/restoring.

    ``params`` is an iterable of parameters, or of *groups*: dicts with a ``"params"`` list
    and any settings that should differ from the defaults for those parameters, e.g.
    ``[{"params": weights}, {"params": biases, "weight_decay": 0.0}]``. Each group is
    stored with every setting filled in, so ``optimizer.param_groups[i]["lr"]`` is the
    learning rate in force for group ``i`` (a schedule changes it there).

    ``self.state[p]`` holds the per-parameter state (moments, step counts), created on the
    first step that parameter has a gradient.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add a group of parameters (a dict with ``"params"`` and optional settings)."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if hasattr(params, "data") else list(params)
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if id(p) in seen:
                raise ValueError("a parameter appears in more than one parameter group; "
                                 "each parameter must be optimised by exactly one group")
            seen.add(id(p))
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (``backward()`` accumulates into ``.grad``, so call this
        once per step). ``set_to_none`` frees them instead of filling them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = backend.get_array_module(p.grad).zeros_like(p.grad)

    def step(self):
        """Update every parameter that has a gradient, group by group."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update_group(params, group)

    def _update_group(self, params, group):
        """Update ``params`` (those of ``group`` with a gradient); by default one by one."""
        for p in params:
            self._update(p, p.grad, self.state.setdefault(p, {}), group)

    def _update(self, p, grad, state, group):
        raise NotImplementedError

    # ------------------------------------------------------------------ saving
    def state_dict(self):
        """The optimiser's state as plain values and host (NumPy) arrays.

        Laid out as PyTorch lays it out: parameters are referred to by their position
        (0, 1, 2, ... over all groups in order), because the parameter objects of a
        resumed run are new objects::

            {"state": {0: {"step": 10, "exp_avg": array, ...}, ...},
             "param_groups": [{"lr": 5e-4, ..., "params": [0, 1, 2]}, ...]}
        """
        index, groups = {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[p] = len(index)
                ids.append(index[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            index[p]: {k: backend.to_numpy(v) if _is_array(v) else v for k, v in s.items()}
            for p, s in self.state.items() if p in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``: settings per group and state per parameter.

        The optimiser must have been built over the same parameters in the same order
        (e.g. from a freshly built model); arrays are copied onto each parameter's device.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the saved state has {len(saved_groups)} "
                             f"parameter groups, this optimiser has {len(self.param_groups)}")
        by_index = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the saved state, {len(group['params'])} here")
            by_index.update(zip(saved["params"], group["params"]))
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for key, saved in state_dict["state"].items():
            p = by_index[int(key)]
            device = backend.device_of(p.data)
            state = {}
            for name, value in saved.items():
                if _is_array(value):
                    if tuple(value.shape) != tuple(p.data.shape):
                        raise ValueError(f"load_state_dict: state {name!r} of parameter {key} "
                                         f"has shape {tuple(value.shape)}, the parameter "
                                         f"{tuple(p.data.shape)}")
                    value = device.to_device(backend.to_numpy(value))
                state[name] = value
            self.state[p] = state


def _is_array(value):
    try:
        backend.device_of(value)
    except TypeError:
        return False
    return not isinstance(value, np.generic)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    Adam keeps two running averages per parameter: ``m`` of the gradient g (the
    *direction*) and ``v`` of g² (the *scale*), and moves each weight by roughly
    ``lr · m / sqrt(v)`` — a step of about ``lr`` whatever the gradient's magnitude.
    With ``β1, β2`` close to 1 the averages start near their zero initial value, so they
    are divided by ``1 - β^t`` ("bias correction") to be unbiased from the first step.

    *Decoupled* weight decay shrinks the weights directly, ``θ ← θ(1 - lr·λ)``, instead of
    adding ``λθ`` to the gradient; added to the gradient it would be divided by
    ``sqrt(v)`` like the rest and so decay parameters with large gradients less.

    One step for a parameter θ with gradient g, step count t (from 1), in this order::

        θ ← θ · (1 - lr·λ)                         # decoupled weight decay
        m ← m + (1 - β1) · (g - m)                 # = β1·m + (1-β1)·g
        v ← β2 · v + (1 - β2) · g · g
        denom = sqrt(v) / sqrt(1 - β2^t) + ε       # bias-corrected RMS of g
        θ ← θ - lr / (1 - β1^t) · m / denom        # bias-corrected mean over RMS

    The update runs on flat arrays of many parameters at once (module docstring). After
    the first step each ``p.data`` and each moment is a view into one of them, updated in
    place from then on, as PyTorch's optimisers update in place.

    The moments have the parameter's dtype: float32 for the float32 master weights of
    mixed-precision training. (The paper kept them in float16 to save memory at its
    scale; at ours the precision is worth more.) Settings: ``lr``, ``betas = (β1, β2)``,
    ``eps`` (ε), ``weight_decay`` (λ), per group.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"AdamW: lr, eps and weight_decay must be >= 0, got lr={lr}, "
                             f"eps={eps}, weight_decay={weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))
        self._flats = {}  # (parameter ids, "data" / "exp_avg" / "exp_avg_sq") -> (flat, views)

    def step(self):
        """Update every parameter that has a gradient; keep flat arrays only for the buckets
        of this step (when the parameters with gradients change, older buckets go)."""
        self._flats_used = set()
        super().step()
        for key in set(self._flats) - self._flats_used:
            del self._flats[key]

    def _update_group(self, params, group):
        # Parameters update together when they share a device, a dtype and a step count
        # (a parameter that had no gradient in some step is one step behind the others).
        def key(p):
            return backend.device_of(p.data), p.data.dtype, self.state.get(p, {}).get("step", 0)

        for bucket in buckets(params, key, lambda p: p.data):
            self._update_flat(bucket, group)

    def _update_flat(self, params, group):
        """One AdamW step of ``params`` as flat arrays (the module docstring says why)."""
        xp = backend.get_array_module(params[0].data)
        lr, (beta1, beta2), eps, decay = (group["lr"], group["betas"], group["eps"],
                                          group["weight_decay"])
        states = [self.state.setdefault(p, {}) for p in params]
        if not states[0]:
            for p, state in zip(params, states):
                state.update(step=0, exp_avg=xp.zeros_like(p.data),
                             exp_avg_sq=xp.zeros_like(p.data))
        ids = tuple(map(id, params))
        theta, weights = self._flat((ids, "data"), [p.data for p in params])     # [P total]
        m, exp_avgs = self._flat((ids, "exp_avg"), [state["exp_avg"] for state in states])
        v, exp_avg_sqs = self._flat((ids, "exp_avg_sq"), [state["exp_avg_sq"] for state in states])
        grad = backend.flatten([p.grad for p in params])
        t = states[0]["step"] + 1
        # The settings and bias corrections are computed in Python (float64) and meet the
        # arrays as numbers of their dtype, exactly as in PyTorch.
        number = theta.dtype.type
        _adamw_update(theta, grad, m, v, number(1 - lr * decay), number(1 - beta1),
                      number(beta2), number(1 - beta2), number(lr / (1 - beta1 ** t)),
                      number((1 - beta2 ** t) ** 0.5), number(eps))

        for p, state, weight, exp_avg, exp_avg_sq in zip(params, states, weights, exp_avgs,
                                                          exp_avg_sqs):
            p.data, state["exp_avg"], state["exp_avg_sq"] = weight, exp_avg, exp_avg_sq
            state["step"] = t

    def _flat(self, key, arrays):
        """``(flat, views)``: a flat array and its views shaped as ``arrays``, kept from the
        last step while ``arrays`` are still those views (the update then writes straight
        into the parameters and moments), else made anew (``backend.flatten`` copies once;
        a checkpoint load or a ``model.to`` replaces the arrays, and so lands here)."""
        self._flats_used.add(key)
        cached = self._flats.get(key)
        if cached is not None and all(a is b for a, b in zip(cached[1], arrays)):
            return cached
        flat = backend.flatten(arrays)
        self._flats[key] = flat, backend.unflatten(flat, arrays)
        return self._flats[key]


@backend.fuse
def _adamw_update(xp, theta, grad, m, v, shrink, one_minus_beta1, beta2, one_minus_beta2,
                  step_size, bias2_sqrt, eps):
    """The arithmetic of one AdamW step (``AdamW``'s docstring), in place, in one GPU
    kernel (``backend.fuse``): weights, moments and gradient are each read once."""
    # BEGIN SOLUTION assignment clip_adamw, 6c: the AdamW update
    theta *= shrink                                 # decoupled weight decay (1 - lr λ)
    m += one_minus_beta1 * (grad - m)
    v *= beta2
    v += one_minus_beta2 * grad * grad
    theta -= step_size * m / (xp.sqrt(v) / bias2_sqrt + eps)
    # END SOLUTION


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Momentum keeps a running sum ``b`` of past gradients and steps along it, which
    smooths the noise of mini-batch gradients and speeds progress along consistent
    directions. One step, in this order::

        g ← g + λ·θ                       # weight decay (coupled: added to the gradient)
        b ← g                 on the first step
        b ← μ·b + (1 - dampening)·g       afterwards
        g ← g + μ·b if nesterov else b
        θ ← θ - lr·g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, grad, state, group):
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        momentum = group["momentum"]
        if momentum != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            buffer = state["momentum_buffer"]
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * grad

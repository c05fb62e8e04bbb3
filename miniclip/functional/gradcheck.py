"""Check hand-written backward passes against finite differences.

For a function ``f`` of some tensors, pick a fixed random "upstream gradient" ``R`` of
the output's shape and look at the scalar ``L(x) = sum(R * f(x))``. Its gradient is
exactly what ``backward`` computes when ``R`` arrives at the output, and it can also be
measured numerically with central differences,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

whose error shrinks as eps^2. Two ways to use this:

* ``mode="exhaustive"`` nudges every element of every checked tensor: two forward passes
  per element. Thorough, and it tells you *which* element is wrong. For small inputs.
* ``mode="directional"`` nudges all checked tensors at once along one random direction
  ``v``: the numerical slope ``(L(x + eps v) - L(x - eps v)) / (2 eps)`` must equal
  ``sum_k <dL/dx_k, v_k>``. Two forward passes in total, so whole blocks and models can
  be checked on a CPU. A wrong gradient anywhere changes the dot product unless the
  error happens to be orthogonal to the random ``v``, which has probability zero.

Finite differences need float64: in float32, ``L(x + eps) - L(x - eps)`` loses most of
its digits to cancellation. ``TOLERANCES`` lists the settings used for each dtype.

Functions with kinks (ReLU at 0, ``max`` with ties, ``abs`` at 0, clamp at its bounds)
have no derivative there; ``randn_away_from`` and ``distinct_randn`` make sample points
that keep a safe distance from them.

``compare_grads`` is the other half of the teaching loop: it prints, tensor by tensor,
whether a student's gradient is exact, close, or different from the engine's.
"""
import dataclasses

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad

# (eps, atol, rtol) per dtype. float64 is the one to trust; the others are for quick looks.
TOLERANCES = {
    np.dtype(np.float64): (1e-6, 1e-6, 1e-5),
    np.dtype(np.float32): (1e-3, 1e-2, 1e-2),
    np.dtype(np.float16): (1e-2, 1e-1, 1e-1),
}


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the finite-difference one (see ``.report``)."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


@dataclasses.dataclass
class GradcheckEntry:
    """The comparison for one checked tensor (or, in directional mode, for all at once)."""

    name: str
    analytic: float        # the analytic value at the worst element (or the directional slope)
    numeric: float         # the finite-difference value there
    max_abs_error: float
    worst_index: tuple     # where the worst element is (() in directional mode)
    passed: bool


@dataclasses.dataclass
class GradcheckReport:
    mode: str
    entries: list
    eps: float
    atol: float
    rtol: float

    @property
    def passed(self):
        return all(entry.passed for entry in self.entries)

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradcheck ({self.mode}, eps={self.eps:g}, atol={self.atol:g}, "
                 f"rtol={self.rtol:g}): {'passed' if self.passed else 'FAILED'}"]
        for e in self.entries:
            where = f" at index {e.worst_index}" if e.worst_index else ""
            lines.append(f"  {'ok  ' if e.passed else 'FAIL'} {e.name}: worst error "
                         f"{e.max_abs_error:.3g}{where} (analytic {e.analytic:.8g}, "
                         f"numeric {e.numeric:.8g})")
        return "\n".join(lines)


def gradcheck(fn, inputs, params=(), mode="exhaustive", eps=None, atol=None, rtol=None,
              seed=0, raise_exception=True):
    """Compare the gradients ``backward`` gives with central finite differences.

    ``fn(*inputs)`` must return a Tensor. The tensors checked are the ``inputs`` with
    ``requires_grad=True`` plus every tensor in ``params`` (e.g. ``module.parameters()``,
    or ``module.named_parameters()`` so that a failure names the parameter).
    Returns a ``GradcheckReport``; raises ``GradcheckError`` on a mismatch unless
    ``raise_exception=False``. The checked tensors' ``.grad`` values are left as they were
    (other leaves that ``fn`` uses, such as the weights of a module not passed in
    ``params``, receive the gradient of one backward pass).
    """
    if mode not in ("exhaustive", "directional"):
        raise ValueError(f"gradcheck: mode must be 'exhaustive' or 'directional', got {mode!r}")
    inputs = list(inputs)
    checked = [(f"input {i}", t) for i, t in enumerate(inputs)
               if isinstance(t, Tensor) and t.requires_grad]
    checked += [p if isinstance(p, tuple) else (f"param {i}", p) for i, p in enumerate(params)]
    if not checked:
        raise ValueError("gradcheck: nothing to check: no input has requires_grad=True and no "
                         "params were given")
    float64 = TOLERANCES[np.dtype(np.float64)]  # also for any dtype not in the table
    default_eps, default_atol, default_rtol = TOLERANCES.get(checked[0][1].dtype, float64)
    eps = default_eps if eps is None else eps
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    rng = np.random.default_rng(seed)

    output = fn(*inputs)
    upstream = rng.standard_normal(output.shape).astype(output.dtype)   # R, on the host
    upstream = Tensor(output.device.to_device(upstream))

    def objective():
        with no_grad():
            return float((fn(*inputs) * upstream).sum().item())

    analytic = _analytic_gradients(output, upstream, [t for _, t in checked])
    if mode == "exhaustive":
        entries = [_check_elementwise(name, t, g, objective, eps, atol, rtol)
                   for (name, t), g in zip(checked, analytic)]
    else:
        entries = [_check_direction(checked, analytic, objective, rng, eps, atol, rtol)]
    report = GradcheckReport(mode, entries, eps, atol, rtol)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def _analytic_gradients(output, upstream, tensors):
    """Run backward with ``upstream`` as dL/d(output); return each tensor's gradient as NumPy."""
    saved = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    output.backward(upstream.data)
    grads = [backend.to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape, t.dtype)
             for t in tensors]
    for t, g in zip(tensors, saved):
        t.grad = g
    return grads


def _check_elementwise(name, tensor, analytic, objective, eps, atol, rtol):
    worst = None  # (badness, index, analytic, numeric, abs_error)
    for index in np.ndindex(*tensor.shape):
        original = tensor.data[index].copy()  # a copy: on CuPy an element is a 0-d view
        tensor.data[index] = original + eps
        plus = objective()
        tensor.data[index] = original - eps
        minus = objective()
        tensor.data[index] = original
        numeric = (plus - minus) / (2 * eps)
        error = abs(float(analytic[index]) - numeric)
        badness = error / (atol + rtol * abs(numeric))
        if worst is None or badness > worst[0]:
            worst = (badness, index, float(analytic[index]), numeric, error)
    if worst is None:  # an empty tensor has nothing to get wrong
        return GradcheckEntry(name, 0.0, 0.0, 0.0, (), True)
    badness, index, a, n, error = worst
    return GradcheckEntry(name, a, n, error, tuple(int(i) for i in index), badness <= 1)


def _check_direction(checked, analytic, objective, rng, eps, atol, rtol):
    directions = [rng.standard_normal(t.shape) for _, t in checked]
    norm = np.sqrt(sum(float((d * d).sum()) for d in directions)) or 1.0
    directions = [d / norm for d in directions]  # a unit vector over all checked tensors

    def shift(scale):
        for (_, t), d in zip(checked, directions):
            t.data = t.data + t.device.to_device((scale * d).astype(t.dtype))

    originals = [t.data for _, t in checked]
    shift(eps)
    plus = objective()
    for (_, t), original in zip(checked, originals):
        t.data = original
    shift(-eps)
    minus = objective()
    for (_, t), original in zip(checked, originals):
        t.data = original
    numeric = (plus - minus) / (2 * eps)
    slope = sum(float((g * d).sum()) for g, d in zip(analytic, directions))
    error = abs(slope - numeric)
    names = ", ".join(name for name, _ in checked)
    return GradcheckEntry(f"direction over [{names}]", slope, numeric, error, (),
                          error <= atol + rtol * abs(numeric))


def randn_away_from(shape, kinks=(0.0,), margin=0.05, seed=0, dtype=np.float64):
    """Standard-normal samples moved at least ``margin`` away from every point in ``kinks``.

    Finite differences straddling a kink (ReLU at 0, clamp at a bound) measure an average
    of two slopes and disagree with any one-sided derivative, so test points avoid them.
    """
    x = np.random.default_rng(seed).standard_normal(shape)
    for kink in kinks:
        close = np.abs(x - kink) < margin
        x = np.where(close, kink + np.where(x >= kink, margin, -margin) * 2, x)
    return x.astype(dtype)


def distinct_randn(shape, seed=0, gap=0.05, dtype=np.float64):
    """Values that are all at least ``gap`` apart, in random order: no ties for ``max``."""
    count = int(np.prod(shape))
    values = (np.arange(count) - count / 2) * gap
    return np.random.default_rng(seed).permutation(values).reshape(shape).astype(dtype)


@dataclasses.dataclass
class GradComparison:
    name: str
    shape: tuple
    status: str           # "exact", "close" or "different" (or "missing")
    max_abs_diff: float


@dataclasses.dataclass
class ComparisonReport:
    rows: list

    @property
    def all_close(self):
        return all(row.status in ("exact", "close") for row in self.rows)

    def __str__(self):
        width = max([len(r.name) for r in self.rows] + [4])
        lines = [f"{'name':<{width}}  {'shape':<16}  {'status':<9}  max |diff|"]
        for r in self.rows:
            lines.append(f"{r.name:<{width}}  {str(r.shape):<16}  {r.status:<9}  "
                         f"{r.max_abs_diff:.3g}")
        return "\n".join(lines)

    def _repr_html_(self):  # a table in Jupyter
        colour = {"exact": "#2e7d32", "close": "#558b2f", "different": "#c62828",
                  "missing": "#c62828"}
        rows = "".join(
            f"<tr><td>{r.name}</td><td>{r.shape}</td>"
            f"<td style='color:{colour[r.status]}'><b>{r.status}</b></td>"
            f"<td>{r.max_abs_diff:.3g}</td></tr>" for r in self.rows)
        return ("<table><tr><th>name</th><th>shape</th><th>status</th><th>max |diff|</th></tr>"
                f"{rows}</table>")


def compare_grads(expected, actual, atol=1e-6, rtol=1e-5):
    """Tensor-by-tensor report of ``actual`` gradients against ``expected`` ones.

    Both are dicts of name -> array or Tensor (e.g. a student's gradients and
    ``{name: p.grad for name, p in model.named_parameters()}``). A row is "exact" when
    every element is equal, "close" within ``atol + rtol * |expected|``, else "different".
    """
    rows = []
    for name, want in expected.items():
        want = _host(want)
        if name not in actual or actual[name] is None:
            rows.append(GradComparison(name, tuple(want.shape), "missing", float("inf")))
            continue
        got = _host(actual[name])
        if got.shape != want.shape:
            rows.append(GradComparison(name, tuple(got.shape), "different", float("inf")))
            continue
        diff = float(np.max(np.abs(got - want))) if want.size else 0.0
        if np.array_equal(got, want):
            status = "exact"
        elif np.allclose(got, want, atol=atol, rtol=rtol):
            status = "close"
        else:
            status = "different"
        rows.append(GradComparison(name, tuple(want.shape), status, diff))
    return ComparisonReport(rows)


def _host(value):
    """A NumPy copy of a Tensor or an array of any device; lists and numbers via NumPy."""
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, (list, float, int)):
        return np.asarray(value)
    return backend.to_numpy(value)

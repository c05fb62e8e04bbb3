"""The check cells of the course notebooks.

Each exercise in a notebook is a function the student completes, followed by a cell that
checks it::

    with exercise("2a: one attention head") as check:
        check.close("weights", weights, expected_weights)
        check.close("output", out, expected_out)

On success the cell prints ``exercise 2a: one attention head: passed (2 checks)``. Otherwise
it stops with an ``ExerciseError`` whose message names the part that is wrong and says how:
the shapes when they differ (and whether the answer is the transpose), the first NaN, or
how many elements are off and the worst one (its index, the expected value and the value
got). It never prints the expected array itself, only one element of it, so the feedback
points at the mistake without handing over the answer.

A function still holding its ``raise NotImplementedError`` stub gives ``ExerciseNotDone``,
a subclass, whose message says the exercise has not been attempted; the test suite relies
on that to check the student editions of the notebooks (``tests/test_notebooks.py``).
Anything else the student's code raises is reported as part of an ``ExerciseError`` too,
with the original error chained, so a check cell fails in one recognisable way.

Only NumPy is used here: arrays, miniclip ``Tensor`` objects (anything with ``.numpy()``)
and CuPy arrays (anything with ``.get()``) are compared on the host.
"""
import contextlib

import numpy as np


class ExerciseError(AssertionError):
    """An exercise's answer is wrong (the message says which part and how)."""


class ExerciseNotDone(ExerciseError):
    """An exercise still raises its ``NotImplementedError`` stub."""


def _host(value):
    """A NumPy array of ``value`` (a Tensor, a CuPy array, an array, a number or a list)."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    elif hasattr(value, "get"):
        value = value.get()
    return np.asarray(value)


def _index(flat_index, shape):
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


class Check:
    """The comparisons of one exercise; each failure raises ``ExerciseError``."""

    def __init__(self):
        self.count = 0

    def close(self, part, got, expected, atol=1e-6, rtol=1e-5):
        """``got`` equals ``expected`` elementwise within ``atol + rtol·|expected|``
        (infinities must match exactly, as in an additive mask)."""
        self.count += 1
        if got is None:
            raise ExerciseError(f"{part}: got None (did the function forget to return?)")
        got, expected = _host(got), _host(expected).astype(np.float64)
        if got.shape != expected.shape:
            hint = ""
            if got.ndim >= 2 and got.shape == expected.shape[:-2] + expected.shape[-2:][::-1]:
                hint = " (the transpose's shape: are two axes swapped?)"
            raise ExerciseError(f"{part}: expected shape {expected.shape}, got {got.shape}{hint}")
        got = got.astype(np.float64)
        misplaced_nan = np.isnan(got) & ~np.isnan(expected)
        if misplaced_nan.any():
            where = _index(np.flatnonzero(misplaced_nan)[0], got.shape)
            raise ExerciseError(f"{part}: got NaN at index {where} "
                                f"({int(misplaced_nan.sum())} NaN in all); expected "
                                f"{expected[where]:.6g} there")
        same_inf = np.isinf(expected) & (got == expected)
        with np.errstate(invalid="ignore"):                    # inf - inf
            error = np.where(same_inf, 0.0, np.abs(got - expected))
        error = np.where(np.isnan(error), np.inf, error)       # inf vs a number, or vice versa
        tolerance = atol + rtol * np.where(np.isinf(expected), 0.0, np.abs(expected))
        wrong = error > tolerance
        if not wrong.any():
            return
        hint = _hint(got, expected, error, tolerance)
        if got.size == 1:                       # a number: the value itself is the answer
            scale = abs(float(expected.flat[0])) or 1.0
            raise ExerciseError(f"{part}: got {got.flat[0]:.6g}, off by "
                                f"{float(error.flat[0]) / scale:.2g} relative to the "
                                f"expected value (allowed {float(tolerance.flat[0]) / scale:.2g})"
                                f"{hint}")
        worst = _index(np.argmax(np.where(wrong, error, -1.0)), got.shape)
        where = f" at index {worst}" if worst else ""
        raise ExerciseError(
            f"{part}: {int(wrong.sum())} of {got.size} elements differ; the worst{where}: "
            f"expected {expected[worst]:.6g}, got {got[worst]:.6g} "
            f"(|difference| {error[worst]:.3g}, allowed {tolerance[worst]:.2g}){hint}")

    def gradient(self, part, got, expected):
        """``close`` to float64 precision (1e-10 of the largest element): what a derived
        gradient reaches and finite differences do not (``exact``)."""
        scale = float(np.abs(_host(expected)).max(initial=0.0)) or 1.0
        self.close(part, got, expected, atol=1e-10 * scale, rtol=1e-10)

    def directional(self, part, got, expected_slope, directions):
        """``sum_k <got_k, directions_k>`` equals ``expected_slope`` to float64 precision:
        a check of gradients too large to compare element by element."""
        self.count += 1
        slope = 0.0
        for gradient, direction in zip(got, directions):
            if gradient is None:
                raise ExerciseError(f"{part}: got None (did the function forget to return?)")
            gradient = _host(gradient).astype(np.float64)
            if gradient.shape != direction.shape:
                raise ExerciseError(f"{part}: expected shape {direction.shape}, got "
                                    f"{gradient.shape}")
            slope += float((gradient * direction).sum())
        if not abs(slope - expected_slope) <= 1e-9 * (abs(expected_slope) + 1.0):
            ratio = slope / expected_slope if expected_slope else float("nan")
            raise ExerciseError(f"{part}: along a random direction the gradient gives a slope "
                                f"{ratio:.6g} times the true one (it must be 1 to float64 "
                                "precision)")

    def equal(self, part, got, expected):
        """``got == expected`` for numbers, strings, tuples, lists and dicts; for sequences
        the first position that differs is named, for dicts the first key."""
        self.count += 1
        if got == expected and type(got) is type(expected):
            return
        if got == expected or (isinstance(got, (list, tuple)) and isinstance(expected, (
                list, tuple)) and list(got) == list(expected)):
            raise ExerciseError(f"{part}: expected a {type(expected).__name__}, got a "
                                f"{type(got).__name__} (with the right contents)")
        if isinstance(expected, dict) and isinstance(got, dict):
            for key in sorted(set(expected) | set(got), key=repr):
                if key not in got:
                    raise ExerciseError(f"{part}: missing key {key!r} (expected value "
                                        f"{expected[key]!r}); {len(got)} keys got, "
                                        f"{len(expected)} expected")
                if key not in expected:
                    raise ExerciseError(f"{part}: unexpected key {key!r} (value {got[key]!r})")
                if got[key] != expected[key]:
                    raise ExerciseError(f"{part}: at key {key!r} expected {expected[key]!r}, "
                                        f"got {got[key]!r}")
        if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
            for position, (a, b) in enumerate(zip(got, expected)):
                if a != b:
                    raise ExerciseError(f"{part}: differs first at position {position}: "
                                        f"expected {b!r}, got {a!r}")
            raise ExerciseError(f"{part}: expected {len(expected)} items, got {len(got)} "
                                "(the common part agrees)")
        raise ExerciseError(f"{part}: expected {expected!r}, got {got!r}")

    def true(self, part, condition, explanation):
        """``condition`` holds; ``explanation`` says what failed when it does not."""
        self.count += 1
        if not condition:
            raise ExerciseError(f"{part}: {explanation}")


@contextlib.contextmanager
def exercise(name):
    """Run the checks of exercise ``name`` (see the module docstring) and report once."""
    check = Check()
    try:
        yield check
    except NotImplementedError as error:
        if "left out of the student edition" in str(error):      # the library's, not yours
            raise ExerciseError(
                f"exercise {name}: this check uses miniclip's {str(error).split(': left')[0]}, "
                "which this student distribution leaves out until that assignment is due "
                "(the instructor's export-student --release puts it back)") from None
        raise ExerciseNotDone(
            f"exercise {name}: not done yet: the code still raises NotImplementedError"
            f" ({error}). Replace the `raise NotImplementedError` line with your code (in a "
            "notebook, run that cell again, then this one).") from None
    except ExerciseError as error:
        raise ExerciseError(f"exercise {name}: {error}") from None
    except Exception as error:
        raise ExerciseError(f"exercise {name}: your code raised {type(error).__name__}: "
                            f"{error}") from error
    print(f"exercise {name}: passed ({check.count} check{'s' * (check.count != 1)})")


def _hint(got, expected, error, tolerance):
    """What the mistake looks like, when it is a common one: a constant factor, a transpose
    of a square matrix, or the right values to finite-difference precision only."""
    finite = np.isfinite(expected) & np.isfinite(got)
    e, g = expected[finite], got[finite]
    if e.size > 1 and (e * e).sum() > 0:
        factor = float((g * e).sum() / (e * e).sum())
        if (abs(factor - 1) > 1e-3 and abs(factor) > 1e-3
                and np.abs(g - factor * e).max() <= 1e-6 * np.abs(e).max()):
            return f" (got = {factor:.4g} × expected everywhere: a constant factor is off)"
    if (got.ndim >= 2 and got.shape[-1] == got.shape[-2] > 1
            and np.allclose(np.swapaxes(got, -1, -2), expected, rtol=1e-5, atol=1e-6)):
        return " (got is the transpose of what is expected: are two axes swapped?)"
    scale = np.abs(expected[np.isfinite(expected)]).max(initial=0.0) or 1.0
    tight = tolerance[np.isfinite(tolerance)].max(initial=0.0) < 1e-8 * scale
    if tight and np.isfinite(error).all() and error.max() <= 1e-5 * scale:
        return (" (right to about 6 digits only: is this measured by finite differences? "
                "It must be derived)")
    return ""


def numerical_gradient(f, x, eps=1e-6):
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` of a scalar
    function of a float64 array, for every element: the gradient a backward pass must give,
    computed without it (two calls of ``f`` per element: keep ``x`` small)."""
    x = np.array(x, dtype=np.float64)
    gradient = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        above = float(f(x))
        x[i] = saved - eps
        below = float(f(x))
        x[i] = saved
        gradient[i] = (above - below) / (2 * eps)
    return gradient


def numerical_gradients(forward, inputs, gy, eps=1e-6):
    """The gradients a backward pass must return for ``y = forward(*inputs)`` given
    ``gy = dL/dy``: ``[dL/d input for each input]`` of ``L = sum(gy * y)``, by central
    differences (``numerical_gradient``), with no backward pass involved."""
    inputs = [np.array(value, dtype=np.float64) for value in inputs]

    def loss_of(i):
        return lambda value: (gy * forward(*inputs[:i], value, *inputs[i + 1:])).sum()
    return [numerical_gradient(loss_of(i), value, eps) for i, value in enumerate(inputs)]

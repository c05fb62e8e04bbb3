"""Hidden tests of assignment 1: one check function per part of rubric.json.

Gradients are compared, to float64 precision, with exact complex-step derivatives of this
file's own forward passes (``miniclip.grading.exact``), so nothing here depends on the
submission's forward or on a backward pass, and finite differences do not pass. The last
case of each part is large: measuring its gradient element by element takes hours.
"""
import numpy as np

from miniclip.grading import exact

# (leading axes of x, in, out): a batch, a batch of sequences with a square weight, one
# feature in and out, no batch axis at all
LINEAR_CASES = [((5,), 3, 4), ((2, 3), 4, 4), ((3,), 1, 1), ((), 3, 2)]
LARGE_LINEAR = ((4, 16), 1024, 1024)
# (shape, axis): the last axis, a middle one, the only one, the first of two
SOFTMAX_CASES = [((3, 5), -1), ((2, 3, 4), 1), ((6,), 0), ((4, 3), 0)]
LARGE_SOFTMAX = ((8, 4096, 8), 1)
GIVEN = {}


def _linear(x, w, b):
    return x @ w.T + b


def _linear_case(rng, batch, n_in, n_out):
    return [rng.standard_normal(shape) for shape in
            (batch + (n_in,), (n_out, n_in), (n_out,), batch + (n_out,))]


def _name(x, w):
    return f"x {x.shape}, w {w.shape}"


def linear_input_gradient(submission, check):
    rng = np.random.default_rng(11)
    for case in LINEAR_CASES:
        x, w, b, gy = _linear_case(rng, *case)
        (expected, _, _) = exact.gradients(_linear, (x, w, b), gy)
        check.gradient(f"dL/dx for {_name(x, w)}",
                       submission.linear_input_gradient(w.copy(), gy.copy()), expected)
    x, w, b, gy = _linear_case(rng, *LARGE_LINEAR)
    direction = rng.standard_normal(x.shape)
    check.directional(f"dL/dx for {_name(x, w)}",
                      [submission.linear_input_gradient(w, gy)],
                      exact.directional_derivative(_linear, (x, w, b), gy,
                                                   [direction, None, None]), [direction])


def linear_parameter_gradients(submission, check):
    rng = np.random.default_rng(12)
    for case in LINEAR_CASES:
        x, w, b, gy = _linear_case(rng, *case)
        _, expected_w, expected_b = exact.gradients(_linear, (x, w, b), gy)
        got_w, got_b = submission.linear_parameter_gradients(x.copy(), gy.copy())
        check.gradient(f"dL/dw for {_name(x, w)}", got_w, expected_w)
        check.gradient(f"dL/db for {_name(x, w)}", got_b, expected_b)
    x, w, b, gy = _linear_case(rng, *LARGE_LINEAR)
    directions = [rng.standard_normal(w.shape), rng.standard_normal(b.shape)]
    check.directional(f"dL/dw and dL/db for {_name(x, w)}",
                      list(submission.linear_parameter_gradients(x, gy)),
                      exact.directional_derivative(_linear, (x, w, b), gy,
                                                   [None, *directions]), directions)


def _softmax(x, axis):
    e = np.exp(x - x.real.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_gradient(submission, check):
    rng = np.random.default_rng(13)
    for shape, axis in SOFTMAX_CASES:
        x, gy = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
        (expected,) = exact.gradients(lambda x: _softmax(x, axis), (x,), gy)
        got = submission.softmax_backward(_softmax(x, axis), gy.copy(), axis)
        check.gradient(f"dL/dx for x {shape}, axis {axis}", got, expected)
    shape, axis = LARGE_SOFTMAX
    x, gy, direction = (rng.standard_normal(shape) for _ in range(3))
    check.directional(f"dL/dx for x {shape}, axis {axis}",
                      [submission.softmax_backward(_softmax(x, axis), gy, axis)],
                      exact.directional_derivative(lambda x: _softmax(x, axis), (x,), gy,
                                                   [direction]), [direction])

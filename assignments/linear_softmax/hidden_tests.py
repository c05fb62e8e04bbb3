"""Hidden tests of assignment 1: one check function per part of rubric.json.

Gradients are compared with central differences of this file's own forward passes, so
nothing here depends on the submission's forward or on miniclip's backward passes.
"""
import numpy as np

from miniclip.grading import numerical_gradients

# (leading axes of x, in, out): a batch, a square weight, one feature in and out
LINEAR_CASES = [((5,), 3, 4), ((2, 3), 4, 4), ((3,), 1, 1), ((), 3, 2)]
SOFTMAX_CASES = [((3, 5), -1), ((2, 3, 4), 1), ((6,), 0), ((4, 1), -1)]


def _linear(x, w, b):
    return x @ w.T + b


def _check_gradients(submission, check, seed, names):
    rng = np.random.default_rng(seed)
    for batch, n_in, n_out in LINEAR_CASES:
        x, w, b, gy = (rng.standard_normal(shape) for shape in
                       (batch + (n_in,), (n_out, n_in), (n_out,), batch + (n_out,)))
        expected = dict(zip("xwb", numerical_gradients(_linear, (x, w, b), gy)))
        got = dict(zip("xwb", submission.linear_backward(x.copy(), w.copy(), gy.copy())))
        for name in names:
            check.close(f"dL/d{name} for x {x.shape}, w {w.shape}", got[name], expected[name])


def linear_input_gradient(submission, check):
    _check_gradients(submission, check, 11, "x")


def linear_parameter_gradients(submission, check):
    _check_gradients(submission, check, 12, "wb")


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_gradient(submission, check):
    rng = np.random.default_rng(13)
    for shape, axis in SOFTMAX_CASES:
        x, gy = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
        (expected,) = numerical_gradients(lambda x: _softmax(x, axis), (x,), gy)
        got = submission.softmax_backward(_softmax(x, axis), gy.copy(), axis)
        check.close(f"dL/dx for x {shape}, axis {axis}", got, expected)

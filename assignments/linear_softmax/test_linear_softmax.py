"""Public tests of assignment 1: python -m pytest test_linear_softmax.py (next to your file).

The graded tests check more shapes and axes, in the same way: your gradients against
central differences of the forward pass.
"""
import linear_softmax as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradients


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, w, b, gy = (rng.standard_normal(s) for s in ((2, 3), (4, 3), (4,), (2, 4)))
    expected = numerical_gradients(lambda x, w, b: x @ w.T + b, (x, w, b), gy)
    with exercise("1a-1b: linear_backward") as check:
        for name, got, want in zip(("dL/dx", "dL/dw", "dL/db"),
                                   submission.linear_backward(x, w, gy), expected):
            check.close(name, got, want)


def test_softmax_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, gy = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    (expected,) = numerical_gradients(submission.softmax_forward, (x,), gy)
    with exercise("1c: softmax_backward") as check:
        check.close("dL/dx", submission.softmax_backward(submission.softmax_forward(x), gy),
                    expected)

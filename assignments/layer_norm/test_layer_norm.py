"""Public tests of assignment 2: python -m pytest test_layer_norm.py (next to your file).

The graded tests check more shapes, and large, offset inputs, in the same way.
"""
import layer_norm as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradients


def test_the_output_of_each_row_has_mean_b_and_std_w():
    x = np.random.default_rng(0).standard_normal((3, 6)) * 4 + 2
    y = submission.layer_norm_forward(x, np.full(6, 2.0), np.full(6, 0.5), eps=0.0)
    with exercise("2a: layer_norm_forward") as check:
        check.close("row means", y.mean(axis=-1), np.full(3, 0.5))
        check.close("row standard deviations", y.std(axis=-1), np.full(3, 2.0))


def test_layer_norm_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, w, b, gy = (rng.standard_normal(s) for s in ((2, 4), (4,), (4,), (2, 4)))
    expected = numerical_gradients(submission.layer_norm_forward, (x, w, b), gy)
    with exercise("2b-2c: layer_norm_backward") as check:
        for name, got, want in zip(("dL/dx", "dL/dw", "dL/db"),
                                   submission.layer_norm_backward(x, w, gy), expected):
            check.close(name, got, want, atol=1e-5)

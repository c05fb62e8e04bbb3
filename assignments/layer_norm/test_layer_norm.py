"""Public tests of assignment 2: python -m pytest test_layer_norm.py (next to your file).

The graded tests check more shapes, and large, offset inputs, in the same way.
"""
import layer_norm as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradients


def test_the_output_of_each_row_has_mean_b_and_std_w():
    x = np.random.default_rng(0).standard_normal((3, 6)) * 4 + 2
    y = submission.layer_norm_forward(x, np.full(6, 2.0), np.full(6, 0.5), eps=0.0)
    with exercise("A2a: layer_norm_forward") as check:
        check.close("row means", y.mean(axis=-1), np.full(3, 0.5))
        check.close("row standard deviations", y.std(axis=-1), np.full(3, 2.0))


def gradients_of_a_batch_of_sequences(seed):
    """(x, w, gy, [dL/dx, dL/dw, dL/db] by finite differences) for x [2, 3, 4]: not 2-D."""
    rng = np.random.default_rng(seed)
    x, w, b, gy = (rng.standard_normal(s) for s in ((2, 3, 4), (4,), (4,), (2, 3, 4)))
    return x, w, gy, numerical_gradients(submission.layer_norm_forward, (x, w, b), gy)


def test_part_A2b_parameter_gradients_sum_over_every_leading_position():
    x, w, gy, (_, expected_w, expected_b) = gradients_of_a_batch_of_sequences(1)
    got_w, got_b = submission.layer_norm_parameter_gradients(x, gy)
    with exercise("A2b: layer_norm_parameter_gradients") as check:
        check.close("dL/dw", got_w, expected_w, atol=1e-5)
        check.close("dL/db", got_b, expected_b, atol=1e-5)


def test_part_A2c_input_gradient_counts_the_statistics():
    x, w, gy, (expected_x, _, _) = gradients_of_a_batch_of_sequences(2)
    with exercise("A2c: layer_norm_input_gradient") as check:
        check.close("dL/dx", submission.layer_norm_input_gradient(x, w, gy), expected_x,
                    atol=1e-5)

"""Public tests of assignment 1: python -m pytest test_linear_softmax.py (next to your file).

They catch the mistakes the handout warns about (a batch of sequences, the softmax's axis,
a transposed dL/dw) by comparing with central differences of the forward pass. The graded
tests check more shapes and axes, to float64 precision and on large inputs: there a
gradient measured by finite differences fails, and only a derived one passes.
"""
import linear_softmax as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradients


def linear_case(seed, batch, n_in, n_out):
    rng = np.random.default_rng(seed)
    x, w, b, gy = (rng.standard_normal(s) for s in
                   (batch + (n_in,), (n_out, n_in), (n_out,), batch + (n_out,)))
    return x, w, gy, numerical_gradients(submission.linear_forward, (x, w, b), gy)


def test_part_A1a_input_gradient_of_a_batch_of_sequences():
    x, w, gy, (expected, _, _) = linear_case(0, (2, 3), 4, 5)        # x [2, 3, 4]: not 2-D
    with exercise("A1a: linear_input_gradient") as check:
        check.close("dL/dx", submission.linear_input_gradient(w, gy), expected)


def test_part_A1b_parameter_gradients_of_a_batch_of_sequences():
    x, w, gy, (_, expected_w, expected_b) = linear_case(1, (2, 3), 4, 4)   # square: no
    with exercise("A1b: linear_parameter_gradients") as check:   # shape hides w.T
        got_w, got_b = submission.linear_parameter_gradients(x, gy)
        check.close("dL/dw", got_w, expected_w)
        check.close("dL/db", got_b, expected_b)


def test_part_A1c_softmax_backward_along_the_last_axis():
    rng = np.random.default_rng(2)
    x, gy = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    (expected,) = numerical_gradients(submission.softmax_forward, (x,), gy)
    with exercise("A1c: softmax_backward") as check:
        check.close("dL/dx", submission.softmax_backward(submission.softmax_forward(x), gy),
                    expected)


def test_part_A1c_softmax_backward_along_a_middle_axis():
    rng = np.random.default_rng(3)
    x, gy = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    (expected,) = numerical_gradients(lambda x: submission.softmax_forward(x, axis=1), (x,), gy)
    with exercise("A1c: softmax_backward") as check:
        check.close("dL/dx along axis 1",
                    submission.softmax_backward(submission.softmax_forward(x, axis=1), gy,
                                                axis=1), expected)

"""Public tests of assignment 3: python -m pytest test_im2col.py (next to your file).

The graded tests check more shapes, strides and paddings against the definitions,
computed pixel by pixel.
"""
import im2col as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradients


def conv_by_loops(x, weight, bias, stride, padding):
    """The definition: y[n, o, r, s] = sum of x_padded's window (r, s) times kernel o, + b[o]."""
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_ch, _, kh, kw = weight.shape
    ho = submission.output_size(x.shape[2], kh, stride, padding)
    wo = submission.output_size(x.shape[3], kw, stride, padding)
    y = np.zeros((x.shape[0], out_ch, ho, wo))
    for r in range(ho):
        for s in range(wo):
            window = padded[:, :, r * stride:r * stride + kh, s * stride:s * stride + kw]
            y[:, :, r, s] = np.tensordot(window, weight, axes=([1, 2, 3], [1, 2, 3])) + bias
    return y


def test_im2col_of_a_numbered_image():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    with exercise("A3a: im2col") as check:
        # four 2x2 windows, one per column; row (i, j) holds each window's pixel (i, j)
        check.close("im2col", submission.im2col(x, 2, 2),
                    [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 4))
    cols = rng.standard_normal(submission.im2col(x, 3, 3, 1, 1).shape)
    with exercise("A3b: col2im") as check:
        # <im2col(x), cols> = <x, col2im(cols)> for every x and cols
        check.close("<x, col2im(cols)>",
                    (x * submission.col2im(cols, x.shape, 3, 3, 1, 1)).sum(),
                    (submission.im2col(x, 3, 3, 1, 1) * cols).sum())


def test_the_convolution_and_its_gradients():
    rng = np.random.default_rng(1)
    x, weight, bias = (rng.standard_normal(s) for s in ((1, 2, 4, 4), (3, 2, 3, 3), (3,)))
    gy = rng.standard_normal((1, 3, 2, 2))
    with exercise("A3c: conv2d_forward") as check:
        check.close("y", submission.conv2d_forward(x, weight, bias, 2, 1),
                    conv_by_loops(x, weight, bias, 2, 1))
    expected = numerical_gradients(lambda *a: conv_by_loops(*a, 2, 1), (x, weight, bias), gy)
    with exercise("A3d: conv2d_parameter_gradients") as check:
        got_weight, got_bias = submission.conv2d_parameter_gradients(x, weight.shape, gy, 2, 1)
        check.close("dL/dweight", got_weight, expected[1], atol=1e-5)
        check.close("dL/dbias", got_bias, expected[2], atol=1e-5)
    with exercise("A3e: conv2d_input_gradient") as check:
        check.close("dL/dx", submission.conv2d_input_gradient(x.shape, weight, gy, 2, 1),
                    expected[0], atol=1e-5)

"""Hidden tests of assignment 3: one check function per part of rubric.json.

The references here loop over every pixel (the definitions, slow but plain), and the
convolution's gradients are central differences of the looped forward pass.
"""
import itertools

import numpy as np

from miniclip.grading import numerical_gradients

# (x shape, kh, kw, stride, padding): overlapping windows, a stride with padding, a
# non-square kernel, non-overlapping windows (a ViT's patches), one pixel
CASES = [((2, 2, 5, 5), 3, 3, 1, 0), ((1, 2, 5, 4), 3, 3, 2, 1), ((2, 1, 4, 5), 2, 3, 1, 1),
         ((1, 3, 4, 4), 2, 2, 2, 0), ((1, 1, 1, 1), 1, 1, 1, 0)]


def _windows(x_shape, kh, kw, stride, padding):
    """Every (row of cols, column of cols, pixel index into the padded x)."""
    n, c, h, w = x_shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    for (ci, i, j), (ni, r, s) in itertools.product(
            itertools.product(range(c), range(kh), range(kw)),
            itertools.product(range(n), range(ho), range(wo))):
        yield (ci * kh + i) * kw + j, (ni * ho + r) * wo + s, (ni, ci, r * stride + i,
                                                              s * stride + j)


def _im2col(x, kh, kw, stride, padding):
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    entries = list(_windows(x.shape, kh, kw, stride, padding))
    cols = np.zeros((max(e[0] for e in entries) + 1, max(e[1] for e in entries) + 1))
    for row, column, pixel in entries:
        cols[row, column] = padded[pixel]
    return cols


def _col2im(cols, x_shape, kh, kw, stride, padding):
    n, c, h, w = x_shape
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    for row, column, pixel in _windows(x_shape, kh, kw, stride, padding):
        padded[pixel] += cols[row, column]
    return padded[:, :, padding:padding + h, padding:padding + w]


def _conv(x, weight, bias, stride, padding):
    out_ch, _, kh, kw = weight.shape
    n, _, h, w = x.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    y = weight.reshape(out_ch, -1) @ _im2col(x, kh, kw, stride, padding) + bias[:, None]
    return y.reshape(out_ch, n, ho, wo).transpose(1, 0, 2, 3)


def _cases(seed):
    rng = np.random.default_rng(seed)
    for shape, kh, kw, stride, padding in CASES:
        weight = rng.standard_normal((2, shape[1], kh, kw))
        yield rng.standard_normal(shape), weight, rng.standard_normal(2), stride, padding


def _name(x, weight, stride, padding):
    return f"x {x.shape}, kernel {weight.shape[2:]}, stride {stride}, padding {padding}"


def im2col(submission, check):
    for x, weight, _, stride, padding in _cases(31):
        kh, kw = weight.shape[2:]
        check.close(f"im2col for {_name(x, weight, stride, padding)}",
                    submission.im2col(x.copy(), kh, kw, stride, padding),
                    _im2col(x, kh, kw, stride, padding))


def col2im(submission, check):
    for x, weight, _, stride, padding in _cases(32):
        kh, kw = weight.shape[2:]
        cols = np.random.default_rng(33).standard_normal(_im2col(x, kh, kw, stride,
                                                                 padding).shape)
        check.close(f"col2im for {_name(x, weight, stride, padding)}",
                    submission.col2im(cols.copy(), x.shape, kh, kw, stride, padding),
                    _col2im(cols, x.shape, kh, kw, stride, padding))


def forward(submission, check):
    for x, weight, bias, stride, padding in _cases(34):
        check.close(f"y for {_name(x, weight, stride, padding)}",
                    submission.conv2d_forward(x.copy(), weight.copy(), bias.copy(), stride,
                                              padding),
                    _conv(x, weight, bias, stride, padding))


def _check_gradients(submission, check, seed, names):
    for x, weight, bias, stride, padding in _cases(seed):
        gy = np.random.default_rng(seed).standard_normal(_conv(x, weight, bias, stride,
                                                               padding).shape)
        expected = numerical_gradients(lambda *a: _conv(*a, stride, padding),
                                       (x, weight, bias), gy)
        got = submission.conv2d_backward(x.copy(), weight.copy(), gy.copy(), stride, padding)
        for index, name in enumerate(("x", "weight", "bias")):
            if name in names:
                check.close(f"dL/d{name} for {_name(x, weight, stride, padding)}",
                            got[index], expected[index], atol=1e-5)


def parameter_gradients(submission, check):
    _check_gradients(submission, check, 35, ("weight", "bias"))


def input_gradient(submission, check):
    _check_gradients(submission, check, 36, ("x",))

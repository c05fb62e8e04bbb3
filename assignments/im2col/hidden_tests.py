"""Hidden tests of assignment 3: one check function per part of rubric.json.

The references here loop over every pixel (the definitions, slow but plain), and the
convolution's gradients are exact complex-step derivatives of the looped forward pass
(``miniclip.grading.exact``), compared to float64 precision: finite differences do not
pass. The last gradient case is a ResNet-sized layer, checked along random directions
with a convolution written with sliding windows; measuring its gradients element by
element takes minutes. ``GIVEN`` are the im2col and col2im the later parts are given.
"""
import itertools

import numpy as np

from miniclip.grading import exact

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
    cols = np.zeros((max(e[0] for e in entries) + 1, max(e[1] for e in entries) + 1),
                    dtype=np.result_type(x, np.float64))
    for row, column, pixel in entries:
        cols[row, column] = padded[pixel]
    return cols


def _col2im(cols, x_shape, kh, kw, stride, padding):
    n, c, h, w = x_shape
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
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


def _sliding_conv(x, weight, bias, stride, padding):
    """The convolution as a sum over sliding windows (no im2col): for the large case."""
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, weight.shape[2:], axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]                   # [N, C, Ho, Wo, kh, kw]
    return np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]


def _im2col_given(x, kh, kw, stride=1, padding=0):
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]                   # [N, C, Ho, Wo, kh, kw]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(x.shape[1] * kh * kw, -1)


def _col2im_given(cols, x_shape, kh, kw, stride=1, padding=0):
    n, c, h, w = x_shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    blocks = cols.reshape(c, kh, kw, n, ho, wo)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \
                blocks[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, padding:padding + h, padding:padding + w]


GIVEN = {"im2col": _im2col_given, "col2im": _col2im_given}
LARGE = ((2, 16, 32, 32), (32, 16, 3, 3), 1, 1)      # x, weight, stride, padding


def _gradients(submission, names, x, weight, gy, stride, padding):
    """The submission's (dL/dx, dL/dweight, dL/dbias), None for those not in ``names``."""
    if "x" in names:
        return submission.conv2d_input_gradient(x.shape, weight, gy, stride, padding), None, None
    return (None, *submission.conv2d_parameter_gradients(x, weight.shape, gy, stride, padding))


def _check_gradients(submission, check, seed, names):
    for x, weight, bias, stride, padding in _cases(seed):
        gy = np.random.default_rng(seed).standard_normal(_conv(x, weight, bias, stride,
                                                               padding).shape)
        expected = exact.gradients(lambda *a: _conv(*a, stride, padding), (x, weight, bias),
                                   gy)
        got = _gradients(submission, names, x.copy(), weight.copy(), gy.copy(), stride, padding)
        for index, name in enumerate(("x", "weight", "bias")):
            if name in names:
                check.gradient(f"dL/d{name} for {_name(x, weight, stride, padding)}",
                               got[index], expected[index])
    rng = np.random.default_rng(seed)
    x_shape, w_shape, stride, padding = LARGE
    x, weight, bias = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    forward = lambda *a: _sliding_conv(*a, stride, padding)     # noqa: E731
    gy = rng.standard_normal(forward(x, weight, bias).shape)
    directions = [rng.standard_normal(a.shape) if name in names else None
                  for name, a in zip(("x", "weight", "bias"), (x, weight, bias))]
    got = _gradients(submission, names, x, weight, gy, stride, padding)
    check.directional(f"{' and '.join('dL/d' + n for n in names)} for "
                      f"{_name(x, weight, stride, padding)}",
                      [g for g, d in zip(got, directions) if d is not None],
                      exact.directional_derivative(forward, (x, weight, bias), gy, directions),
                      [d for d in directions if d is not None])


def parameter_gradients(submission, check):
    _check_gradients(submission, check, 35, ("weight", "bias"))


def input_gradient(submission, check):
    _check_gradients(submission, check, 36, ("x",))

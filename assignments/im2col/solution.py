"""Assignment 3: convolution as a matrix product, im2col and col2im (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: miniclip's convolution
and its autograd are left out of the library while your file is graded. Images are NCHW; kernels
are [O, C, kh, kw]; ``stride`` and ``padding`` are ints (the same along both axes).
Python loops over the kernel offsets (kh * kw of them) are fine; loops over pixels or
images are too slow.
"""
import numpy as np


def output_size(size, kernel, stride, padding):
    """How many windows fit along an axis of ``size`` pixels. (Given.)"""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kh, kw, stride=1, padding=0):
    """The windows of x [N, C, H, W] as columns: cols [C * kh * kw, N * Ho * Wo] with
    cols[(c, i, j), (n, r, s)] = x_padded[n, c, r * stride + i, s * stride + j]
    (both index tuples flattened in C order)."""
    # BEGIN SOLUTION A3a: im2col
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            grid = padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            cols[:, i, j] = grid.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)
    # END SOLUTION


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of im2col: add every entry of cols back onto the pixel of x it was copied
    from (a pixel in several windows gets the sum); returns an array of ``x_shape``."""
    # BEGIN SOLUTION A3b: col2im
    n, c, h, w = x_shape
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    windows = cols.reshape(c, kh, kw, n, ho, wo)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \
                windows[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, padding:padding + h, padding:padding + w]
    # END SOLUTION


def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """y [N, O, Ho, Wo] = the cross-correlation of x with each kernel, plus bias [O]: one
    matrix product with im2col's columns."""
    # BEGIN SOLUTION A3c: conv2d_forward
    out_ch, _, kh, kw = weight.shape
    n, _, h, w = x.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    y = weight.reshape(out_ch, -1) @ im2col(x, kh, kw, stride, padding) + bias[:, None]
    return y.reshape(out_ch, n, ho, wo).transpose(1, 0, 2, 3)
    # END SOLUTION


def conv2d_parameter_gradients(x, weight_shape, gy, stride=1, padding=0):
    """(dL/dweight [O, C, kh, kw], dL/dbias [O]) through y = conv2d_forward(x, weight, bias,
    stride, padding), given gy = dL/dy [N, O, Ho, Wo]."""
    # BEGIN SOLUTION A3d: conv2d_parameter_gradients
    out_ch, _, kh, kw = weight_shape
    g = gy.transpose(1, 0, 2, 3).reshape(out_ch, -1)             # [O, N Ho Wo]
    cols = im2col(x, kh, kw, stride, padding)                    # [C kh kw, N Ho Wo]
    gw = (g @ cols.T).reshape(weight_shape)
    return gw, g.sum(axis=1)
    # END SOLUTION


def conv2d_input_gradient(x_shape, weight, gy, stride=1, padding=0):
    """dL/dx [N, C, H, W] through y = conv2d_forward(x, weight, bias, stride, padding), given
    gy = dL/dy [N, O, Ho, Wo]: through col2im."""
    # BEGIN SOLUTION A3e: conv2d_input_gradient
    out_ch, _, kh, kw = weight.shape
    g = gy.transpose(1, 0, 2, 3).reshape(out_ch, -1)             # [O, N Ho Wo]
    return col2im(weight.reshape(out_ch, -1).T @ g, tuple(x_shape), kh, kw, stride, padding)
    # END SOLUTION


def conv2d_backward(x, weight, gy, stride=1, padding=0):
    """(dL/dx, dL/dweight, dL/dbias): the two parts above together. (Given.)"""
    return (conv2d_input_gradient(x.shape, weight, gy, stride, padding),
            *conv2d_parameter_gradients(x, weight.shape, gy, stride, padding))

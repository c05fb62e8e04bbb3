"""2-D convolution and pooling on NCHW arrays, vectorised through sliding windows.

Every op here looks at the k_h x k_w *windows* of its input taken at steps of ``stride``.
``_windows`` gives them all as one strided view [N, C, H_out, W_out, k_h, k_w] that
copies nothing: window (r, c) starts at pixel (r * s_h, c * s_w), so moving one window
down is moving ``s_h`` pixels down, and NumPy/CuPy strides express exactly that.

* conv2d turns the windows into a matrix (*im2col*: one row per output pixel, one column
  per kernel offset and input channel) and multiplies it by the flattened kernels: a
  single large matrix product, which BLAS (CPU) or cuBLAS (GPU) runs fast. Its arrays are
  channels-last in memory (``Conv2d`` says why), seen as NCHW.
* the pools reduce each window (mean or max).

Backward passes need the adjoint of "take the windows": add each window's gradient back
onto the pixels it came from (``_add_windows``, *col2im*). Windows overlap when the stride
is smaller than the kernel, so a pixel collects the sum over every window that covers it.
"""
import math
import threading

import numpy as np

from .. import backend
from ..autograd import Function

_scratch = threading.local()  # each thread's own buffers: simulated ranks run as threads


def _windows(x, kernel, stride):
    """All kernel-sized windows of x [N, C, H, W] as a view [N, C, H_out, W_out, k_h, k_w].

    H_out = floor((H - k_h) / s_h) + 1 (a window must fit entirely). The view shares x's
    memory: never write into it.
    """
    xp = backend.get_array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    out_h, out_w = (h - kh) // sh + 1, (w - kw) // sw + 1
    step_n, step_c, step_h, step_w = x.strides                 # in bytes
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, out_h, out_w, kh, kw),
        strides=(step_n, step_c, step_h * sh, step_w * sw, step_h, step_w))


def _add_windows(windows, shape, stride):
    """The adjoint of ``_windows``: sum windows [N, C, H_out, W_out, k_h, k_w] back into a
    new array of ``shape`` [N, C, H, W]; pixels in no window get 0.

    Element (i, j) of every window is the pixel grid x[:, :, i::s_h, j::s_w] (H_out by W_out
    of them), so one strided slice per kernel offset adds all windows at once: k_h * k_w
    vectorised additions, however many pixels there are.
    """
    # BEGIN SOLUTION assignment im2col, 3b: col2im
    out = _zeros_laid_out_as(windows, shape)
    n, c, out_h, out_w, kh, kw = windows.shape
    sh, sw = stride
    if (sh, sw) == (kh, kw):
        # Windows tile the image without overlap (ViT's patch conv, ResNet's pools): put
        # them in place with one reshape instead of k_h * k_w slices.
        tiles = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, out_h * kh, out_w * kw)
        out[:, :, :out_h * kh, :out_w * kw] = tiles
        return out
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += windows[:, :, :, :, i, j]
    return out
    # END SOLUTION


def _zeros_laid_out_as(windows, shape):
    """Zeros [N, C, H, W] of ``shape``, channels-last in memory when the windows [N, C, Ho,
    Wo, k_h, k_w] have their channels fastest (conv2d's), so that adding them back reads
    and writes both in memory order."""
    xp = backend.get_array_module(windows)
    if windows.strides[1] == windows.itemsize and windows.shape[1] > 1:
        n, c, h, w = shape
        return xp.zeros((n, h, w, c), dtype=windows.dtype).transpose(0, 3, 1, 2)
    return xp.zeros(shape, dtype=windows.dtype)


def _pad(x, padding, value=0.0):
    """x [N, C, H, W] with ``padding`` (p_h, p_w) rows/columns of ``value`` on each side."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _unpad(x, padding):
    ph, pw = padding
    return x[:, :, ph:x.shape[2] - ph, pw:x.shape[3] - pw]


def _scratch_array(xp, shape, dtype):
    """An uninitialised array of ``shape``, in host memory this thread reuses from call to
    call, for im2col's columns (and their gradient), which live only inside one forward or
    backward call.

    Fresh memory that large comes from the operating system, which zeroes every page on
    first touch; in a process that has not asked glibc to keep freed memory, every
    convolution paid that for a copy k_h k_w times the size of its input, as much time as
    the copy itself. The largest buffer so far is kept per thread and dtype (for RN50 on 8
    images, 115 MB). CuPy's memory pool already reuses device memory, so device arrays are
    made as usual.
    """
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    buffers = vars(_scratch).setdefault("buffers", {})
    size, dtype = math.prod(shape), np.dtype(dtype)
    if buffers.get(dtype) is None or buffers[dtype].size < size:
        buffers[dtype] = None  # free the smaller one before making the larger
        buffers[dtype] = np.empty(size, dtype=dtype)
    return buffers[dtype][:size].reshape(shape)


def _channels_last(x):
    """The channels-last array [N, H, W, C] of x [N, C, H, W], C-contiguous: a view when x
    is already such an array seen as NCHW (what conv2d returns), else one copy."""
    nhwc = x.transpose(0, 2, 3, 1)
    return nhwc if nhwc.flags.c_contiguous else nhwc.copy()


def _pad_channels_last(x, padding):
    """x [N, H, W, C] with ``padding`` (p_h, p_w) rows/columns of zeros on each side."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, h, w, c = x.shape
    out = backend.get_array_module(x).zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    out[:, ph:ph + h, pw:pw + w] = x
    return out


class Conv2d(Function):
    """Cross-correlation (no kernel flip, as in every deep learning library), W [O, C, k_h, k_w]:
    y[n, o, r, c] = sum_{ch, i, j} x_pad[n, ch, r s_h + i, c s_w + j] W[o, ch, i, j] + b[o].

    As matrices (*im2col*): X_col [N H_out W_out, k_h k_w C] holds one window per row and
    W_mat [O, k_h k_w C] one kernel per row (its axes in the same order), so the whole
    convolution is the single product Y_mat = X_col W_mat^T [N H_out W_out, O]. Like any
    product, its backward is two products (see ``math.MatMul``):

    * dL/dW_mat = gY_mat^T X_col           (reshaped to W's shape)
    * dL/db     = gY_mat summed over its rows (b[o] is added to every output pixel)
    * dL/dX_col = gY_mat W_mat, and since X_col only copies pixels of x_pad into windows,
      dL/dx_pad = the window gradients added back onto their pixels (``_add_windows``,
      *col2im*); dL/dx drops the padding border again.

    **Channels last.** The arrays are laid out in memory as [N, H, W, C] (channels
    fastest), and the output is that array *seen* as [N, O, H_out, W_out] (a transposed
    view, no copy). Then Y_mat is the output's own memory, a convolution of a
    convolution's output (through batch norm, ReLU, pools and sums, which keep the
    layout) reads its input without a copy, and im2col copies runs of k_w C contiguous
    numbers (a window's row) instead of runs of W_out pixels, which at a ResNet's 7 x 7
    last stage are 7 numbers long. dL/dY arrives in the same layout, so gY_mat is a view too.

    When x needs no gradient (the images entering the first layer), dL/dx is not
    computed: the engine would drop it, and at the input's resolution its col2im is the
    largest of the network.

    Two cases skip the copy or its keeping:

    * A 1 x 1 kernel with stride 1 and no padding (most of a ResNet's convolutions) needs
      no im2col: X_col is x itself seen as [N H W, C], in the forward and the backward.
    * Otherwise X_col is not kept for the backward (it is k_h k_w times the size of x):
      the backward makes it again from the saved padded input. One more copy, but a
      ResNet's training step then holds its activations, not nine copies of each.
    """

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, *bias):
        out_ch, in_ch, kh, kw = weight.shape
        self.kernel, self.has_bias = (kh, kw), bool(bias)
        self.w_mat = weight.transpose(0, 2, 3, 1).reshape(out_ch, -1)  # [O, kh kw C]
        x = _channels_last(x)                                       # [N, H, W, C]
        n = x.shape[0]
        if self._pointwise():
            out_h, out_w = x.shape[1:3]
            self.x_mat = cols = x.reshape(-1, in_ch)                # [N H W, C], a view
        else:
            self.x_pad = _pad_channels_last(x, self.padding)        # [N, Hp, Wp, C]
            cols, (out_h, out_w) = self._im2col()                   # [N Ho Wo, kh kw C]
        y = cols @ self.w_mat.T                                     # [N Ho Wo, O]
        if self.has_bias:
            y += bias[0]
        return y.reshape(n, out_h, out_w, out_ch).transpose(0, 3, 1, 2)   # NCHW view

    def _pointwise(self):
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def _im2col(self):
        """X_col [N Ho Wo, kh kw C] of the saved padded input, and (Ho, Wo). A window's
        row, k_w pixels of C channels, is contiguous in the channels-last input, so the
        copy moves runs of k_w C numbers."""
        # BEGIN SOLUTION assignment im2col, 3a: im2col
        windows = _windows(self.x_pad.transpose(0, 3, 1, 2), self.kernel, self.stride)
        n, in_ch, out_h, out_w, kh, kw = windows.shape              # [N, C, Ho, Wo, kh, kw]
        rows = windows.transpose(0, 2, 3, 4, 5, 1)                  # [N, Ho, Wo, kh, kw, C]
        cols = _scratch_array(backend.get_array_module(rows), rows.shape, rows.dtype)
        cols[...] = rows                                            # the one copy
        return cols.reshape(n * out_h * out_w, -1), (out_h, out_w)
        # END SOLUTION

    def backward(self, gy):
        # BEGIN SOLUTION assignment im2col, 3d-3e: Conv2d.backward
        n, out_ch, out_h, out_w = gy.shape
        kh, kw = self.kernel
        g_mat = _channels_last(gy).reshape(-1, out_ch)              # [N Ho Wo, O]
        if self._pointwise():
            cols = self.x_mat                                       # [N H W, C]
        else:
            cols, _ = self._im2col()                                # [N Ho Wo, kh kw C]
        in_ch = cols.shape[1] // (kh * kw)
        gw = (g_mat.T @ cols).reshape(out_ch, kh, kw, in_ch).transpose(0, 3, 1, 2)
        if not self.inputs[0].requires_grad:
            gx = None  # a network's input images: col2im would be its largest
        elif self._pointwise():
            gx = (g_mat @ self.w_mat).reshape(n, out_h, out_w, in_ch).transpose(0, 3, 1, 2)
        else:
            # dL/dX_col, one [N Ho Wo, C] block per kernel offset (so that col2im adds
            # contiguous runs of W_out C numbers), overwrites the columns, which are used up.
            w_offsets = self.w_mat.reshape(out_ch, kh * kw, in_ch).transpose(1, 0, 2)
            g_offsets = backend.get_array_module(cols).matmul(    # [kh kw, N Ho Wo, C]
                g_mat, w_offsets, out=cols.reshape(kh * kw, -1, in_ch))
            g_windows = g_offsets.reshape(kh, kw, n, out_h, out_w, in_ch)
            g_windows = g_windows.transpose(2, 5, 3, 4, 0, 1)       # [N, C, Ho, Wo, kh, kw]
            padded_shape = self.x_pad.transpose(0, 3, 1, 2).shape
            gx = _unpad(_add_windows(g_windows, padded_shape, self.stride), self.padding)
        return (gx, gw, g_mat.sum(axis=0)) if self.has_bias else (gx, gw)
        # END SOLUTION


class AvgPool2d(Function):
    """y = mean of each k_h x k_w window. Every pixel of a window has weight 1 / (k_h k_w),
    so dL/dx = the sum, over the windows covering a pixel, of gy / (k_h k_w)."""

    def __init__(self, kernel, stride):
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        self.input_shape = x.shape
        windows = _windows(x, self.kernel, self.stride)             # [N, C, Ho, Wo, kh, kw]
        # Sum the windows offset by offset: k_h * k_w whole-image additions of strided
        # slices run several times faster than reducing the two tiny trailing axes.
        kh, kw = self.kernel
        total = windows[..., 0, 0].copy(order="K")  # keeps x's layout (channels last)
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    total += windows[..., i, j]
        return total / (kh * kw)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        kh, kw = self.kernel
        share = (gy / (kh * kw))[..., None, None]                  # [N, C, Ho, Wo, 1, 1]
        windows = xp.broadcast_to(share, gy.shape + (kh, kw))
        return _add_windows(windows, self.input_shape, self.stride)


class MaxPool2d(Function):
    """y = max of each window (padding counts as -inf, so it never wins).

    dy/dx is 1 for the window's largest element and 0 for the others, so each window sends
    its gy to the position of its argmax (the first one on ties, as PyTorch does), and a
    pixel that is the maximum of several windows receives the sum.
    """

    def __init__(self, kernel, stride, padding):
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x):
        x = _pad(x, self.padding, value=-np.inf)
        self.padded_shape = x.shape
        windows = _windows(x, self.kernel, self.stride)
        flat = windows.reshape(windows.shape[:4] + (-1,))        # [N, C, Ho, Wo, kh kw]
        self.argmax = flat.argmax(axis=-1)
        return flat.max(axis=-1)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        kh, kw = self.kernel
        is_max = xp.arange(kh * kw) == self.argmax[..., None]     # one-hot [.., kh kw]
        windows = (is_max * gy[..., None]).reshape(gy.shape + (kh, kw))
        return _unpad(_add_windows(windows, self.padded_shape, self.stride), self.padding)


def _bin_matrix(size_in, size_out):
    """[size_out, size_in] matrix averaging PyTorch's adaptive bins: output cell i averages
    input cells floor(i size_in / size_out) .. ceil((i + 1) size_in / size_out) - 1."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        start, end = (i * size_in) // size_out, -(-((i + 1) * size_in) // size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveAvgPool2d(Function):
    """Average pooling into a fixed output size, as a linear map along each spatial axis:
    y = P_h x P_w^T for every (n, c) image, P_h [H_out, H] and P_w [W_out, W] averaging
    matrices (``_bin_matrix``). A product of linear maps has the transposed product as
    its backward: dL/dx = P_h^T gy P_w.
    """

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        device = backend.device_of(x)
        (h, w), (out_h, out_w) = x.shape[2:], self.output_size
        self.p_h = device.to_device(_bin_matrix(h, out_h).astype(x.dtype))   # [Ho, H]
        self.p_w = device.to_device(_bin_matrix(w, out_w).astype(x.dtype))   # [Wo, W]
        return self.p_h @ x @ self.p_w.T

    def backward(self, gy):
        return self.p_h.T @ gy @ self.p_w


def _pair(value, name, op):
    """An int or a pair of ints as a pair (k -> (k, k))."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in pair)


def _check_image(input, op):
    if input.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D [N, C, H, W], got shape {input.shape}")


def _check_window_fits(input, kernel, stride, padding, op):
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: kernel {kernel} and stride {stride} must be positive and "
                         f"padding {padding} non-negative")
    h, w = input.shape[2] + 2 * padding[0], input.shape[3] + 2 * padding[1]
    if kernel[0] > h or kernel[1] > w:
        raise ValueError(f"{op}: kernel {kernel} is larger than the (padded) input "
                         f"{(h, w)} of input shape {input.shape}")


def conv2d(input, weight, bias=None, stride=1, padding=0):
    """2-D cross-correlation: input [N, C, H, W], weight [O, C, k_h, k_w], bias [O] or None.

    Output [N, O, H_out, W_out] with H_out = (H + 2 p_h - k_h) // s_h + 1.
    """
    _check_image(input, "conv2d")
    if weight.ndim != 4 or weight.shape[1] != input.shape[1]:
        raise ValueError(f"conv2d: weight must be [out_channels, {input.shape[1]}, kh, kw] for "
                         f"input of shape {input.shape} ({input.shape[1]} channels), got "
                         f"weight of shape {weight.shape}")
    stride, padding = _pair(stride, "stride", "conv2d"), _pair(padding, "padding", "conv2d")
    _check_window_fits(input, weight.shape[2:], stride, padding, "conv2d")
    if bias is None:
        return Conv2d(stride, padding)(input, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},) for weight of "
                         f"shape {weight.shape}, got {bias.shape}")
    return Conv2d(stride, padding)(input, weight, bias)


def avg_pool2d(input, kernel_size, stride=None):
    """Mean over each window (no padding; rows/columns that do not fill a window are dropped).
    ``stride`` defaults to ``kernel_size``."""
    _check_image(input, "avg_pool2d")
    kernel = _pair(kernel_size, "kernel_size", "avg_pool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "avg_pool2d")
    _check_window_fits(input, kernel, stride, (0, 0), "avg_pool2d")
    return AvgPool2d(kernel, stride)(input)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """Max over each window; ``stride`` defaults to ``kernel_size``; implicit -inf padding."""
    _check_image(input, "max_pool2d")
    kernel = _pair(kernel_size, "kernel_size", "max_pool2d")
    stride = kernel if stride is None else _pair(stride, "stride", "max_pool2d")
    padding = _pair(padding, "padding", "max_pool2d")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"max_pool2d: padding {padding} must be at most half the kernel "
                         f"{kernel}, or a window could hold only padding")
    _check_window_fits(input, kernel, stride, padding, "max_pool2d")
    return MaxPool2d(kernel, stride, padding)(input)


def adaptive_avg_pool2d(input, output_size):
    """Average-pool input [N, C, H, W] to [N, C, *output_size] with PyTorch's bin edges.
    An entry of ``output_size`` may be None to keep that input size."""
    _check_image(input, "adaptive_avg_pool2d")
    sizes = (output_size, output_size) if output_size is None or isinstance(
        output_size, (int, np.integer)) else tuple(output_size)
    if len(sizes) == 2:
        sizes = tuple(input.shape[2 + i] if s is None else s for i, s in enumerate(sizes))
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or pair, "
                         f"got {output_size!r}")
    return AdaptiveAvgPool2d(sizes)(input)

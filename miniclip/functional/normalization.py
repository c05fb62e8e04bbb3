"""Normalisations: layer_norm, batch_norm (each one fused op) and normalize (x / ||x||).

LayerNorm and BatchNorm compute the same thing over different axes,

    xhat = (x - mean) * r,   r = 1 / sqrt(var + eps),   y = xhat * w + b,

LayerNorm over the trailing feature axes of each sample, BatchNorm over the batch (and
spatial) axes of each channel. So they share one backward, derived in
``_AffineNormalization``. Writing them as single ops instead of a chain of ``sub``,
``mean``, ``sqrt``... keeps one saved ``xhat`` instead of a dozen intermediates, and
the closed-form backward is a few array operations.

Statistics of float16 inputs are computed in float32 and the output cast back, as CLIP's
LayerNorm does (see ``backend.accumulation_dtype``).
"""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .activation import ReLU
from .support import wrap_dim


@backend.fuse
def _normalize(xp, x, mean, rstd, weight, bias):
    """xhat = (x - mean) r and y = xhat w + b (w, b may be None), in one GPU kernel
    (``backend.fuse``): the statistics and parameters broadcast against x."""
    xhat = (x - mean) * rstd
    y = xhat if weight is None else xhat * weight
    return xhat, (y if bias is None else y + bias)


@backend.fuse
def _input_grad(xp, g, xhat, rstd, mean_g, mean_g_xhat):
    """dL/dx = r (g - mean(g) - xhat mean(g xhat)) (the derivation is ``_AffineNormalization``'s),
    in one GPU kernel."""
    return (g - mean_g - xhat * mean_g_xhat) * rstd


def _moments(x, axes):
    """Mean and biased (population) variance over ``axes``, kept as size-1 axes."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    return mean, (centered * centered).mean(axis=axes, keepdims=True)


class _AffineNormalization(Function):
    """y = xhat * w + b with xhat = (x - mu) r, r = (var + eps)^(-1/2); mu and var are taken
    over a set of n elements that share one statistic (``stat_axes``).

    Parameters. y is linear in w and b, so summing over every position p they are
    broadcast to: dL/dw = sum_p gy * xhat,  dL/db = sum_p gy.

    Input, statistics fixed (BatchNorm in eval mode): xhat is linear in x, so
    dL/dx = r * g with g = dL/dxhat = gy * w.

    Input, statistics of this batch (LayerNorm; BatchNorm training): mu and var depend on x.
    Within one group of n elements,
        dmu/dx_j = 1/n,   dvar/dx_j = 2 (x_j - mu) / n,
        dr/dx_j = -1/2 (var + eps)^(-3/2) dvar/dx_j = -r xhat_j / n,
    so  dxhat_i/dx_j = r (delta_ij - 1/n) + (x_i - mu) dr/dx_j
                     = r (delta_ij - 1/n - xhat_i xhat_j / n),
    and summing against g_i:
        dL/dx_j = r (g_j - mean(g) - xhat_j mean(g * xhat)),
    the means taken over the group. (Subtracting mean(g) removes the part of g that shifts
    every element alike, which the centring ignores; subtracting xhat * mean(g xhat) removes
    the part that scales them, which the division by the std ignores.)
    """

    def __init__(self, eps, has_weight, has_bias):
        self.eps, self.has_weight, self.has_bias = eps, has_weight, has_bias

    def _normalize(self, x, mean, var, affine, param_shape, param_axes, stat_axes):
        """The forward pass from the statistics; saves what backward needs.

        ``param_shape``: how w and b are reshaped to broadcast against x;
        ``param_axes``: the axes they are broadcast over (summed for their gradients);
        ``stat_axes``: axes of the statistics if they came from x, None if fixed.
        """
        self.rstd = 1.0 / backend.get_array_module(x).sqrt(var + self.eps)
        self.param_axes, self.stat_axes = param_axes, stat_axes
        self.weight = affine[0].reshape(param_shape) if self.has_weight else None
        bias = affine[-1].reshape(param_shape) if self.has_bias else None
        self.xhat, y = _normalize(x, mean, self.rstd, self.weight, bias)
        return y

    def backward(self, gy):
        # BEGIN SOLUTION assignment layer_norm, 2b-2c: the layer-norm backward
        xhat = self.xhat
        gy = gy.astype(xhat.dtype, copy=False)
        g = gy if self.weight is None else gy * self.weight          # dL/dxhat
        if self.stat_axes is None:
            grads = [g * self.rstd]
        else:
            axes = self.stat_axes
            grads = [_input_grad(g, xhat, self.rstd, g.mean(axis=axes, keepdims=True),
                                 (g * xhat).mean(axis=axes, keepdims=True))]
        if self.has_weight:
            grads.append((gy * xhat).sum(axis=self.param_axes))
        if self.has_bias:
            grads.append(gy.sum(axis=self.param_axes))
        return tuple(grads)
        # END SOLUTION


class LayerNorm(_AffineNormalization):
    """Normalise each sample over its last ``k`` axes (see the base class for the backward)."""

    def __init__(self, k, eps, has_weight, has_bias):
        super().__init__(eps, has_weight, has_bias)
        self.k = k

    def forward(self, x, *affine):
        features = tuple(range(x.ndim - self.k, x.ndim))
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        mean, var = _moments(x32, features)
        y = self._normalize(x32, mean, var, affine, param_shape=x.shape[x.ndim - self.k:],
                            param_axes=tuple(range(x.ndim - self.k)), stat_axes=features)
        return y.astype(x.dtype)


class BatchNorm(_AffineNormalization):
    """Normalise each channel (axis 1) over the batch and spatial axes.

    Training: the batch's mean and biased variance normalise x, and the running
    estimates move towards the batch's mean and *unbiased* variance (var * n / (n - 1)),
    in place. Evaluation (``FrozenBatchNorm`` runs it, this class can too): the running
    estimates normalise x and are constants.
    """

    def __init__(self, running_mean, running_var, training, momentum, eps, has_weight,
                 has_bias):
        super().__init__(eps, has_weight, has_bias)
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum = training, momentum

    def forward(self, x, *affine):
        channels = x.shape[1]
        across = (0,) + tuple(range(2, x.ndim))                       # N (and H, W)
        param_shape = (channels,) + (1,) * (x.ndim - 2)               # [C, 1, 1]
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        if self.training:
            mean, var = _moments(x32, across)
            if self.running_mean is not None:
                self._update_running_stats(mean, var, x.size // channels)
        else:  # in x32's dtype too: float16 buffers (a .half() model) would round var + eps
            mean = self.running_mean.reshape(param_shape).astype(x32.dtype, copy=False)
            var = self.running_var.reshape(param_shape).astype(x32.dtype, copy=False)
        y = self._normalize(x32, mean, var, affine, param_shape, param_axes=across,
                            stat_axes=across if self.training else None)
        return y.astype(x.dtype)

    def _update_running_stats(self, mean, var, n):
        m = self.momentum
        unbiased = var.reshape(-1) * (n / (n - 1))
        self.running_mean[...] = (1 - m) * self.running_mean + m * mean.reshape(-1)
        self.running_var[...] = (1 - m) * self.running_var + m * unbiased


@backend.fuse
def _scale_shift(xp, x, scale, shift):
    """x s + t, in one GPU kernel."""
    return x * scale + shift


@backend.fuse
def _scale_shift_relu(xp, x, scale, shift):
    """max(x s + t, 0), in one GPU kernel."""
    return xp.maximum(x * scale + shift, 0)


class FrozenBatchNorm(Function):
    """Batch norm with fixed statistics (evaluation), optionally followed by ReLU, as one
    per-channel affine map: y = x s + t (then max(., 0)) with

        s = w r,  t = b - mu s,   r = (var + eps)^(-1/2),

    folded once per call from the C running statistics, so the op is two passes over x
    instead of the four of (x - mu) r w + b, and ReLU adds no pass of its own.

    Backward. With z = x s + t and y = relu(z), dL/dz = gy [z > 0] (= gy without ReLU);
    z is linear in x, w and b: dL/dx = dL/dz s, dL/db = sum_p dL/dz and, since
    dz/dw = (x - mu) r, dL/dw = r (sum_p dL/dz x - mu sum_p dL/dz), sums over every
    position p of the channel. Nothing but x and y is kept (no xhat).
    """

    def __init__(self, running_mean, running_var, eps, has_weight, has_bias, relu):
        self.running_mean, self.running_var = running_mean, running_var
        self.eps, self.has_weight, self.has_bias, self.relu = eps, has_weight, has_bias, relu

    def forward(self, x, *affine):
        xp = backend.get_array_module(x)
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        channels = (x.shape[1],) + (1,) * (x.ndim - 2)                  # [C, 1, 1]
        self.across = (0,) + tuple(range(2, x.ndim))                   # N (and H, W)
        # In x32's dtype: float16 buffers (a .half() model) would round var + eps.
        self.mean = self.running_mean.reshape(channels).astype(x32.dtype, copy=False)
        var = self.running_var.reshape(channels).astype(x32.dtype, copy=False)
        self.rstd = 1.0 / xp.sqrt(var + self.eps)
        weight = affine[0].reshape(channels) if self.has_weight else None
        self.scale = self.rstd if weight is None else self.rstd * weight
        shift = -self.mean * self.scale
        if self.has_bias:
            shift = shift + affine[-1].reshape(channels)
        self.x = x32
        if xp is np:  # in place: one new array, not the two or three of the expression
            y = x32 * self.scale
            y += shift
            if self.relu:
                np.maximum(y, 0, out=y)
        else:  # one fused kernel on a GPU
            y = (_scale_shift_relu if self.relu else _scale_shift)(x32, self.scale, shift)
        self.y = y if self.relu else None
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        gz = gy.astype(self.x.dtype, copy=False)
        if self.relu:
            gz = gz * (self.y > 0)
        grads = [gz * self.scale]
        sum_gz = gz.sum(axis=self.across) if self.has_weight or self.has_bias else None
        if self.has_weight:
            sum_gz_x = (gz * self.x).sum(axis=self.across)
            grads.append(self.rstd.reshape(-1) * (sum_gz_x - self.mean.reshape(-1) * sum_gz))
        if self.has_bias:
            grads.append(sum_gz)
        return tuple(grads)


class Normalize(Function):
    """y = x / d with d = max(n, eps) and n = ||x||_p = (sum_k |x_k|^p)^(1/p) along one axis.

    dn/dx_i = (1/p) n^(1-p) * p |x_i|^(p-1) sign(x_i) = sign(x_i) |x_i / n|^(p-1),
    and dd/dx_i = [n > eps] dn/dx_i (the max passes the gradient only if n wins). Then
        dL/dx_i = gy_i / d - sum_k gy_k x_k / d^2 * dd/dx_i
                = (gy_i - [n > eps] s u_i) / d,   s = sum_k gy_k y_k,
    where u_i = sign(y_i) |y_i|^(p-1) equals dn/dx_i because y = x / n whenever n > eps.
    For p = 2, u = y: the gradient is gy with its component along y removed, over d.
    A zero vector gets y = 0 and gradient gy / eps, never NaN.
    """

    def __init__(self, p, axis, eps):
        self.p, self.axis, self.eps = p, axis, eps

    def forward(self, x):
        xp = backend.get_array_module(x)
        x32 = x.astype(backend.accumulation_dtype(x.dtype), copy=False)
        magnitude = xp.abs(x32)
        n = (magnitude ** self.p).sum(axis=self.axis, keepdims=True) ** (1.0 / self.p)
        self.norm_wins = n > self.eps
        self.d = xp.maximum(n, self.eps)
        self.y = x32 / self.d
        return self.y.astype(x.dtype)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        y = self.y
        gy = gy.astype(y.dtype, copy=False)
        s = (gy * y).sum(axis=self.axis, keepdims=True) * self.norm_wins
        u = y if self.p == 2 else xp.sign(y) * xp.abs(y) ** (self.p - 1)
        return (gy - s * u) / self.d


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` axes, then scale and shift.

    input [..., *normalized_shape]; weight and bias (optional) [*normalized_shape].
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or input.shape[input.ndim - k:] != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must match the trailing axes "
                         f"of the input, got input of shape {input.shape}")
    affine = _check_params("layer_norm", shape, weight=weight, bias=bias)
    return LayerNorm(k, eps, weight is not None, bias is not None)(input, *affine)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, relu=False):
    """Normalise each channel of input [N, C] or [N, C, H, W] (any trailing axes).

    ``running_mean`` / ``running_var`` [C] are arrays or Tensors (a module's buffers). In
    training they are updated in place: running = (1 - momentum) running + momentum batch,
    with the unbiased batch variance; they may then be None (no tracking). In evaluation
    they normalise the input, as one fused per-channel scale and shift
    (``FrozenBatchNorm``). ``relu=True`` applies ReLU to the result, fused into the same
    pass in evaluation: ``relu(batch_norm(x, ...))`` in one op.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: input must be [N, C, ...], got shape {input.shape}")
    channels = input.shape[1]
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    for name, stat in zip(("running_mean", "running_var"), stats):
        if stat is None:
            if not training:
                raise ValueError(f"batch_norm: {name} is needed in evaluation mode")
            continue
        if tuple(stat.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} must have shape ({channels},) for input of "
                             f"shape {input.shape}, got {tuple(stat.shape)}")
        if backend.device_of(stat) is not input.device:
            raise RuntimeError(f"batch_norm: {name} is on {backend.device_of(stat).name} but "
                               f"the input is on {input.device.name}")
    if training and input.size // channels < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                         f"input of shape {input.shape}")
    affine = _check_params("batch_norm", (channels,), weight=weight, bias=bias)
    has_weight, has_bias = weight is not None, bias is not None
    if not training:
        return FrozenBatchNorm(stats[0], stats[1], eps, has_weight, has_bias, relu)(input, *affine)
    y = BatchNorm(stats[0], stats[1], training, momentum, eps, has_weight, has_bias)(input, *affine)
    return ReLU()(y) if relu else y


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """``input / max(||input||_p, eps)`` along ``dim``: unit vectors (``torch.nn.functional``)."""
    if not 1 <= p < float("inf"):
        raise ValueError(f"normalize: p must be a finite number >= 1, got {p}")
    return Normalize(p, wrap_dim(dim, input.ndim, "normalize"), eps)(input)


def _check_params(op, shape, **params):
    """The given (not None) parameters, after checking each has ``shape``."""
    present = []
    for name, param in params.items():
        if param is None:
            continue
        if param.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {param.shape}")
        present.append(param)
    return present

"""The basic layers: each holds its weights as Parameters and calls one op of
``miniclip.functional`` in ``forward``. Names, shapes and default initialisations are
PyTorch's, so a PyTorch state dict loads into them unchanged.

Weights are created as float32 on the CPU, drawn from NumPy's global generator (see
``miniclip.nn.init``); use ``module.to(device)`` / ``module.to(dtype)`` afterwards.
"""
import numpy as np

from .. import functional as F
from . import init
from .module import Module


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Linear(Module):
    """y = x W^T + b, for inputs of shape ``[..., in_features]``.

    ``weight`` is ``[out_features, in_features]`` and ``bias`` ``[out_features]``, both
    initialised from U(±1/sqrt(in_features)) as in PyTorch.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = init.default_uniform_(init.empty(out_features, in_features), in_features)
        if bias:
            self.bias = init.default_uniform_(init.empty(out_features), in_features)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` axes to mean 0 and variance 1,
    then scale by ``weight`` (init 1) and shift by ``bias`` (init 0)."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.weight = init.ones_(init.empty(*self.normalized_shape))
        self.bias = init.zeros_(init.empty(*self.normalized_shape))

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Conv2d(Module):
    """2-D cross-correlation over NCHW images.

    ``weight`` is ``[out_channels, in_channels, kh, kw]``; weight and bias are
    initialised from U(±1/sqrt(in_channels·kh·kw)) as in PyTorch.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), stride, padding
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight = init.default_uniform_(
            init.empty(out_channels, in_channels, *self.kernel_size), fan_in)
        if bias:
            self.bias = init.default_uniform_(init.empty(out_channels), fan_in)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={_pair(self.stride)}")
        if _pair(self.padding) != (0, 0):
            text += f", padding={_pair(self.padding)}"
        return text + ("" if self.bias is not None else ", bias=False")


class BatchNorm2d(Module):
    """Batch normalisation of NCHW feature maps, one mean and variance per channel.

    In training mode it normalises with the statistics of the current batch (over N, H
    and W) and updates the buffers ``running_mean`` / ``running_var`` (the latter with
    the unbiased batch variance) as ``running = (1 - momentum) running + momentum batch``,
    and counts the updates in ``num_batches_tracked``. In eval mode it normalises with
    the running statistics, so the output of one image no longer depends on the others.
    """

    # Old PyTorch checkpoints have no num_batches_tracked; inference does not need it.
    _optional_state_keys = ("num_batches_tracked",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = init.ones_(init.empty(num_features))
        self.bias = init.zeros_(init.empty(num_features))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x, relu=False):
        """The normalised x; ``relu=True`` gives relu of it, fused in eval mode."""
        # The running statistics are raw arrays that F.batch_norm updates in place.
        y = F.batch_norm(x, self.running_mean.data, self.running_var.data, self.weight,
                         self.bias, training=self.training, momentum=self.momentum, eps=self.eps,
                         relu=relu)
        if self.training:
            self.num_batches_tracked.data += 1
        return y

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Embedding(Module):
    """A lookup table: integer ids of any shape -> rows of ``weight``
    ``[num_embeddings, embedding_dim]`` (initialised from N(0, 1) as in PyTorch)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = init.normal_(init.empty(num_embeddings, embedding_dim))

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Zero each element with probability ``p`` during training (scaling the rest by
    1/(1-p)); the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"

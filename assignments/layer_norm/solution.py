"""Assignment 2: layer normalisation, forward and backward (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: miniclip's layer norm
and its autograd are left out of the library while your file is graded. x is [..., D]; the statistics
are taken over the last axis; w and b are [D].
"""
import numpy as np


def layer_norm_forward(x, w, b, eps=1e-5):
    """y = xhat * w + b with xhat = (x - mean) / sqrt(var + eps), mean and (biased) var
    over the last axis."""
    # BEGIN SOLUTION A2a: layer_norm_forward
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b
    # END SOLUTION


def layer_norm_parameter_gradients(x, gy, eps=1e-5):
    """(dL/dw [D], dL/db [D]) through y = layer_norm_forward(x, w, b, eps), given
    gy = dL/dy [..., D]: every leading position of x contributes."""
    # BEGIN SOLUTION A2b: layer_norm_parameter_gradients
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    leading = tuple(range(x.ndim - 1))
    return (gy * xhat).sum(axis=leading), gy.sum(axis=leading)
    # END SOLUTION


def layer_norm_input_gradient(x, w, gy, eps=1e-5):
    """dL/dx [..., D] through y = layer_norm_forward(x, w, b, eps), given gy = dL/dy.
    Remember that the mean and the variance are functions of x too."""
    # BEGIN SOLUTION A2c: layer_norm_input_gradient
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * rstd
    g = gy * w                                                   # dL/dxhat
    gx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return gx
    # END SOLUTION


def layer_norm_backward(x, w, gy, eps=1e-5):
    """(dL/dx, dL/dw, dL/db): the two parts above together. (Given.)"""
    return (layer_norm_input_gradient(x, w, gy, eps),
            *layer_norm_parameter_gradients(x, gy, eps))

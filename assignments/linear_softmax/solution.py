"""Assignment 1: the backward passes of a linear layer and of softmax (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: while your file is
graded, miniclip's own layers, its autograd and its finite differences are left out of the
library. Every function takes and returns NumPy arrays of float64.
"""
import numpy as np


def linear_forward(x, w, b):
    """y = x w^T + b for x [..., in], w [out, in], b [out]: y [..., out]. (Given.)"""
    return x @ w.T + b


def linear_input_gradient(w, gy):
    """dL/dx [..., in] of y = linear_forward(x, w, b), given w [out, in] and gy = dL/dy
    [..., out]. gy may have any number of leading axes."""
    # BEGIN SOLUTION A1a: linear_input_gradient
    return gy @ w
    # END SOLUTION


def linear_parameter_gradients(x, gy):
    """(dL/dw [out, in], dL/db [out]) of y = linear_forward(x, w, b), given x [..., in] and
    gy = dL/dy [..., out]. Every leading position of x (a batch, or a batch of sequences) is
    one row, and every row contributes."""
    # BEGIN SOLUTION A1b: linear_parameter_gradients
    rows_gy = gy.reshape(-1, gy.shape[-1])                      # [M, out]
    rows_x = x.reshape(-1, x.shape[-1])                         # [M, in]
    return rows_gy.T @ rows_x, rows_gy.sum(axis=0)
    # END SOLUTION


def linear_backward(x, w, gy):
    """(dL/dx, dL/dw, dL/db): the two parts above together. (Given.)"""
    return (linear_input_gradient(w, gy), *linear_parameter_gradients(x, gy))


def softmax_forward(x, axis=-1):
    """softmax along ``axis``, shifted by the maximum so that nothing overflows. (Given.)"""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(y, gy, axis=-1):
    """dL/dx given the output y = softmax_forward(x, axis) and gy = dL/dy (same shape).

    Do not build the Jacobian: its size is the square of the axis' length.
    """
    # BEGIN SOLUTION A1c: softmax_backward
    return y * (gy - (gy * y).sum(axis=axis, keepdims=True))
    # END SOLUTION

"""Assignment 1: the backward passes of a linear layer and of softmax (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: miniclip's own layers and
its autograd are switched off while your file is graded. Every function takes and returns
NumPy arrays of float64.
"""
import numpy as np


def linear_forward(x, w, b):
    """y = x w^T + b for x [..., in], w [out, in], b [out]: y [..., out]. (Given.)"""
    return x @ w.T + b


def linear_backward(x, w, gy):
    """The gradients through y = linear_forward(x, w, b), given gy = dL/dy [..., out].

    Returns (dL/dx [..., in], dL/dw [out, in], dL/db [out]). x may have any number of
    leading axes; every leading position contributes to dL/dw and dL/db.
    """
    # BEGIN SOLUTION 1a-1b: linear_backward
    rows_gy = gy.reshape(-1, gy.shape[-1])                      # [M, out]
    rows_x = x.reshape(-1, x.shape[-1])                         # [M, in]
    return gy @ w, rows_gy.T @ rows_x, rows_gy.sum(axis=0)
    # END SOLUTION


def softmax_forward(x, axis=-1):
    """softmax along ``axis``, shifted by the maximum so that nothing overflows. (Given.)"""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(y, gy, axis=-1):
    """dL/dx given the output y = softmax_forward(x, axis) and gy = dL/dy (same shape).

    Do not build the Jacobian: its size is the square of the axis' length.
    """
    # BEGIN SOLUTION 1c: softmax_backward
    return y * (gy - (gy * y).sum(axis=axis, keepdims=True))
    # END SOLUTION

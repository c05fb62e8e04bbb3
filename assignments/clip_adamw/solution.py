"""Assignment 6: the CLIP loss, its gradient, and the AdamW update (see handout.md).

Write the bodies that raise NotImplementedError, with NumPy only: miniclip's loss, its
AdamW and its autograd are left out of the library while your file is graded.
"""
import numpy as np


def clip_loss(image_features, text_features, t):
    """The paper's symmetric loss for n matching pairs (row k of each is a pair):
    normalise each row to unit length, logits = I_e T_e^T * exp(t) [n, n], and
    loss = (cross-entropy over each column + cross-entropy over each row) / 2, each the
    mean over its n terms with the diagonal as the right answers. Returns the loss (a float).
    """
    # BEGIN SOLUTION A6a: clip_loss
    image = image_features / np.linalg.norm(image_features, axis=1, keepdims=True)
    text = text_features / np.linalg.norm(text_features, axis=1, keepdims=True)
    logits = image @ text.T * np.exp(t)
    diagonal = np.diagonal(logits)
    loss_rows = np.mean(np.log(np.exp(logits).sum(axis=1)) - diagonal)
    loss_columns = np.mean(np.log(np.exp(logits).sum(axis=0)) - diagonal)
    return float((loss_rows + loss_columns) / 2)
    # END SOLUTION


def clip_loss_logits_gradient(logits):
    """dL/dlogits [n, n] of L = (CE over columns + CE over rows) / 2 of ``logits``, in closed
    form (no finite differences, no autograd)."""
    # BEGIN SOLUTION A6b: clip_loss_logits_gradient
    n = logits.shape[0]
    shifted = np.exp(logits - logits.max())
    rows = shifted / shifted.sum(axis=1, keepdims=True)
    columns = shifted / shifted.sum(axis=0, keepdims=True)
    return (rows + columns - 2 * np.eye(n)) / (2 * n)
    # END SOLUTION


def adamw_step(theta, grad, m, v, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    """One AdamW step (torch.optim.AdamW) of parameters theta with gradient grad.

    m and v are the running averages of grad and grad**2 before this step (zeros before the
    first); step counts the steps from 1 (this one included). Returns the new
    (theta, m, v) and leaves the arrays it was given unchanged.
    """
    # BEGIN SOLUTION A6c: adamw_step
    beta1, beta2 = betas
    theta = theta * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    # END SOLUTION

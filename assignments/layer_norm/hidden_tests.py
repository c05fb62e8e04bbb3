"""Hidden tests of assignment 2: one check function per part of rubric.json.

The backward is compared with central differences of this file's own forward pass.
"""
import numpy as np

from miniclip.grading import numerical_gradients

# [..., D]: a batch of rows, a batch of sequences, one row, rows of two features, and
# large, offset inputs (the statistics must be subtracted, not assumed 0 and 1)
SHAPES = [(3, 4), (2, 3, 5), (6,), (4, 2)]


def _layer_norm(x, w, b, eps=1e-5):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _cases(seed):
    rng = np.random.default_rng(seed)
    for index, shape in enumerate(SHAPES + [(3, 4)]):
        scale, offset = (30.0, 5.0) if index == len(SHAPES) else (1.0, 0.0)
        x = scale * rng.standard_normal(shape) + offset
        w, b = rng.standard_normal(shape[-1:]), rng.standard_normal(shape[-1:])
        yield x, w, b, rng.standard_normal(shape)


def forward(submission, check):
    for x, w, b, _ in _cases(21):
        check.close(f"y for x {x.shape}", submission.layer_norm_forward(x.copy(), w, b),
                    _layer_norm(x, w, b))


def _check_gradients(submission, check, seed, names):
    for x, w, b, gy in _cases(seed):
        expected = dict(zip("xwb", numerical_gradients(_layer_norm, (x, w, b), gy)))
        got = dict(zip("xwb", submission.layer_norm_backward(x.copy(), w.copy(), gy.copy())))
        for name in names:
            check.close(f"dL/d{name} for x {x.shape}", got[name], expected[name], atol=1e-5)


def parameter_gradients(submission, check):
    _check_gradients(submission, check, 22, "wb")


def input_gradient(submission, check):
    _check_gradients(submission, check, 23, "x")

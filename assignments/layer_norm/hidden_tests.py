"""Hidden tests of assignment 2: one check function per part of rubric.json.

The backward is compared, to float64 precision, with exact complex-step derivatives of this
file's own forward pass (``miniclip.grading.exact``): finite differences do not pass. The
last case of each gradient part is large: measuring it element by element takes minutes.
"""
import numpy as np

from miniclip.grading import exact

# [..., D]: a batch of rows, a batch of sequences, one row, rows of two features, and
# large, offset inputs (the statistics must be subtracted, not assumed 0 and 1)
SHAPES = [(3, 4), (2, 3, 5), (6,), (4, 2)]
LARGE = (16, 8192)
GIVEN = {}


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)       # not np.var: analytic in x
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


def _gradients(submission, names, x, w, gy):
    """The submission's gradients named in ``names``, by name."""
    if names == "x":
        return {"x": submission.layer_norm_input_gradient(x, w, gy)}
    return dict(zip("wb", submission.layer_norm_parameter_gradients(x, gy)))


def _check_gradients(submission, check, seed, names):
    for x, w, b, gy in _cases(seed):
        expected = dict(zip("xwb", exact.gradients(_layer_norm, (x, w, b), gy)))
        got = _gradients(submission, names, x.copy(), w.copy(), gy.copy())
        for name in names:
            check.gradient(f"dL/d{name} for x {x.shape}", got[name], expected[name])
    rng = np.random.default_rng(seed)
    x, gy = rng.standard_normal(LARGE), rng.standard_normal(LARGE)
    w, b = rng.standard_normal(LARGE[-1:]), rng.standard_normal(LARGE[-1:])
    directions = {name: rng.standard_normal(value.shape)
                  for name, value in zip("xwb", (x, w, b)) if name in names}
    got = _gradients(submission, names, x, w, gy)
    check.directional(f"dL/d{' and dL/d'.join(names)} for x {x.shape}",
                      [got[name] for name in names],
                      exact.directional_derivative(_layer_norm, (x, w, b), gy,
                                                   [directions.get(n) for n in "xwb"]),
                      list(directions.values()))


def parameter_gradients(submission, check):
    _check_gradients(submission, check, 22, "wb")


def input_gradient(submission, check):
    _check_gradients(submission, check, 23, "x")

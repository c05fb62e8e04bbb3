"""Hidden tests of assignment 6: one check function per part of rubric.json.

The loss's gradient is compared, to float64 precision, with exact complex-step derivatives
of this file's own loss (``miniclip.grading.exact``; finite differences do not pass, and
the last case is too large to measure element by element); the AdamW steps with a
reference written from the update rule, over several steps.
"""
import numpy as np

from miniclip.grading import exact

GIVEN = {}


def _log_sum_exp(x, axis):
    top = x.real.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _loss_of_logits(logits):
    correct = np.diagonal(logits)
    return ((_log_sum_exp(logits, 0) - correct).mean()
            + (_log_sum_exp(logits, 1) - correct).mean()) / 2


def _unit_rows(x):
    return x / np.sqrt((x * x).sum(axis=1, keepdims=True))


def clip_loss(submission, check):
    rng = np.random.default_rng(61)
    for n, d_e, t in [(4, 3, np.log(1 / 0.07)), (2, 5, 0.0), (6, 6, np.log(100.0)),
                      (1, 2, 1.0)]:
        image, text = rng.standard_normal((n, d_e)), rng.standard_normal((n, d_e))
        expected = _loss_of_logits(_unit_rows(image) @ _unit_rows(text).T * np.exp(t))
        check.close(f"loss for n = {n}, d_e = {d_e}, t = {t:.3g}",
                    submission.clip_loss(image.copy(), text.copy(), t), expected)


def clip_loss_logits_gradient(submission, check):
    rng = np.random.default_rng(62)
    for n, scale in [(3, 1.0), (5, 10.0), (1, 1.0), (4, 100.0)]:
        logits = scale * rng.uniform(-1, 1, (n, n))
        gradient = exact.gradients(_loss_of_logits, (logits,), 1.0)[0]
        check.gradient(f"dL/dlogits for n = {n}, logits up to {scale:g}",
                       submission.clip_loss_logits_gradient(logits.copy()), gradient)
    logits, direction = 10 * rng.uniform(-1, 1, (1024, 1024)), rng.standard_normal((1024, 1024))
    check.directional("dL/dlogits for n = 1024",
                      [submission.clip_loss_logits_gradient(logits)],
                      exact.directional_derivative(_loss_of_logits, (logits,), 1.0,
                                                   [direction]), [direction])


def adamw_step(submission, check):
    rng = np.random.default_rng(63)
    settings = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    theta = rng.standard_normal((3, 4))
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    expected_theta, expected_m, expected_v = theta.copy(), m.copy(), v.copy()
    for step in range(1, 6):
        grad = rng.standard_normal(theta.shape) * 10.0 ** (step - 3)
        given = [a.copy() for a in (theta, grad, m, v)]
        originals = [a.copy() for a in given]
        theta, m, v = submission.adamw_step(*given, step, **settings)
        expected_theta = expected_theta * (1 - 0.01 * 0.1)
        expected_m = 0.8 * expected_m + 0.2 * grad
        expected_v = 0.99 * expected_v + 0.01 * grad ** 2
        denominator = np.sqrt(expected_v / (1 - 0.99 ** step)) + 1e-6
        expected_theta = expected_theta - 0.01 * expected_m / (1 - 0.8 ** step) / denominator
        check.close(f"m after step {step}", m, expected_m)
        check.close(f"v after step {step}", v, expected_v)
        check.close(f"theta after step {step}", theta, expected_theta, atol=1e-8)
        check.true(f"step {step}", all(map(np.array_equal, given, originals)),
                   "changed the arrays it was given: return new ones")

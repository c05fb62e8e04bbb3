"""Public tests of assignment 6: python -m pytest test_clip_adamw.py (next to your file).

The graded tests check more batch sizes and temperatures, the gradient against central
differences of the loss, and five AdamW steps against the update rule.
"""
import clip_adamw as submission
import numpy as np

from miniclip.grading import exercise, numerical_gradient


def test_the_loss_of_unrelated_and_of_perfect_pairs():
    with exercise("A6a: clip_loss") as check:
        same = np.ones((4, 3))              # every image matches every text: log n
        check.close("loss when all embeddings are equal", submission.clip_loss(same, same, 0.0),
                    np.log(4))
        eye = np.eye(3)                     # orthogonal pairs, scale e^5: almost 0
        check.close("loss of orthogonal pairs at t = 5", submission.clip_loss(eye, eye, 5.0),
                    np.log(1 + 2 * np.exp(-np.exp(5.0))), atol=1e-9)


def test_the_logits_gradient_matches_finite_differences_of_your_loss():
    logits = np.random.default_rng(0).standard_normal((3, 3))

    def loss_of_logits(logits):
        """The loss from the logits on: the mean cross-entropies of the rows and columns."""
        rows = np.log(np.exp(logits).sum(axis=1)) - np.diagonal(logits)
        columns = np.log(np.exp(logits).sum(axis=0)) - np.diagonal(logits)
        return (rows.mean() + columns.mean()) / 2

    with exercise("A6b: clip_loss_logits_gradient") as check:
        check.close("dL/dlogits", submission.clip_loss_logits_gradient(logits),
                    numerical_gradient(loss_of_logits, logits))


def test_the_first_adamw_step_moves_each_weight_by_about_lr():
    theta, grad = np.array([1.0, -2.0, 3.0]), np.array([1e-3, -5.0, 40.0])
    zeros = np.zeros(3)
    with exercise("A6c: adamw_step") as check:
        new_theta, m, v = submission.adamw_step(theta, grad, zeros, zeros, 1, lr=0.1,
                                                eps=0.0, weight_decay=0.0)
        # bias-corrected, the first step is lr * g / |g|, whatever the gradient's size
        check.close("theta after one step", new_theta, theta - 0.1 * np.sign(grad))
        check.close("m after one step", m, 0.1 * grad)
        decayed, _, _ = submission.adamw_step(theta, zeros, zeros, zeros, 1, lr=0.1,
                                              weight_decay=0.5)
        check.close("theta after a step with a zero gradient", decayed, theta * 0.95)

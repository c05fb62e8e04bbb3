"""Public tests of assignment 4: python -m pytest test_attention.py (next to your file).

The graded tests compare every function with attention computed one query at a time, on
more shapes, masks and head counts.
"""
import attention as submission
import numpy as np

from miniclip.grading import exercise


def test_the_causal_mask_of_three_tokens():
    with exercise("A4a: causal_mask") as check:
        check.close("causal_mask(3)", submission.causal_mask(3),
                    [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])


def test_attention_averages_the_values_it_may_see():
    rng = np.random.default_rng(0)
    q, k, v = np.zeros((1, 3, 4)), rng.standard_normal((1, 3, 4)), rng.standard_normal((1, 3, 2))
    # q = 0 scores every key alike: query i averages the values of keys 0..i
    out, weights = submission.scaled_dot_product_attention(q, k, v, submission.causal_mask(3))
    with exercise("A4b: scaled_dot_product_attention") as check:
        check.close("weights", weights, [[[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]]])
        check.close("out", out, np.cumsum(v, axis=1) / np.arange(1, 4)[None, :, None])


def test_attention_divides_the_scores_by_the_square_root_of_the_head_width():
    q = np.array([[[2.0, 0.0, 0.0, 0.0]]])                       # dh = 4
    k = np.array([[[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    v = np.array([[[1.0], [0.0]]])
    # the scores are q·k / √4 = 2 and 0, so the weights are softmax([2, 0])
    first = np.exp(2.0) / (np.exp(2.0) + 1.0)
    out, weights = submission.scaled_dot_product_attention(q, k, v)
    with exercise("A4b: scaled_dot_product_attention") as check:
        check.close("weights", weights, [[[first, 1 - first]]])
        check.close("out", out, [[[first]]])


def test_merge_heads_undoes_split_heads():
    x = np.arange(24.0).reshape(1, 4, 6)
    with exercise("A4c: split_heads and merge_heads") as check:
        check.close("split_heads(x, 2)[0, 1]", submission.split_heads(x, 2)[0, 1], x[0, :, 3:])
        check.close("merge_heads(split_heads(x, 3))",
                    submission.merge_heads(submission.split_heads(x, 3)), x)


def test_one_head_with_identity_projections_is_plain_attention():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    identity = np.concatenate([np.eye(4)] * 3)
    with exercise("A4d: multi_head_self_attention") as check:
        check.close("output", submission.multi_head_self_attention(
            x, identity, np.zeros(12), np.eye(4), np.zeros(4), num_heads=1),
            submission.scaled_dot_product_attention(x, x, x)[0])

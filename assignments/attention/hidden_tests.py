"""Hidden tests of assignment 4: one check function per part of rubric.json.

The references compute attention one query of one head at a time, from the definition.
"""
import numpy as np


def _reference_mask(length):
    return np.array([[0.0 if j <= i else -np.inf for j in range(length)]
                     for i in range(length)])


def _one_query(q, k, v, mask_row):
    scores = np.array([q @ key for key in k]) / np.sqrt(len(q)) + mask_row
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return weights @ v, weights


def _attention(q, k, v, mask):
    """q [B, Lq, dh], k [B, Lk, dh], v [B, Lk, dv]: (out, weights), a loop per query."""
    mask = np.zeros((q.shape[1], k.shape[1])) if mask is None else mask
    results = [[_one_query(q[b, i], k[b], v[b], mask[i]) for i in range(q.shape[1])]
               for b in range(q.shape[0])]
    return (np.array([[out for out, _ in row] for row in results]),
            np.array([[weights for _, weights in row] for row in results]))


def _split_heads_given(x, num_heads):
    n, length, width = x.shape
    return x.reshape(n, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def _merge_heads_given(x):
    n, heads, length, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, length, heads * dh)


def _attention_given(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


#: What part A4d is given: its own attention, split and merge, batched.
GIVEN = {"scaled_dot_product_attention": _attention_given, "split_heads": _split_heads_given,
         "merge_heads": _merge_heads_given}


def causal_mask(submission, check):
    for length in (1, 2, 5):
        check.close(f"causal_mask({length})", submission.causal_mask(length),
                    _reference_mask(length))


def scaled_dot_product_attention(submission, check):
    rng = np.random.default_rng(41)
    for lq, lk, dh, dv, masked in [(3, 3, 4, 4, False), (4, 4, 2, 3, True), (2, 5, 4, 1, False)]:
        q, k, v = (rng.standard_normal((2,) + s) for s in ((lq, dh), (lk, dh), (lk, dv)))
        mask = _reference_mask(lq) if masked else None
        out, weights = submission.scaled_dot_product_attention(q.copy(), k.copy(), v.copy(),
                                                                mask)
        expected_out, expected_weights = _attention(q, k, v, mask)
        name = f"q {q.shape}, k {k.shape}, v {v.shape}{', causal' if masked else ''}"
        check.close(f"weights for {name}", weights, expected_weights)
        check.close(f"out for {name}", out, expected_out)
    q = rng.standard_normal((2, 3, 4, 5))                         # [N, heads, L, dh]
    out, _ = submission.scaled_dot_product_attention(q, q, q)
    check.close("out for q = k = v of shape (2, 3, 4, 5)", out,
                _attention(*[q.reshape(6, 4, 5)] * 3, None)[0].reshape(2, 3, 4, 5))


def split_and_merge_heads(submission, check):
    x = np.arange(2 * 3 * 6.0).reshape(2, 3, 6)
    for heads in (1, 2, 3):
        split = submission.split_heads(x.copy(), heads)
        expected = np.stack([x[:, :, j * 6 // heads:(j + 1) * 6 // heads]
                             for j in range(heads)], axis=1)
        check.close(f"split_heads(x of shape (2, 3, 6), {heads})", split, expected)
        check.close(f"merge_heads of {heads} heads", submission.merge_heads(expected), x)


def multi_head_self_attention(submission, check):
    rng = np.random.default_rng(42)
    for n, length, width, heads, masked in [(2, 4, 6, 2, False), (1, 5, 8, 4, True),
                                            (2, 3, 4, 1, False)]:
        x = rng.standard_normal((n, length, width))
        w_in, b_in = rng.standard_normal((3 * width, width)), rng.standard_normal(3 * width)
        w_out, b_out = rng.standard_normal((width, width)), rng.standard_normal(width)
        mask = _reference_mask(length) if masked else None
        q, k, v = (x @ w_in[i * width:(i + 1) * width].T + b_in[i * width:(i + 1) * width]
                   for i in range(3))
        dh = width // heads
        outs = [_attention(q[..., j * dh:(j + 1) * dh], k[..., j * dh:(j + 1) * dh],
                           v[..., j * dh:(j + 1) * dh], mask)[0] for j in range(heads)]
        expected = np.concatenate(outs, axis=-1) @ w_out.T + b_out
        got = submission.multi_head_self_attention(x.copy(), w_in.copy(), b_in.copy(),
                                                   w_out.copy(), b_out.copy(), heads, mask)
        check.close(f"output for x {x.shape}, {heads} heads{', causal' if masked else ''}",
                    got, expected)

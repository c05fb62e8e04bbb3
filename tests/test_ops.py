"""Every op in ``miniclip.functional``, through one table-driven harness.

Each row of ``CASES`` is one op call: a name, the miniclip call, how to make its inputs,
and a plain-NumPy float64 reference for its forward values. Every row runs on every
device (the ``device`` fixture) in three dtypes:

* float64: the forward matches the reference, and an exhaustive gradcheck (central
  finite differences on every input element) confirms the hand-written backward;
* float32: the forward matches the reference, and the gradients match the float64 ones;
* float16: forward and backward run, stay float16 and finite, and both match the float64
  results to float16 precision.

Inputs are standard normal unless the row says otherwise: ``positive`` (log, sqrt,
divisors), ``away`` (kept away from kinks such as ReLU's 0, where finite differences
straddle two slopes) and ``distinct`` (no ties for max).
"""
import dataclasses
import json
import os
from typing import Callable

import numpy as np
import pytest
from conftest import recorded_dtypes, where

import miniclip.functional as F
from miniclip import backend
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import distinct_randn, gradcheck, randn_away_from


# ------------------------------------------------------------------ input makers
def randn(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: np.abs(rng.standard_normal(shape)) + 0.5


def away(*shape, kinks=(0.0,)):
    return lambda rng: randn_away_from(shape, kinks, margin=0.05, seed=int(rng.integers(1000)))


def distinct(*shape):
    return lambda rng: distinct_randn(shape, seed=int(rng.integers(1000)), gap=0.05)


def scaled(maker, scale, shift=0.0):
    return lambda rng: maker(rng) * scale + shift


def on(like, values):
    """Constant (non-differentiable) values as a tensor on ``like``'s device."""
    return Tensor(np.asarray(values), device=like.device)


# ------------------------------------------------------------------ NumPy references
def ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis):
    return np.log(ref_softmax(x, axis))


def ref_gelu(x):
    from math import erf, sqrt

    return x * 0.5 * (1 + np.vectorize(erf)(x / sqrt(2)))


def ref_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def ref_layer_norm(x, k, w=1.0, b=0.0, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def ref_batch_norm(x, w, b, mean=None, var=None, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (-1,) + (1,) * (x.ndim - 2)
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + \
        b.reshape(shape)


def ref_normalize(x, p, axis, eps=1e-12):
    n = (np.abs(x) ** p).sum(axis=axis, keepdims=True) ** (1 / p)
    return x / np.maximum(n, eps)


def ref_windows(x, kernel, stride, padding=(0, 0), pad_value=0.0):
    """Yield (r, c, window [N, C, kh, kw]) for every output position, by plain loops."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    for r in range((x.shape[2] - kh) // sh + 1):
        for c in range((x.shape[3] - kw) // sw + 1):
            yield r, c, x[:, :, r * sh:r * sh + kh, c * sw:c * sw + kw]


def ref_pool(x, kernel, stride, reduce, padding=(0, 0), pad_value=0.0):
    results = {(r, c): reduce(win, axis=(2, 3))
               for r, c, win in ref_windows(x, kernel, stride, padding, pad_value)}
    rows, cols = max(r for r, _ in results) + 1, max(c for _, c in results) + 1
    return np.stack([np.stack([results[r, c] for c in range(cols)], -1) for r in range(rows)], -2)


def ref_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    def dot(win, axis):
        return np.einsum("nchw,ochw->no", win, w)

    y = ref_pool(x, w.shape[2:], stride, dot, padding)
    return y if b is None else y + b[None, :, None, None]


def ref_adaptive_avg_pool2d(x, size):
    (h, w), (oh, ow) = x.shape[2:], size
    y = np.zeros(x.shape[:2] + size)
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            y[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return y


def ref_cross_entropy(x, labels):
    return -ref_log_softmax(x, 1)[np.arange(len(labels)), labels].mean()


# ------------------------------------------------------------------ the table
@dataclasses.dataclass
class Case:
    name: str
    fn: Callable          # miniclip: tensors -> tensor
    inputs: list          # a shape (standard normal) or a maker rng -> float64 array, per input
    reference: Callable   # NumPy float64: arrays -> array
    fp16_tol: float = 1e-2

    def make_inputs(self, rng):
        return [randn(*spec)(rng) if isinstance(spec, tuple) else spec(rng)
                for spec in self.inputs]


MASK = np.array([[True, False, True], [False, False, True], [True, True, False],
                 [False, True, True]])
IDS = np.array([[0, 3, 3], [4, 1, 0]])             # repeated ids: gradients must add up
LABELS = np.array([2, 0, 1, 2])
RUNNING_MEAN, RUNNING_VAR = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])
F64 = np.float64

CASES = [
    # math (broadcasting in both directions, 0-d operands, numbers on either side)
    Case("add_row_broadcast", F.add, [(4, 3), (3,)], np.add),
    Case("add_number", lambda x: x + 2.5, [(2, 3)], lambda x: x + 2.5),
    Case("sub_column_broadcast", F.sub, [(4, 3), (4, 1)], np.subtract),
    Case("mul_column_broadcast", F.mul, [(4, 3), (4, 1)], np.multiply),
    Case("mul_0d", F.mul, [(), (2, 3)], np.multiply),
    Case("div", F.div, [(3, 4), positive(4)], np.divide),
    Case("neg", F.neg, [(2, 3)], np.negative),
    Case("pow_number_exponent", lambda x: x ** 2.5, [positive(2, 3)], lambda x: x ** 2.5),
    Case("pow_number_base", lambda x: F.pow(2.0, x), [(2, 3)], lambda x: 2.0 ** x),
    Case("pow_tensor_tensor", F.pow, [positive(2, 3), (3,)], np.power),
    Case("exp", F.exp, [(2, 3)], np.exp, fp16_tol=2e-2),
    Case("log", F.log, [positive(2, 3)], np.log),
    Case("sqrt", F.sqrt, [positive(2, 3)], np.sqrt),
    Case("abs", F.abs, [away(2, 3)], np.abs),
    Case("matmul_2d", F.matmul, [(3, 4), (4, 2)], np.matmul),
    Case("matmul_batched_broadcast", F.matmul, [(2, 1, 3, 4), (3, 4, 2)], np.matmul),
    Case("matmul_vector_matrix", F.matmul, [(4,), (4, 3)], np.matmul),
    Case("matmul_matrix_vector", F.matmul, [(3, 4), (4,)], np.matmul),
    Case("matmul_vector_vector", F.matmul, [(4,), (4,)], np.matmul),
    Case("clamp_both", lambda x: F.clamp(x, -0.5, 0.5), [away(3, 4, kinks=(-0.5, 0.5))],
         lambda x: np.clip(x, -0.5, 0.5)),
    Case("clamp_min_only", lambda x: F.clamp(x, min=0.2), [away(3, 4, kinks=(0.2,))],
         lambda x: np.maximum(x, 0.2)),
    Case("where_broadcast", lambda a, b: F.where(on(a, MASK), a, b), [(4, 3), (3,)],
         lambda a, b: np.where(MASK, a, b)),
    Case("masked_fill", lambda x: F.masked_fill(x, on(x, MASK), -1.0), [(4, 3)],
         lambda x: np.where(MASK, -1.0, x)),
    Case("astype_float64", lambda x: F.astype(x, F64) * 2, [(2, 3)], lambda x: x * 2),
    # shape
    Case("reshape", lambda x: F.reshape(x, 3, -1), [(2, 6)], lambda x: x.reshape(3, -1)),
    Case("flatten", lambda x: F.flatten(x, 1), [(2, 3, 4)], lambda x: x.reshape(2, 12)),
    Case("transpose", lambda x: F.transpose(x, 0, 2), [(2, 3, 4)], lambda x: x.swapaxes(0, 2)),
    Case("permute", lambda x: F.permute(x, 2, 0, 1), [(2, 3, 4)],
         lambda x: x.transpose(2, 0, 1)),
    Case("T_property", lambda x: x.T, [(2, 3)], lambda x: x.T),
    Case("broadcast_to", lambda x: F.broadcast_to(x, 2, 3, 4), [(3, 1)],
         lambda x: np.broadcast_to(x, (2, 3, 4))),
    Case("unsqueeze_squeeze", lambda x: F.squeeze(F.unsqueeze(x, 1) * 2, 1), [(2, 3)],
         lambda x: x * 2),
    Case("squeeze_all", F.squeeze, [(1, 3, 1)], lambda x: x.reshape(3)),
    Case("getitem_basic", lambda x: x[1:, ::2, None, -1], [(3, 4, 2)],
         lambda x: x[1:, ::2, None, -1]),
    Case("getitem_integer_array", lambda x: x[[0, 2]], [(3, 2)], lambda x: x[[0, 2]]),
    Case("getitem_repeated_indices", lambda x: x[[1, 1, 0]], [(3, 2)], lambda x: x[[1, 1, 0]]),
    Case("getitem_two_arrays", lambda x: x[on(x, [0, 2, 2]), :, on(x, [1, 0, 1])],
         [(3, 2, 2)], lambda x: x[[0, 2, 2], :, [1, 0, 1]]),
    Case("getitem_bool_mask", lambda x: x[on(x, MASK)], [(4, 3)], lambda x: x[MASK]),
    Case("cat", lambda a, b, c: F.cat([a, b, c], dim=1), [(2, 1), (2, 3), (2, 2)],
         lambda a, b, c: np.concatenate([a, b, c], 1)),
    Case("stack", lambda a, b: F.stack([a, b], dim=-1), [(2, 3), (2, 3)],
         lambda a, b: np.stack([a, b], -1)),
    Case("split_one_piece_used", lambda x: F.split(x, 2, dim=1)[1], [(2, 5)],
         lambda x: x[:, 2:4]),
    Case("split_sections", lambda x: sum(p.sum() * (i + 1) for i, p in
                                         enumerate(F.split(x, [1, 3], dim=0))), [(4, 2)],
         lambda x: x[:1].sum() + 2 * x[1:].sum()),
    # reductions
    Case("sum_all", F.sum, [(2, 3)], np.sum),
    Case("sum_0d", F.sum, [()], np.sum),
    Case("sum_dim", lambda x: F.sum(x, 1), [(2, 3, 4)], lambda x: x.sum(1)),
    Case("sum_dims_keepdim", lambda x: F.sum(x, (0, 2), keepdim=True), [(2, 3, 4)],
         lambda x: x.sum((0, 2), keepdims=True)),
    Case("mean_all", F.mean, [(2, 3)], np.mean),
    Case("mean_dim_keepdim", lambda x: F.mean(x, -1, keepdim=True), [(2, 3)],
         lambda x: x.mean(-1, keepdims=True)),
    Case("max_all", F.max, [distinct(3, 4)], np.max),
    Case("max_dim", lambda x: F.max(x, 1), [distinct(2, 3, 4)], lambda x: x.max(1)),
    Case("max_dim_keepdim", lambda x: F.max(x, 0, keepdim=True), [distinct(3, 4)],
         lambda x: x.max(0, keepdims=True)),
    Case("norm_dim", lambda x: F.norm(x, 1), [(3, 4)], lambda x: np.linalg.norm(x, axis=1)),
    Case("norm_all", F.norm, [(3, 4)], lambda x: np.linalg.norm(x)),
    # activations
    Case("relu", F.relu, [away(3, 4)], lambda x: np.maximum(x, 0)),
    Case("gelu", F.gelu, [scaled(randn(3, 4), 2)], ref_gelu),
    Case("quick_gelu", F.quick_gelu, [scaled(randn(3, 4), 2)],
         lambda x: x * ref_sigmoid(1.702 * x)),
    Case("sigmoid", F.sigmoid, [scaled(randn(3, 4), 3)], ref_sigmoid),
    Case("log_sigmoid", F.log_sigmoid, [scaled(randn(3, 4), 4)], lambda x: np.log(ref_sigmoid(x))),
    Case("tanh", F.tanh, [(3, 4)], np.tanh),
    Case("softmax_last", lambda x: F.softmax(x, -1), [(3, 4)], lambda x: ref_softmax(x, -1)),
    Case("softmax_first", lambda x: F.softmax(x, 0), [(3, 4)], lambda x: ref_softmax(x, 0)),
    Case("softmax_large_logits", lambda x: F.softmax(x, -1), [scaled(randn(2, 5), 3, 1000.0)],
         lambda x: ref_softmax(x, -1), fp16_tol=0.1),
    Case("log_softmax", lambda x: F.log_softmax(x, 1), [(3, 4)],
         lambda x: ref_log_softmax(x, 1)),
    Case("log_softmax_large_logits", lambda x: F.log_softmax(x, -1),
         [scaled(randn(2, 5), 3, -1000.0)], lambda x: ref_log_softmax(x, -1)),
    # layers
    Case("linear_batched", F.linear, [(2, 3, 4), (5, 4), (5,)], lambda x, w, b: x @ w.T + b),
    Case("linear_vector_no_bias", F.linear, [(4,), (3, 4)], lambda x, w: w @ x),
    Case("embedding", lambda w: F.embedding(on(w, IDS), w), [(5, 3)], lambda w: w[IDS]),
    # normalisation
    Case("layer_norm_affine", lambda x, w, b: F.layer_norm(x, 4, w, b), [(2, 3, 4), (4,), (4,)],
         lambda x, w, b: ref_layer_norm(x, 1, w, b)),
    Case("layer_norm_two_axes", lambda x: F.layer_norm(x, (3, 4)), [(2, 3, 4)],
         lambda x: ref_layer_norm(x, 2)),
    Case("batch_norm_train_4d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         [(3, 3, 2, 2), (3,), (3,)], ref_batch_norm),
    Case("batch_norm_train_2d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         [(4, 3), (3,), (3,)], ref_batch_norm),
    Case("batch_norm_eval", lambda x, w, b: F.batch_norm(  # running stats float32 or wider
        x, *(on(x, s.astype(np.promote_types(x.dtype, np.float32))).data
             for s in (RUNNING_MEAN, RUNNING_VAR)), w, b), [(2, 3, 2, 2), (3,), (3,)],
         lambda x, w, b: ref_batch_norm(x, w, b, RUNNING_MEAN, RUNNING_VAR)),
    Case("batch_norm_eval_relu_fused", lambda x, w, b: F.batch_norm(
        x, *(on(x, s.astype(np.promote_types(x.dtype, np.float32))).data
             for s in (RUNNING_MEAN, RUNNING_VAR)), w, b, relu=True), [(2, 3, 2, 2), (3,), (3,)],
         lambda x, w, b: np.maximum(ref_batch_norm(x, w, b, RUNNING_MEAN, RUNNING_VAR), 0)),
    Case("batch_norm_eval_of_a_channels_last_view", lambda x, w, b: F.batch_norm(
        x.transpose(0, 3, 1, 2), *(on(x, s.astype(np.promote_types(x.dtype, np.float32))).data
                                   for s in (RUNNING_MEAN, RUNNING_VAR)), w, b),
         [(2, 2, 2, 3), (3,), (3,)],
         lambda x, w, b: ref_batch_norm(x.transpose(0, 3, 1, 2), w, b, RUNNING_MEAN, RUNNING_VAR)),
    Case("batch_norm_train_relu", lambda x, w, b: F.batch_norm(x, None, None, w, b,
                                                                training=True, relu=True),
         [(3, 3, 2, 2), (3,), (3,)], lambda x, w, b: np.maximum(ref_batch_norm(x, w, b), 0)),
    Case("normalize_l2", lambda x: F.normalize(x, dim=1), [(3, 4)],
         lambda x: ref_normalize(x, 2, 1)),
    Case("normalize_l1_dim0", lambda x: F.normalize(x, p=1, dim=0), [away(3, 4)],
         lambda x: ref_normalize(x, 1, 0)),
    Case("normalize_l3_last", lambda x: F.normalize(x, p=3, dim=-1), [(2, 3)],
         lambda x: ref_normalize(x, 3, -1)),
    # convolution and pooling
    Case("conv2d_padding_bias", lambda x, w, b: F.conv2d(x, w, b, padding=1),
         [(2, 2, 4, 4), (3, 2, 3, 3), (3,)],
         lambda x, w, b: ref_conv2d(x, w, b, padding=(1, 1)), fp16_tol=2e-2),
    Case("conv2d_stride_asymmetric", lambda x, w: F.conv2d(x, w, stride=2, padding=(1, 0)),
         [(1, 2, 5, 6), (2, 2, 2, 3)],
         lambda x, w: ref_conv2d(x, w, stride=(2, 2), padding=(1, 0)), fp16_tol=2e-2),
    Case("conv2d_patches", lambda x, w: F.conv2d(x, w, stride=2), [(1, 3, 4, 5), (2, 3, 2, 2)],
         lambda x, w: ref_conv2d(x, w, stride=(2, 2)), fp16_tol=2e-2),
    Case("conv2d_pointwise_bias", lambda x, w, b: F.conv2d(x, w, b),
         [(2, 3, 3, 2), (4, 3, 1, 1), (4,)], lambda x, w, b: ref_conv2d(x, w, b), fp16_tol=2e-2),
    Case("conv2d_pointwise_of_a_transposed_view",
         lambda x, w: F.conv2d(x.transpose(1, 0, 2, 3), w), [(3, 2, 2, 3), (2, 3, 1, 1)],
         lambda x, w: ref_conv2d(x.transpose(1, 0, 2, 3), w), fp16_tol=2e-2),
    Case("conv2d_of_a_channels_last_view",  # the layout conv2d returns, read without a copy
         lambda x, w: F.conv2d(x.transpose(0, 3, 1, 2), w, padding=1),
         [(2, 4, 3, 3), (2, 3, 3, 3)],
         lambda x, w: ref_conv2d(x.transpose(0, 3, 1, 2), w, padding=(1, 1)), fp16_tol=2e-2),
    Case("conv2d_pointwise_of_a_channels_last_view",
         lambda x, w, b: F.conv2d(x.transpose(0, 3, 1, 2), w, b), [(2, 2, 3, 3), (4, 3, 1, 1), (4,)],
         lambda x, w, b: ref_conv2d(x.transpose(0, 3, 1, 2), w, b), fp16_tol=2e-2),
    Case("avg_pool2d_of_a_channels_last_view", lambda x: F.avg_pool2d(x.transpose(0, 3, 1, 2), 2),
         [(1, 4, 4, 3)], lambda x: ref_pool(x.transpose(0, 3, 1, 2), (2, 2), (2, 2), np.mean)),
    Case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), [(1, 2, 5, 4)],
         lambda x: ref_pool(x, (2, 2), (2, 2), np.mean)),
    Case("avg_pool2d_overlapping", lambda x: F.avg_pool2d(x, 3, stride=2), [(2, 1, 5, 5)],
         lambda x: ref_pool(x, (3, 3), (2, 2), np.mean)),
    Case("max_pool2d", lambda x: F.max_pool2d(x, 2), [distinct(1, 2, 4, 4)],
         lambda x: ref_pool(x, (2, 2), (2, 2), np.max)),
    Case("max_pool2d_overlap_padding", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
         [distinct(1, 2, 5, 5)],
         lambda x: ref_pool(x, (3, 3), (2, 2), np.max, (1, 1), -np.inf)),
    Case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(1, 2, 7, 5)],
         lambda x: ref_adaptive_avg_pool2d(x, (3, 2))),
    Case("adaptive_avg_pool2d_global", lambda x: F.adaptive_avg_pool2d(x, 1), [(2, 2, 3, 3)],
         lambda x: x.mean(axis=(2, 3), keepdims=True)),
    # losses
    Case("cross_entropy", lambda x: F.cross_entropy(x, on(x, LABELS)), [(4, 3)],
         lambda x: ref_cross_entropy(x, LABELS)),
]

CASE_IDS = [case.name for case in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS), "case names must be unique"


# ------------------------------------------------------------------ the harness
def _run(case, device, dtype, values_of=None):
    """Run forward and backward in ``dtype``: (host inputs, output, input grads as NumPy).

    The inputs and the upstream gradient are rounded to ``values_of`` (default: ``dtype``),
    so a float64 run with ``values_of=np.float16`` sees exactly the float16 run's numbers.
    """
    values_of = values_of or dtype
    rng = np.random.default_rng(0)
    host = [a.astype(values_of).astype(F64) for a in case.make_inputs(rng)]
    tensors = [Tensor(a.astype(dtype), device=device, requires_grad=True) for a in host]
    out = case.fn(*tensors)
    upstream = rng.standard_normal(out.shape).astype(values_of).astype(out.dtype)
    out.backward(Tensor(upstream, device=device).data)
    return host, out, [backend.to_numpy(t.grad) for t in tensors]


def _expected_dtype(case, dtype):
    return np.dtype(F64) if case.name == "astype_float64" else np.dtype(dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_forward_matches_reference_and_backward_passes_gradcheck(case, device):
    rng = np.random.default_rng(0)
    host = case.make_inputs(rng)
    tensors = [Tensor(a, device=device, requires_grad=True) for a in host]
    out = case.fn(*tensors)
    assert out.dtype == np.float64 and out.device.name == device
    np.testing.assert_allclose(out.numpy(), case.reference(*host), rtol=1e-10, atol=1e-12)
    gradcheck(case.fn, tensors, mode="exhaustive")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_forward_matches_reference_and_grads_match_float64(case, device):
    host, out, grads = _run(case, device, np.float32)
    assert out.dtype == _expected_dtype(case, np.float32)
    expected = np.asarray(case.reference(*host))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5 * _scale(expected))
    _, _, grads64 = _run(case, device, F64, values_of=np.float32)
    for g, g64 in zip(grads, grads64):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-4 * _scale(g64))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float16_forward_and_backward_stay_finite_and_close(case, device):
    host, out, grads = _run(case, device, np.float16)
    assert out.dtype == _expected_dtype(case, np.float16)
    expected = np.asarray(case.reference(*host))
    tol = case.fp16_tol
    np.testing.assert_allclose(out.numpy().astype(F64), expected, rtol=tol,
                               atol=tol * _scale(expected))
    _, _, grads64 = _run(case, device, F64, values_of=np.float16)
    for g, g64 in zip(grads, grads64):
        assert g.dtype == np.float16 and np.isfinite(g).all()
        np.testing.assert_allclose(g.astype(F64), g64, rtol=tol, atol=tol * _scale(g64))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_and_float16_inputs_never_compute_in_float64(case, device, dtype):
    if case.name == "astype_float64":
        pytest.skip("asks for float64")
    with recorded_dtypes(device) as seen:
        _run(case, device, dtype)
    assert where(seen, F64) == []


def _scale(values):
    """The size of the values, for absolute tolerances of sums of rounded terms."""
    values = np.asarray(values)
    return max(1.0, float(np.abs(values).max())) if values.size else 1.0


# ------------------------------------------------------------------ PyTorch golden values
# Made by scripts/make_ops_fixture.py. miniclip.functional follows torch.nn.functional's
# names and arguments, so each recorded torch call is replayed here as the same call.
FIXTURE = np.load(os.path.join(os.path.dirname(__file__), "fixtures", "ops_torch_reference.npz"))
TORCH_CASES = json.loads(str(FIXTURE["cases"]))


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_matches_pytorch_outputs_gradients_and_running_stats(name, device):
    case = TORCH_CASES[name]
    args = []
    for i in range(case["nargs"]):
        if str(i) in case["literals"]:
            args.append(case["literals"][str(i)])
        else:
            args.append(Tensor(FIXTURE[f"{name}.arg{i}"], device=device,
                               requires_grad=i in case["differentiable"]))
    out = getattr(F, case["op"])(*args, **case["kwargs"])
    np.testing.assert_allclose(out.numpy(), FIXTURE[f"{name}.out"], rtol=1e-10, atol=1e-12)
    out.backward(Tensor(FIXTURE[f"{name}.upstream"], device=device).data)
    for i in case["differentiable"]:
        np.testing.assert_allclose(backend.to_numpy(args[i].grad), FIXTURE[f"{name}.grad{i}"],
                                   rtol=1e-9, atol=1e-12)
    if case["op"] == "batch_norm":  # running statistics, updated in place in training
        for i in (1, 2):
            np.testing.assert_allclose(args[i].numpy(), FIXTURE[f"{name}.after{i}"], rtol=1e-12)


# ------------------------------------------------------------------ bad input explains itself
def t(shape, device, dtype=F64):
    return Tensor(np.zeros(shape, dtype), device=device)


@pytest.mark.parametrize("call, error, message", [
    (lambda d: F.linear(t((2, 3), d), t((4, 5), d)), ValueError, r"linear.*\(2, 3\).*\(4, 5\)"),
    (lambda d: F.linear(t((2, 3), d), t((4, 3), d), t((3,), d)), ValueError, r"bias.*\(4,\)"),
    (lambda d: F.matmul(t((2, 3), d), t((2, 3), d)), ValueError, r"matmul.*\(2, 3\)"),
    (lambda d: F.conv2d(t((1, 3, 5, 5), d), t((4, 2, 3, 3), d)), ValueError,
     r"conv2d.*\(1, 3, 5, 5\).*\(4, 2, 3, 3\)"),
    (lambda d: F.conv2d(t((3, 5, 5), d), t((4, 3, 3, 3), d)), ValueError, r"conv2d.*4-D"),
    (lambda d: F.conv2d(t((1, 1, 2, 2), d), t((1, 1, 3, 3), d)), ValueError,
     r"conv2d.*larger than"),
    (lambda d: F.max_pool2d(t((1, 1, 4, 4), d), 2, padding=2), ValueError, "half the kernel"),
    (lambda d: F.embedding(t((2,), d), t((5, 3), d)), TypeError, r"embedding.*float64"),
    (lambda d: F.embedding(np.array([0, 5]), t((5, 3), d)), IndexError,
     r"embedding.*\[0, 5\).*0 to 5"),
    (lambda d: F.embedding(np.array([-1]), t((5, 3), d)), IndexError, r"\[0, 5\)"),
    (lambda d: F.cross_entropy(t((4, 3), d), np.array([0, 1])), ValueError,
     r"cross_entropy.*\(4,\).*\(4, 3\).*\(2,\)"),
    (lambda d: F.cross_entropy(t((2, 3), d), np.array([0, 3])), IndexError, r"\[0, 3\)"),
    (lambda d: F.cross_entropy(t((3,), d), np.array([0])), ValueError, r"\[N, C\].*\(3,\)"),
    (lambda d: F.layer_norm(t((2, 3), d), 4), ValueError, r"layer_norm.*\(4,\).*\(2, 3\)"),
    (lambda d: F.layer_norm(t((2, 3), d), 3, t((4,), d)), ValueError, r"weight.*\(3,\)"),
    (lambda d: F.batch_norm(t((2, 3), d), t((4,), d), t((3,), d)), ValueError,
     r"running_mean.*\(3,\).*\(4,\)"),
    (lambda d: F.batch_norm(t((2, 3), d), None, None), ValueError, "evaluation"),
    (lambda d: F.batch_norm(t((1, 3), d), None, None, training=True), ValueError,
     "more than one value"),
    (lambda d: F.dropout(t((2,), d), p=1.5), ValueError, r"\[0, 1\]"),
    (lambda d: F.normalize(t((2,), d), p=0.5, dim=0), ValueError, "p must"),
    (lambda d: F.unsqueeze(t((2, 3), d), 4), IndexError, r"unsqueeze.*dim 4"),
    (lambda d: F.stack([t((2,), d)] * 2, -3), IndexError, r"stack.*dim -3"),
    (lambda d: F.adaptive_avg_pool2d(t((1, 1, 4, 4), d), (1, None, 2)), ValueError,
     r"adaptive_avg_pool2d.*\(1, None, 2\)"),
])
def test_bad_input_raises_an_error_naming_the_op_and_the_shapes(call, error, message, device):
    with pytest.raises(error, match=message):
        call(device)


def test_indices_on_another_device_name_both_devices():
    weight = Tensor(np.zeros((5, 3)), device="cuda")
    with pytest.raises(RuntimeError, match="cpu.*cuda"):
        F.embedding(Tensor(np.array([0, 1])), weight)


# ------------------------------------------------------------------ behaviours beyond the table
def test_embedding_accepts_host_ids_of_any_shape(device):
    weight = Tensor(np.arange(10.0).reshape(5, 2), device=device)
    out = F.embedding([[4], [0]], weight)
    np.testing.assert_array_equal(out.numpy(), [[[8.0, 9.0]], [[0.0, 1.0]]])


def test_dropout_is_the_identity_in_eval_mode_and_for_p_zero(device):
    x = Tensor(np.ones((3, 4)), device=device)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_zeroes_about_p_and_scales_the_rest_by_one_over_one_minus_p(device):
    x = Tensor(np.ones((100, 100)), device=device)
    y = F.dropout(x, p=0.25).numpy()
    assert set(np.unique(y)) <= {0.0, 1.0 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02 and abs(y.mean() - 1.0) < 0.03


def test_dropout_backward_reuses_the_forward_mask(device):
    x = Tensor(np.ones((8, 8)), device=device, requires_grad=True)
    y = F.dropout(x, p=0.5)
    y.sum().backward()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), y.numpy())


def test_dropout_with_p_one_drops_everything(device):
    x = Tensor(np.ones((2, 3)), device=device, requires_grad=True)
    y = F.dropout(x, p=1.0)
    y.sum().backward()
    assert not y.numpy().any() and not backend.to_numpy(x.grad).any()


def test_softmax_of_huge_logits_stays_finite_in_float32(device):
    x = Tensor(np.array([[0.0, 1e4, -1e4]], np.float32), device=device)
    np.testing.assert_array_equal(F.softmax(x, -1).numpy(), [[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(x, -1).numpy(), [[-1e4, 0.0, -2e4]])


def test_log_sigmoid_of_huge_inputs_stays_finite_in_float32(device):
    # log(sigmoid(-1e4)) would be log(0) = -inf; the slope there is 1, and 0 at +1e4
    x = Tensor(np.array([-1e4, 0.0, 1e4], np.float32), device=device, requires_grad=True)
    y = F.log_sigmoid(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [-1e4, -np.log(2.0), 0.0], rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(x.grad), [1.0, 0.5, 0.0])


def test_normalize_of_a_zero_vector_gives_zeros_and_finite_gradients(device):
    x = Tensor(np.zeros((2, 3)), device=device, requires_grad=True)
    y = F.normalize(x, dim=1)
    y.sum().backward()
    assert not y.numpy().any()
    np.testing.assert_array_equal(backend.to_numpy(x.grad), np.full((2, 3), 1e12))


def test_layer_norm_of_float16_input_with_float32_parameters_runs_in_float32(device):
    """CLIP's LayerNorm: float16 activations, float32 weights, output in float16."""
    rng = np.random.default_rng(0)
    x64 = (rng.standard_normal((2, 8)) * 400).astype(np.float16).astype(F64)  # sum of squares
    x = Tensor(x64.astype(np.float16), device=device, requires_grad=True)    # overflows fp16
    w = Tensor(np.ones(8, np.float32), device=device, requires_grad=True)
    y = F.layer_norm(x, 8, w)
    y.sum().backward()
    assert y.dtype == np.float16 and x.grad.dtype == np.float16 and w.grad.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ref_layer_norm(x64, 1), atol=4e-3)


def test_batch_norm_training_updates_the_running_stats_in_place(device):
    x = Tensor(np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]]), device=device)
    mean, var = on(x, [0.0, 0.0]).data, on(x, [1.0, 1.0]).data
    F.batch_norm(x, mean, var, training=True, momentum=0.5)
    # batch means [3, 30]; unbiased variances [4, 700]
    np.testing.assert_allclose(backend.to_numpy(mean), [1.5, 15.0])
    np.testing.assert_allclose(backend.to_numpy(var), [2.5, 350.5])


def test_batch_norm_eval_uses_the_running_stats_and_leaves_them_alone(device):
    x = Tensor(np.array([[2.0], [4.0]]), device=device)
    mean, var = on(x, [1.0]).data, on(x, [4.0 - 1e-5]).data
    np.testing.assert_allclose(F.batch_norm(x, mean, var).numpy(), [[0.5], [1.5]])
    assert backend.to_numpy(mean)[0] == 1.0


def test_conv2d_accepts_the_strided_output_of_another_conv2d(device):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)), device=device)
    w1, w2 = (Tensor(rng.standard_normal(s), device=device) for s in [(4, 3, 3, 3),
                                                                       (2, 4, 1, 1)])
    hidden = F.conv2d(x, w1, padding=1)
    y = F.conv2d(hidden, w2)
    expected = ref_conv2d(ref_conv2d(x.numpy(), w1.numpy(), padding=(1, 1)), w2.numpy())
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_conv2d_of_a_constant_input_gives_the_weight_gradient_and_none_for_the_input(device):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 5, 5)), device=device)           # no requires_grad
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True, device=device)
    gy = rng.standard_normal((2, 4, 5, 5))
    F.conv2d(x, w, padding=1).backward(Tensor(gy, device=device))
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    expected = np.einsum("nohw,nchwij->ocij", gy, windows)                # [O, C, 3, 3]
    np.testing.assert_allclose(backend.to_numpy(w.grad), expected, rtol=1e-10)
    assert x.grad is None

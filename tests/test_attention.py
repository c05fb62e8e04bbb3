"""MultiheadAttention against the formula of docs/reference.md ("Shared blocks") (a plain-NumPy float64
implementation with one loop over heads), against PyTorch's numbers (a committed fixture
made by scripts/make_mha_fixture.py), and against finite differences."""
import os

import numpy as np
import pytest

from miniclip import nn
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import gradcheck

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "mha_torch_reference.npz")


def reference_attention(query, key_value, state, num_heads, mask=None):
    """The reference's formula, head by head, in float64 NumPy: returns (out, weights)."""
    w, b = state["in_proj_weight"], state["in_proj_bias"]
    d = w.shape[1]
    q = query @ w[:d].T + b[:d]                     # rows 0..d-1 project the queries
    k = key_value @ w[d:2 * d].T + b[d:2 * d]       # rows d..2d-1 the keys
    v = key_value @ w[2 * d:].T + b[2 * d:]         # rows 2d..3d-1 the values
    head_dim = d // num_heads
    outs, weights = [], []
    for j in range(num_heads):
        chunk = slice(j * head_dim, (j + 1) * head_dim)      # head j: a contiguous chunk
        scores = q[..., chunk] @ k[..., chunk].swapaxes(-1, -2) / np.sqrt(head_dim)
        if mask is not None:
            scores = scores + mask
        p = np.exp(scores - scores.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        outs.append(p @ v[..., chunk])
        weights.append(p)
    out = np.concatenate(outs, -1) @ state["out_proj.weight"].T + state["out_proj.bias"]
    return out, np.stack(weights, axis=1)           # weights [N, heads, Lq, Lk]


def causal_mask(length):
    return np.triu(np.full((length, length), -np.inf), 1)


def make_attention(embed_dim, num_heads, device, seed=0):
    """A float64 layer with random (non-zero) biases on ``device``, and its state dict."""
    np.random.seed(seed)
    attention = nn.MultiheadAttention(embed_dim, num_heads)
    attention.in_proj_bias.data[...] = np.random.randn(3 * embed_dim)
    attention.out_proj.bias.data[...] = np.random.randn(embed_dim)
    return attention.double().to(device), attention.state_dict()


def as_tensor(array, device, requires_grad=False):
    return Tensor(np.asarray(array, np.float64), device=device, requires_grad=requires_grad)


def test_parameters_have_the_names_and_shapes_of_clip_checkpoints():
    state = nn.MultiheadAttention(128, 2).state_dict()
    shapes = {name: value.shape for name, value in state.items()}
    assert shapes == {"in_proj_weight": (384, 128), "in_proj_bias": (384,),
                      "out_proj.weight": (128, 128), "out_proj.bias": (128,)}


def test_initialisation_is_pytorchs():
    np.random.seed(0)
    attention = nn.MultiheadAttention(64, 1)
    xavier_bound = np.sqrt(6 / (64 + 3 * 64))
    assert 0.95 * xavier_bound < np.abs(attention.in_proj_weight.numpy()).max() <= xavier_bound
    assert 0.95 / 8 < np.abs(attention.out_proj.weight.numpy()).max() <= 1 / 8
    assert not attention.in_proj_bias.numpy().any() and not attention.out_proj.bias.numpy().any()


def test_self_attention_matches_the_spec_formula(device):
    attention, state = make_attention(128, 2, device)  # CLIP's head width: 64
    x = np.random.default_rng(0).standard_normal((2, 3, 128))
    out, weights = attention(*[as_tensor(x, device)] * 3, need_weights=True)
    expected_out, expected_weights = reference_attention(x, x, state, 2)
    np.testing.assert_allclose(out.numpy(), expected_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-10, atol=1e-12)


def test_single_query_cross_attention_matches_the_spec_formula(device):
    attention, state = make_attention(16, 4, device)
    rng = np.random.default_rng(1)
    query, tokens = rng.standard_normal((2, 1, 16)), rng.standard_normal((2, 5, 16))
    kv = as_tensor(tokens, device)
    out = attention(as_tensor(query, device), kv, kv)
    assert out.shape == (2, 1, 16)
    np.testing.assert_allclose(out.numpy(), reference_attention(query, tokens, state, 4)[0],
                               rtol=1e-10, atol=1e-12)


def test_causal_mask_keeps_later_tokens_from_changing_earlier_outputs(device):
    attention, state = make_attention(8, 2, device)
    x = np.random.default_rng(2).standard_normal((1, 5, 8))
    changed = x.copy()
    changed[0, 3] += 10.0
    mask = causal_mask(5)
    before, after = (attention(*[as_tensor(v, device)] * 3, attn_mask=mask).numpy()
                     for v in (x, changed))
    np.testing.assert_allclose(after[0, :3], before[0, :3], rtol=1e-12)
    assert np.abs(after[0, 3:] - before[0, 3:]).min() > 1e-3
    np.testing.assert_allclose(before, reference_attention(x, x, state, 2, mask)[0], rtol=1e-10)


def test_boolean_mask_true_means_masked_like_minus_infinity(device):
    attention, _ = make_attention(8, 2, device)
    x = as_tensor(np.random.default_rng(3).standard_normal((2, 4, 8)), device)
    future = np.triu(np.ones((4, 4), bool), 1)
    out_bool, weights = attention(x, x, x, attn_mask=Tensor(future, device=device),
                                  need_weights=True)
    out_float = attention(x, x, x, attn_mask=causal_mask(4))
    np.testing.assert_array_equal(out_bool.numpy(), out_float.numpy())
    assert (weights.numpy()[..., future] == 0).all()


def test_attention_weights_are_per_head_and_each_row_sums_to_one(device):
    attention, _ = make_attention(8, 2, device)
    q = as_tensor(np.random.default_rng(4).standard_normal((3, 2, 8)), device)
    kv = as_tensor(np.random.default_rng(5).standard_normal((3, 6, 8)), device)
    out, weights = attention(q, kv, kv, need_weights=True)
    assert out.shape == (3, 2, 8) and weights.shape == (3, 2, 2, 6)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-12)


def test_heads_are_contiguous_chunks_of_the_features():
    x = Tensor(np.arange(2 * 3 * 8, dtype=np.float64).reshape(2, 3, 8))
    heads = nn.split_heads(x, num_heads=2)                 # [N, h, L, dh]
    assert heads.shape == (2, 2, 3, 4)
    np.testing.assert_array_equal(heads.numpy()[:, 1], x.numpy()[..., 4:])
    np.testing.assert_array_equal(nn.merge_heads(heads).numpy(), x.numpy())


def test_scaled_dot_product_attention_averages_the_values_of_matching_keys(device):
    # Two orthogonal keys; a query that matches key 0 puts the weights softmax([s, 0])
    # with s = 4 / sqrt(2) on the two values.
    q = as_tensor([[4.0, 0.0]], device)
    k = as_tensor([[1.0, 0.0], [0.0, 1.0]], device)
    v = as_tensor([[1.0, 2.0], [3.0, 4.0]], device)
    out, weights = nn.scaled_dot_product_attention(q, k, v, need_weights=True)
    w0 = 1 / (1 + np.exp(-4 / np.sqrt(2)))
    np.testing.assert_allclose(weights.numpy(), [[w0, 1 - w0]], rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), [[w0 * 1 + (1 - w0) * 3, w0 * 2 + (1 - w0) * 4]],
                               rtol=1e-12)


def test_float16_attention_stays_close_to_the_float64_formula(device):
    attention, state = make_attention(128, 2, device)
    x = np.random.default_rng(6).standard_normal((2, 4, 128))
    attention.half()
    x16 = Tensor(x.astype(np.float16), device=device)
    out, weights = attention(x16, x16, x16, attn_mask=causal_mask(4), need_weights=True)
    assert out.dtype == np.float16 and weights.dtype == np.float16
    half_state = {k: v.astype(np.float16).astype(np.float64) for k, v in state.items()}
    expected = reference_attention(x.astype(np.float16).astype(np.float64), x, half_state, 2,
                                   causal_mask(4))[0]
    np.testing.assert_allclose(out.numpy().astype(np.float64), expected, rtol=2e-2, atol=2e-2)


def test_matches_pytorch_multihead_attention(device):
    ref = np.load(FIXTURE)
    attention = nn.MultiheadAttention(16, 4).double()
    attention.load_state_dict({k[len("state."):]: ref[k] for k in ref.files
                               if k.startswith("state.")})
    attention.to(device)
    x = as_tensor(ref["self.x"], device, requires_grad=True)
    out, weights = attention(x, x, x, attn_mask=ref["self.mask"], need_weights=True)
    np.testing.assert_allclose(out.numpy(), ref["self.out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), ref["self.weights"], rtol=1e-10, atol=1e-12)
    out.backward(Tensor(ref["self.upstream"], device=device).data)
    np.testing.assert_allclose(Tensor(x.grad).numpy(),
                               ref["self.grad.x"], rtol=1e-9, atol=1e-12)
    for name, param in attention.named_parameters():
        np.testing.assert_allclose(Tensor(param.grad).numpy(), ref[f"self.grad.{name}"],
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    kv = as_tensor(ref["cross.kv"], device)
    out, weights = attention(as_tensor(ref["cross.query"], device), kv, kv, need_weights=True)
    np.testing.assert_allclose(out.numpy(), ref["cross.out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), ref["cross.weights"], rtol=1e-10, atol=1e-12)


def test_self_attention_gradcheck_with_causal_mask(device):
    attention, _ = make_attention(8, 2, device)
    x = as_tensor(np.random.default_rng(7).standard_normal((2, 3, 8)), device, requires_grad=True)
    gradcheck(lambda x: attention(x, x, x, attn_mask=causal_mask(3)), [x],
              params=list(attention.parameters()))


@pytest.mark.parametrize("need_weights", [False, True])
def test_cross_attention_gradcheck(device, need_weights):
    attention, _ = make_attention(8, 2, device)
    rng = np.random.default_rng(8)
    q = as_tensor(rng.standard_normal((2, 1, 8)), device, requires_grad=True)
    kv = as_tensor(rng.standard_normal((2, 4, 8)), device, requires_grad=True)

    def attend(q, kv):  # with need_weights, check the weights' own gradient path
        result = attention(q, kv, kv, need_weights=need_weights)
        return result[1] if need_weights else result

    gradcheck(attend, [q, kv], params=list(attention.parameters()))

"""``encode_text`` runs the text tower only up to the batch's last end-of-text token.

Exactness: the causal mask keeps every later position out of the attention of the
positions up to the EOT, so the trimmed features equal the full-context ones up to float32
round-off (eps * sqrt(width) relative), and the trimmed positions get no gradient.
"""
import os

import numpy as np
import pytest
from test_models import MICRO_VIT, micro_inputs, micro_model

from miniclip import backend
from miniclip.autograd import Tensor, no_grad
from miniclip.evaluation.zeroshot import encode_texts
from miniclip.models import build_model, trim_padding

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
FLOAT32_TOLERANCE = 1e-6 * np.sqrt(MICRO_VIT["transformer_width"])  # eps * sqrt(K), |x| ~ 1


def full_context_features(model, tokens):
    """The text tower over all C positions, as OpenAI's ``encode_text`` runs it (no trim)."""
    ids = Tensor(tokens, device=model.token_embedding.weight.device).data
    x = model.token_embedding(ids) + model.positional_embedding       # [N, C, W]
    x = model.ln_final(model.transformer(x))                           # [N, C, W]
    eot = ids.argmax(axis=-1)                                          # [N]
    xp = model.token_embedding.weight.device.xp
    return x[xp.arange(len(tokens)), eot] @ model.text_projection     # [N, E]


def padded_tokens(config, n=4, eots=(1, 2, 4, 2)):
    """Token rows of the full context whose EOTs end by position 4 (of 8): 3 columns of
    padding in every row."""
    tokens = np.zeros((n, config["context_length"]), np.int64)
    rng = np.random.default_rng(3)
    for row, eot in enumerate(eots):
        tokens[row, :eot] = rng.integers(1, config["vocab_size"] - 1, eot)
        tokens[row, eot] = config["vocab_size"] - 1
    return tokens


def test_text_features_equal_the_full_context_ones(device):
    model = micro_model(MICRO_VIT, device=device).eval()
    tokens = padded_tokens(MICRO_VIT)
    with no_grad():
        trimmed = model.encode_text(tokens).numpy()
        full = full_context_features(model, tokens).numpy()
    np.testing.assert_allclose(trimmed, full, rtol=0, atol=FLOAT32_TOLERANCE * np.abs(full).max())


def test_the_transformer_sees_only_the_positions_up_to_the_last_end_of_text(monkeypatch):
    model = micro_model(MICRO_VIT).eval()
    widths = []
    run = model.transformer.forward
    monkeypatch.setattr(model.transformer, "forward", lambda x: widths.append(x.shape) or run(x))
    with no_grad():
        model.encode_text(padded_tokens(MICRO_VIT))
    assert widths == [(4, 5, MICRO_VIT["transformer_width"])]  # the last EOT is at position 4


def test_trimming_goes_by_the_end_of_text_token_not_by_nonzero_ids(monkeypatch):
    model = micro_model(MICRO_VIT).eval()
    tokens = padded_tokens(MICRO_VIT)
    tokens[:, 6] = 7  # ids after every row's EOT: they cannot change any feature either
    with no_grad():
        full = full_context_features(model, tokens).numpy()
    widths = []
    run = model.transformer.forward
    monkeypatch.setattr(model.transformer, "forward", lambda x: widths.append(x.shape[1]) or run(x))
    with no_grad():
        features = model.encode_text(tokens).numpy()
    assert widths == [5]
    np.testing.assert_allclose(features, full, rtol=0, atol=FLOAT32_TOLERANCE * np.abs(full).max())


def test_trimmed_gradients_equal_the_full_context_ones(device):
    """The positional embedding's rows past the last EOT get exactly 0; all others what
    the full context gives them (those positions' outputs reach no feature)."""
    tokens = padded_tokens(MICRO_VIT)
    weights = np.random.default_rng(4).standard_normal((4, MICRO_VIT["embed_dim"]))
    grads = []
    for encode in (lambda m: m.encode_text(tokens), lambda m: full_context_features(m, tokens)):
        model = micro_model(MICRO_VIT, dtype=np.float64, device=device).train()
        (encode(model) * Tensor(weights, device=device)).sum().backward()
        grads.append({name: backend.to_numpy(p.grad) for name, p in model.named_parameters()
                      if not name.startswith("visual.") and name != "logit_scale"})
    trimmed, full = grads
    assert np.all(trimmed["positional_embedding"][5:] == 0)
    assert np.abs(trimmed["positional_embedding"][:5]).min() > 0
    for name in full:
        np.testing.assert_allclose(trimmed[name], full[name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_trimmed_text_features_match_the_reference_fixture(device):
    """OpenAI's features of the fixture's first two captions, which end by position 10 of
    77: encoded alone, they run over 11 positions."""
    golden = np.load(os.path.join(FIXTURES, "reference_models.npz"))
    state = {k.split("/", 1)[1]: golden[k] for k in golden.files if k.startswith("text/")}
    state |= {k.split("/", 2)[2]: golden[k] for k in golden.files if k.startswith("vit/state/")}
    model = build_model(state).to(device)
    tokens = golden["inputs/tokens"][:2]
    assert tokens.argmax(axis=-1).max() + 1 == 11
    with no_grad():
        features = model.encode_text(tokens).numpy()
    expected = golden["vit/eval/text_features"][:2]
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_encode_texts_sorts_chunks_by_length_and_returns_the_callers_order(monkeypatch):
    model = micro_model(MICRO_VIT).eval()
    _, tokens = micro_inputs(MICRO_VIT, n=6)  # EOTs at positions 2, 3, 4, 5, 6, 7
    tokens = tokens[[5, 0, 3, 1, 4, 2]]
    widths = []
    encode = model.encode_text
    monkeypatch.setattr(model, "encode_text",
                        lambda t: widths.append(int(t.data.argmax(axis=-1).max()) + 1) or encode(t))
    features = encode_texts(model, tokens, batch_size=2)
    assert widths == [4, 6, 8]  # (2, 3), (4, 5), (6, 7): not 8 in every chunk
    with no_grad():
        one_by_one = np.concatenate([encode(tokens[i:i + 1]).numpy() for i in range(6)])
    one_by_one /= np.linalg.norm(one_by_one, axis=1, keepdims=True)
    np.testing.assert_allclose(features, one_by_one, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rows, width", [([[5, 3, 9, 0, 0]], 3), ([[5, 9, 0, 0], [5, 4, 9, 0]], 3)])
def test_trim_padding_drops_the_columns_of_padding_only(rows, width):
    trimmed = trim_padding(np.array(rows))
    assert trimmed.shape[1] == width and np.array_equal(trimmed, np.array(rows)[:, :width])

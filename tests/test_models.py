"""miniclip.models: parameter names and shapes against docs/reference.md, configurations and their
parameter counts, build_model, input checks, BatchNorm modes, and float64 gradient checks
of every block and of whole micro CLIP models with each image tower."""
import math
import os

import numpy as np
import pytest

from miniclip import nn
from miniclip.autograd import Tensor, no_grad
from miniclip.functional.gradcheck import gradcheck
from miniclip.models import (
    CLIP,
    RELEASED_CONFIGS,
    AttentionPool2d,
    Bottleneck,
    ResidualAttentionBlock,
    available_configs,
    build_model,
    causal_mask,
    create_model,
    get_config,
    infer_config,
    pretrained,
    vision_kind,
)
from miniclip.training.loss import clip_loss
from miniclip.weights import hub

# Micro configurations: the smallest the reference's rules allow (64-wide heads).
MICRO_VIT = dict(embed_dim=16, image_resolution=8, vision_layers=1, vision_width=64,
                 vision_patch_size=4, context_length=8, vocab_size=20, transformer_width=64,
                 transformer_heads=1, transformer_layers=1)
MICRO_RN = dict(MICRO_VIT, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=2,
                vision_patch_size=None)


def micro_model(config, seed=0, dtype=np.float32, device="cpu"):
    nn.manual_seed(seed)
    return CLIP(**config).to(dtype).to(device)


def micro_inputs(config, n=3, seed=0, dtype=np.float32):
    """Random images and token rows whose end-of-text (the largest id) sits at varied places."""
    rng = np.random.default_rng(seed)
    r, c, v = config["image_resolution"], config["context_length"], config["vocab_size"]
    images = rng.standard_normal((n, 3, r, r)).astype(dtype)
    tokens = np.zeros((n, c), np.int64)
    for row, eot in enumerate(np.linspace(2, c - 1, n).astype(int)):
        tokens[row, 0] = v - 2
        tokens[row, 1:eot] = rng.integers(1, v - 2, eot - 1)
        tokens[row, eot] = v - 1
    return images, tokens


def shapes(model):
    return {name: tuple(value.shape) for name, value in model.state_dict().items()}


# ------------------------------------------------------ names and shapes (docs/reference.md)
def block_shapes(prefix, d):
    return {f"{prefix}.attn.in_proj_weight": (3 * d, d), f"{prefix}.attn.in_proj_bias": (3 * d,),
            f"{prefix}.attn.out_proj.weight": (d, d), f"{prefix}.attn.out_proj.bias": (d,),
            f"{prefix}.ln_1.weight": (d,), f"{prefix}.ln_1.bias": (d,),
            f"{prefix}.mlp.c_fc.weight": (4 * d, d), f"{prefix}.mlp.c_fc.bias": (4 * d,),
            f"{prefix}.mlp.c_proj.weight": (d, 4 * d), f"{prefix}.mlp.c_proj.bias": (d,),
            f"{prefix}.ln_2.weight": (d,), f"{prefix}.ln_2.bias": (d,)}


def text_shapes(c):
    w, e = c["transformer_width"], c["embed_dim"]
    expected = {"token_embedding.weight": (c["vocab_size"], w),
                "positional_embedding": (c["context_length"], w),
                "ln_final.weight": (w,), "ln_final.bias": (w,), "text_projection": (w, e),
                "logit_scale": ()}
    for i in range(c["transformer_layers"]):
        expected.update(block_shapes(f"transformer.resblocks.{i}", w))
    return expected


def bn_shapes(prefix, ch):
    names = ("weight", "bias", "running_mean", "running_var")
    return {f"{prefix}.{name}": (ch,) for name in names} | {f"{prefix}.num_batches_tracked": ()}


def resnet_shapes(c):
    """visual.* of the modified ResNet (docs/reference.md), written out from its description."""
    w, e, r = c["vision_width"], c["embed_dim"], c["image_resolution"]
    expected = {"visual.conv1.weight": (w // 2, 3, 3, 3),
                "visual.conv2.weight": (w // 2, w // 2, 3, 3),
                "visual.conv3.weight": (w, w // 2, 3, 3)}
    for name, ch in (("bn1", w // 2), ("bn2", w // 2), ("bn3", w)):
        expected |= bn_shapes(f"visual.{name}", ch)
    cin = w
    for stage, blocks in enumerate(c["vision_layers"], start=1):
        p = w * 2 ** (stage - 1)
        for b in range(blocks):
            pre = f"visual.layer{stage}.{b}"
            expected |= {f"{pre}.conv1.weight": (p, cin, 1, 1), f"{pre}.conv2.weight": (p, p, 3, 3),
                         f"{pre}.conv3.weight": (4 * p, p, 1, 1)}
            for name, ch in (("bn1", p), ("bn2", p), ("bn3", 4 * p)):
                expected |= bn_shapes(f"{pre}.{name}", ch)
            if b == 0:
                expected[f"{pre}.downsample.0.weight"] = (4 * p, cin, 1, 1)
                expected |= bn_shapes(f"{pre}.downsample.1", 4 * p)
            cin = 4 * p
    d, s = 32 * w, r // 32
    expected["visual.attnpool.positional_embedding"] = (s * s + 1, d)
    for proj in ("k_proj", "q_proj", "v_proj"):
        expected |= {f"visual.attnpool.{proj}.weight": (d, d), f"visual.attnpool.{proj}.bias": (d,)}
    expected |= {"visual.attnpool.c_proj.weight": (e, d), "visual.attnpool.c_proj.bias": (e,)}
    return expected


def vit_shapes(c):
    """visual.* of the Vision Transformer (docs/reference.md)."""
    w, p, e = c["vision_width"], c["vision_patch_size"], c["embed_dim"]
    g = c["image_resolution"] // p
    expected = {"visual.conv1.weight": (w, 3, p, p), "visual.class_embedding": (w,),
                "visual.positional_embedding": (g * g + 1, w), "visual.ln_pre.weight": (w,),
                "visual.ln_pre.bias": (w,), "visual.ln_post.weight": (w,),
                "visual.ln_post.bias": (w,), "visual.proj": (w, e)}
    for i in range(c["vision_layers"]):
        expected.update(block_shapes(f"visual.transformer.resblocks.{i}", w))
    return expected


def test_vit_clip_state_dict_has_the_spec_names_and_shapes():
    config = dict(MICRO_VIT, vision_layers=2, transformer_layers=2)
    assert shapes(CLIP(**config)) == text_shapes(config) | vit_shapes(config)


def test_resnet_clip_state_dict_has_the_spec_names_and_shapes():
    config = dict(MICRO_RN, vision_layers=(2, 1, 2, 1))
    assert shapes(CLIP(**config)) == text_shapes(config) | resnet_shapes(config)


def test_named_parameters_are_the_state_dict_minus_batchnorm_buffers():
    model = CLIP(**MICRO_RN)
    params = {name for name, _ in model.named_parameters()}
    buffers = {k for k in model.state_dict()
               if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert params == set(model.state_dict()) - buffers


def test_causal_mask_lets_each_position_see_itself_and_the_past():
    mask = causal_mask(4)
    assert np.array_equal(mask == 0, np.tril(np.ones((4, 4), bool)))
    assert np.all(np.isneginf(mask[np.triu_indices(4, 1)]))


# ------------------------------------------------- configurations (docs/reference.md: released models)
SPEC_COUNTS = {  # total, visual, text, text w/o token embedding, param tensors, state-dict keys
    "RN50": (102_007_137, 38_316_896, 63_690_240, 38_393_344, 324, 489),
    "RN101": (119_688_033, 56_259_936, 63_428_096, 38_131_200, 477, 795),
    "RN50x4": (178_300_601, 87_137_080, 91_163_520, 59_542_400, 414, 669),
    "RN50x16": (290_979_217, 167_328_912, 123_650_304, 85_704_960, 540, 921),
    "RN50x64": (623_258_305, 420_380_352, 202_877_952, 152_284_160, 756, 1353),
    "ViT-B/32": (151_277_313, 87_849_216, 63_428_096, 38_131_200, 302, 302),
    "ViT-B/16": (149_620_737, 86_192_640, 63_428_096, 38_131_200, 302, 302),
    "ViT-L/14": (427_616_513, 303_966_208, 123_650_304, 85_704_960, 446, 446),
    "ViT-L/14@336px": (427_944_193, 304_293_888, 123_650_304, 85_704_960, 446, 446),
}


def counts_from_shapes(expected_shapes):
    """(total, visual, text, text w/o token embedding, param tensors, state-dict keys)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = {k: s for k, s in expected_shapes.items() if not k.endswith(buffers)}
    size = {k: math.prod(s) for k, s in params.items()}
    visual = sum(n for k, n in size.items() if k.startswith("visual."))
    text = sum(size.values()) - visual - 1
    return (sum(size.values()), visual, text, text - size["token_embedding.weight"],
            len(params), len(expected_shapes))


@pytest.mark.parametrize("name", list(RELEASED_CONFIGS))
def test_released_configuration_has_the_spec_parameter_counts(name):
    # Counted from the reference's shapes (building the large models would take minutes).
    config = get_config(name)
    tower = resnet_shapes if isinstance(config["vision_layers"], tuple) else vit_shapes
    assert counts_from_shapes(text_shapes(config) | tower(config)) == SPEC_COUNTS[name]


@pytest.mark.parametrize("name", ["ViT-B/32", "RN50"])
def test_released_model_builds_with_the_spec_parameter_counts(name):
    model = create_model(name)
    params = dict(model.named_parameters())
    visual = sum(p.size for k, p in params.items() if k.startswith("visual."))
    total = model.num_parameters()
    text = total - visual - 1
    counts = (total, visual, text, text - params["token_embedding.weight"].size, len(params),
              len(model.state_dict()))
    assert counts == SPEC_COUNTS[name]
    assert infer_config({k: np.empty(s, np.float16) for k, s in shapes(model).items()}) == \
        get_config(name)


def test_released_configurations_use_64_wide_heads_and_the_openai_vocabulary():
    for name, config in RELEASED_CONFIGS.items():
        assert config["transformer_width"] == 64 * config["transformer_heads"], name
        assert (config["context_length"], config["vocab_size"], config["transformer_layers"]) == \
            (77, 49408, 12)


def test_tiny_presets_use_the_default_tokenizer_and_build():
    from miniclip.tokenizer import default_tokenizer

    for name in ("tiny-vit", "tiny-rn"):
        assert name in available_configs()
        model = create_model(name)
        assert model.vocab_size == default_tokenizer().vocab_size
        images, tokens = micro_inputs(model.config, n=2)
        with no_grad():
            logits, _ = model(images, tokens)
        assert logits.shape == (2, 2) and np.all(np.isfinite(logits.numpy()))


def test_vision_kind_names_the_image_tower_of_models_and_configurations():
    assert create_model("tiny-vit").vision_kind == "vit"
    assert create_model("tiny-rn").vision_kind == "resnet"
    assert [vision_kind(config["vision_layers"]) for config in RELEASED_CONFIGS.values()] == \
        ["resnet"] * 5 + ["vit"] * 4
    assert vision_kind([3, 4, 6, 3]) == "resnet"  # block counts read from JSON are a list


def test_create_model_is_reproducible_with_numpy_seed_and_applies_overrides():
    np.random.seed(3)
    a = create_model("tiny-vit", transformer_layers=1)
    np.random.seed(3)
    b = create_model("tiny-vit", transformer_layers=1)
    assert a.config["transformer_layers"] == 1
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(x, y), name


def test_unknown_configuration_and_option_are_named():
    with pytest.raises(ValueError, match="ViT-H/14"):
        create_model("ViT-H/14")
    with pytest.raises(TypeError, match="depth"):
        get_config("tiny-vit", depth=3)


def test_initialisation_follows_the_reference_scheme():
    nn.manual_seed(0)
    config = dict(MICRO_VIT, transformer_layers=2, vocab_size=4000, context_length=64)
    vit = CLIP(**config)
    rn = CLIP(**dict(config, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=2,
                     vision_patch_size=None))
    d, layers = config["transformer_width"], config["transformer_layers"]
    std = lambda p: float(p.numpy().std())  # noqa: E731
    assert std(vit.token_embedding.weight) == pytest.approx(0.02, rel=0.05)
    assert std(vit.positional_embedding) == pytest.approx(0.01, rel=0.1)
    block = vit.transformer.resblocks[0]
    assert std(block.attn.in_proj_weight) == pytest.approx(d ** -0.5, rel=0.05)
    proj_std = d ** -0.5 * (2 * layers) ** -0.5
    assert std(block.attn.out_proj.weight) == pytest.approx(proj_std, rel=0.1)
    assert std(block.mlp.c_fc.weight) == pytest.approx((2 * d) ** -0.5, rel=0.05)
    assert not block.attn.in_proj_bias.numpy().any() and not block.attn.out_proj.bias.numpy().any()
    assert std(vit.visual.proj) == pytest.approx(64 ** -0.5, rel=0.1)
    assert vit.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    vblock = vit.visual.transformer.resblocks[0]
    assert np.abs(vblock.mlp.c_fc.weight.numpy()).max() <= 64 ** -0.5  # PyTorch default U(±1/√d)
    assert np.abs(vblock.attn.in_proj_weight.numpy()).max() <= math.sqrt(6 / (4 * 64))  # Xavier
    for stage in (rn.visual.layer1, rn.visual.layer2, rn.visual.layer3, rn.visual.layer4):
        assert not stage[0].bn3.weight.numpy().any()  # residual branches start switched off
    assert np.all(rn.visual.bn3.weight.numpy() == 1)
    assert std(rn.visual.attnpool.q_proj.weight) == pytest.approx(64 ** -0.5, rel=0.05)


# ------------------------------------ build_model (docs/reference.md: configuration from a state dict)
def test_build_model_infers_the_configuration_and_returns_an_eval_model():
    for config in (dict(MICRO_VIT, vision_layers=2, transformer_layers=3),
                   dict(MICRO_RN, vision_layers=(2, 1, 3, 1), transformer_layers=2)):
        source = micro_model(config)
        model = build_model(source.state_dict())
        assert model.config == config
        assert model.training is False
        for name, value in source.state_dict().items():
            assert np.array_equal(model.state_dict()[name], value), name


def test_build_model_ignores_the_released_scalar_entries_and_leaves_the_dict_alone():
    state = micro_model(MICRO_VIT).state_dict()
    state.update(input_resolution=np.array(8), context_length=np.array(8), vocab_size=np.array(20))
    keys = set(state)
    build_model(state)
    assert set(state) == keys


def test_build_model_converts_float16_weights_to_float32():
    state = {k: v.astype(np.float16) if v.dtype == np.float32 else v
             for k, v in micro_model(MICRO_RN).state_dict().items()}
    model = build_model(state)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model.visual.bn1.num_batches_tracked.dtype == np.int64


def test_build_model_accepts_a_checkpoint_without_num_batches_tracked():
    state = {k: v for k, v in micro_model(MICRO_RN).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    build_model(state)


def test_build_model_names_missing_unexpected_and_misshaped_keys():
    state = micro_model(MICRO_VIT).state_dict()
    del state["visual.ln_post.bias"]
    state["visual.extra.weight"] = np.zeros(3, np.float32)
    state["visual.ln_pre.weight"] = np.ones(65, np.float32)
    with pytest.raises(RuntimeError) as error:
        build_model(state)
    message = str(error.value)
    assert "visual.ln_post.bias" in message and "missing" in message
    assert "visual.extra.weight" in message and "unexpected" in message
    assert "visual.ln_pre.weight" in message and "(65,)" in message


def test_build_model_names_a_missing_key_it_needs_for_the_configuration():
    state = micro_model(MICRO_RN).state_dict()
    del state["visual.attnpool.positional_embedding"]
    with pytest.raises(KeyError, match="visual.attnpool.positional_embedding"):
        build_model(state)


# ------------------------------------------------------------------ inputs
@pytest.fixture(scope="module")
def vit_model():
    return micro_model(MICRO_VIT).eval()


@pytest.mark.parametrize("shape, message", [
    ((3, 8, 8), "4-D"), ((2, 1, 8, 8), "3 \\(RGB\\) channels"), ((2, 3, 16, 16), "8x8 images")])
def test_encode_image_rejects_images_of_the_wrong_shape(vit_model, shape, message):
    with pytest.raises(ValueError, match=message):
        vit_model.encode_image(np.zeros(shape, np.float32))


def test_encode_image_rejects_integer_pixels(vit_model):
    with pytest.raises(TypeError, match="floating point"):
        vit_model.encode_image(np.zeros((1, 3, 8, 8), np.uint8))


@pytest.mark.parametrize("tokens, error, message", [
    (np.zeros((2, 9), np.int64), ValueError, "length 9 .* context length 8"),
    (np.full((2, 8), 20), ValueError, "\\[0, 20\\).*from 20 to 20"),
    (np.full((2, 8), -1), ValueError, "\\[0, 20\\).*from -1"),
    (np.zeros((2, 8), np.float32), TypeError, "integers"),
    (np.zeros(8, np.int64), ValueError, "2-D"),
])
def test_encode_text_rejects_bad_token_arrays(vit_model, tokens, error, message):
    with pytest.raises(error, match=message):
        vit_model.encode_text(tokens)


def test_encode_text_of_a_short_sequence_equals_the_zero_padded_one(vit_model):
    _, tokens = micro_inputs(MICRO_VIT)
    short = tokens[:2, :5]  # both rows end (EOT) within the first 5 positions
    padded = np.zeros((2, 8), np.int64)
    padded[:, :5] = short
    with no_grad():
        np.testing.assert_allclose(vit_model.encode_text(short).numpy(),
                                   vit_model.encode_text(padded).numpy(), rtol=1e-5, atol=1e-6)


def test_text_features_ignore_everything_after_the_end_of_text(vit_model):
    _, tokens = micro_inputs(MICRO_VIT)
    changed = tokens.copy()
    changed[0, 3:] = 7  # row 0 ends at position 2; 7 < the EOT id, so argmax still finds it
    with no_grad():
        a, b = vit_model.encode_text(tokens).numpy(), vit_model.encode_text(changed).numpy()
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-6)


def test_forward_returns_scaled_cosine_similarities_and_their_transpose(device):
    model = micro_model(MICRO_VIT, device=device).eval()
    images, tokens = micro_inputs(MICRO_VIT, n=3)
    with no_grad():
        per_image, per_text = model(images[:2], tokens)
        img = model.encode_image(images[:2]).numpy()
        txt = model.encode_text(tokens).numpy()
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    expected = (1 / 0.07) * img @ txt.T
    assert per_image.shape == (2, 3) and per_text.shape == (3, 2)
    np.testing.assert_allclose(per_image.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(per_text.numpy(), expected.T, rtol=1e-5)


# ------------------------------------------------------------------ BatchNorm: eval vs train
def test_resnet_eval_features_do_not_depend_on_the_rest_of_the_batch():
    model = micro_model(MICRO_RN).eval()
    images, _ = micro_inputs(MICRO_RN, n=3)
    with no_grad():
        alone = model.encode_image(images[:1]).numpy()
        together = model.encode_image(images).numpy()[:1]
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)


def test_resnet_train_mode_uses_batch_statistics_and_updates_running_ones():
    model = micro_model(MICRO_RN).train()
    images, _ = micro_inputs(MICRO_RN, n=3)
    before = model.visual.bn1.running_mean.numpy().copy()
    with no_grad():
        alone = model.encode_image(images[:2]).numpy()[:1]
        together = model.encode_image(images).numpy()[:1]
    assert not np.allclose(alone, together, rtol=1e-3)
    assert not np.array_equal(model.visual.bn1.running_mean.numpy(), before)
    assert model.visual.bn1.num_batches_tracked.item() == 2


# ------------------------------------------------------------------ gradient checks (float64)
def test_residual_attention_block_gradients_with_a_causal_mask(device):
    nn.manual_seed(0)
    block = ResidualAttentionBlock(8, 2, attn_mask=causal_mask(5)).to(np.float64).to(device)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 5, 8)), requires_grad=True,
               device=device)
    gradcheck(block, [x], params=block.parameters())


def test_attention_pool_gradients(device):
    nn.manual_seed(0)
    pool = AttentionPool2d(2, 8, 2, output_dim=6).to(np.float64).to(device)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 8, 2, 2)), requires_grad=True,
               device=device)
    gradcheck(pool, [x], params=pool.parameters())


@pytest.mark.parametrize("training", [True, False])
def test_strided_bottleneck_gradients(device, training):
    nn.manual_seed(0)
    block = Bottleneck(4, 2, stride=2).to(np.float64).to(device).train(training)
    for norm in (block.bn1, block.bn2, block.bn3, block.downsample[1]):  # not the zero init
        norm.weight.data[...] = norm.weight.device.to_device(
            np.random.default_rng(1).uniform(0.5, 1.5, norm.weight.shape))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4, 4, 4)), requires_grad=True,
               device=device)
    gradcheck(block, [x], params=block.parameters())


@pytest.mark.parametrize("config", [MICRO_VIT, MICRO_RN], ids=["vit", "resnet"])
def test_whole_micro_clip_loss_gradients(device, config):
    model = micro_model(config, dtype=np.float64, device=device).train()
    for name, p in model.named_parameters():  # switch on what the init switches off
        if name.endswith("bn3.weight") or name.endswith("in_proj_bias"):
            p.data = p.device.to_device(np.random.default_rng(2).uniform(0.5, 1.5, p.shape))
    images, tokens = micro_inputs(config, dtype=np.float64)
    images = Tensor(images, requires_grad=True, device=device)
    gradcheck(lambda x: clip_loss(*model(x, tokens)), [images], params=model.parameters(),
              mode="directional")


def test_every_parameter_has_a_gradient_of_its_shape_after_backward():
    model = micro_model(MICRO_RN).train()
    images, tokens = micro_inputs(MICRO_RN)
    clip_loss(*model(images, tokens)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_a_tower_narrower_than_one_head_is_refused():
    with pytest.raises(ValueError, match="at least 64"):
        CLIP(**dict(MICRO_VIT, vision_width=32))


# ------------------------------------------------------------------ load
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_load_downloads_a_released_name_and_returns_the_matching_preprocess(monkeypatch):
    requested = []

    def fake_download(name, root=None):
        requested.append((name, root))
        return os.path.join(FIXTURES, "vit_micro_jit.pt")

    monkeypatch.setattr(hub, "download", fake_download)
    model, preprocess = pretrained.load("ViT-B/32", download_root="/cache")
    assert requested == [("ViT-B/32", "/cache")]
    assert model.training is False and preprocess.n_px == model.input_resolution == 8


def test_load_moves_the_model_to_the_device(device):
    model, _ = pretrained.load(os.path.join(FIXTURES, "rn_micro_jit.pt"), device=device)
    assert {p.device.name for p in model.parameters()} == {device}
    assert {b.device.name for b in model.buffers()} == {device}


def test_load_names_an_unknown_model_or_missing_file():
    with pytest.raises(FileNotFoundError, match="ViT-H/14.*ViT-B/32"):
        pretrained.load("ViT-H/14")

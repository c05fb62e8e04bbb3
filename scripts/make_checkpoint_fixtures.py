"""Regenerate the small checkpoint files in tests/fixtures/ used by tests/test_weights.py.

The tests check that miniclip reads real PyTorch and Hugging Face files
without PyTorch.  Those files can only be *made* with PyTorch, so this script
(not the test suite) needs it:

    pip install torch
    pip install --no-deps clip-anytorch      # OpenAI's reference model code
    pip install transformers safetensors
    python scripts/make_checkpoint_fixtures.py

It writes, into tests/fixtures/:

    vit_micro_jit.pt          a micro ViT CLIP, traced and saved with
                              torch.jit like OpenAI's released .pt files
                              (float16 weights, float32 LayerNorms)
    vit_micro_hf/             the same weights as a transformers CLIPModel
                              (config.json + model.safetensors, float16)
    vit_micro.npz             the expected OpenAI-named float32 state dict
    rn_micro_jit.pt           a micro ResNet CLIP, traced like the above
    rn_micro_state_dict.pt    the same model's torch.save(model.state_dict()),
                              float16 and float32 mixed as after build_model
    rn_micro.npz              the expected state dict for both RN files
    wrapped_state_dict.pt     torch.save({"state_dict": ..., "epoch": ...})
                              with "module." names, a bfloat16 tensor and
                              tensors that are strided views of one storage
    wrapped_state_dict.npz    its expected state dict

Every expected .npz is taken from what PyTorch itself reads back from the
file, so the tests compare miniclip's reader against PyTorch's.
"""

import importlib.util
import os

import numpy as np
import torch
import transformers

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

# Micro configurations: as small as OpenAI's CLIP class allows.  Widths stay
# at 64 because the reference infers heads as width // 64.
CONTEXT_LENGTH = 8
VOCAB_SIZE = 60
TEXT = dict(context_length=CONTEXT_LENGTH, vocab_size=VOCAB_SIZE, transformer_width=64, transformer_heads=1, transformer_layers=1)
VIT = dict(embed_dim=16, image_resolution=8, vision_layers=1, vision_width=64, vision_patch_size=4, **TEXT)
# ResNet width 2 gives an attention pool of width 32 * 2 = 64, i.e. one 64-wide
# head; resolution 64 leaves a 2 x 2 feature map (64 / 32).
RN = dict(embed_dim=16, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=2, vision_patch_size=None, **TEXT)

# Scalars that OpenAI's released files carry as 0-d integer tensors; their
# build_model deletes them before loading.
SCALAR_BUFFERS = ("input_resolution", "context_length", "vocab_size")


def import_reference_model():
    """Import OpenAI's clip/model.py by file path.

    Importing the ``clip`` package would also import clip/clip.py, which needs
    torchvision; the model file alone needs only torch.
    """
    package = importlib.util.find_spec("clip")  # finds the folder without importing it
    path = os.path.join(package.submodule_search_locations[0], "model.py")
    spec = importlib.util.spec_from_file_location("clip_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_model(reference, config):
    """A reference CLIP with random, float16-representable weights, converted like the releases.

    Every float tensor gets fresh random values (the default init has many
    ones and zeros, which would hide mix-ups), rounded to float16 so that the
    float16 copies made below lose nothing and all fixtures share exact
    expected values.  Then, as in OpenAI's build_model, convert_weights turns
    the weights of convolutions, linear layers, attention and projections
    into float16.  BatchNorm counters and the released files' scalar entries
    become integer buffers.
    """
    model = reference.CLIP(**config).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)  # variances must be positive
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(torch.randint(1, 1000, ()).item())
            else:
                tensor.copy_(torch.randn_like(tensor) * 0.1)
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    reference.convert_weights(model)
    # CLIP stores context_length and vocab_size as plain ints; replace them
    # (and add input_resolution) by buffers, as in the released files.
    del model.context_length, model.vocab_size
    for name in SCALAR_BUFFERS:
        model.register_buffer(name, torch.tensor(config[name if name != "input_resolution" else "image_resolution"]))
    return model


def example_inputs(config):
    """A batch of 2 images and 2 token sequences whose largest id marks the end of text."""
    resolution = config["image_resolution"]
    images = torch.randn(2, 3, resolution, resolution)
    text = torch.randint(1, VOCAB_SIZE - 1, (2, CONTEXT_LENGTH))
    text[0, 5] = text[1, 7] = VOCAB_SIZE - 1  # end-of-text token: the largest id
    return images, text


def save_traced(model, config, path):
    """Trace the model and save it with torch.jit, as OpenAI did for the releases.

    Returns the state dict that torch.jit.load reads back from the file.
    """
    images, text = example_inputs(config)
    traced = torch.jit.trace(model, (images.half(), text), _store_inputs=False)
    torch.jit.save(traced, path)
    return torch.jit.load(path).state_dict()


def to_numpy(state_dict):
    """OpenAI-named float32 NumPy arrays, as miniclip's loader should return them."""
    return {name: (t.float() if t.is_floating_point() else t).numpy() for name, t in state_dict.items()}


def to_hf_state_dict(openai):
    """Write OpenAI-named weights under transformers' CLIPModel names.

    This is the inverse of what miniclip.weights does, written here
    independently in PyTorch; check_hf_matches_reference then proves it right
    by comparing the two models' outputs.
    """
    hf = {
        "logit_scale": openai["logit_scale"],
        "text_model.embeddings.token_embedding.weight": openai["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": openai["positional_embedding"],
        "text_model.final_layer_norm.weight": openai["ln_final.weight"],
        "text_model.final_layer_norm.bias": openai["ln_final.bias"],
        "text_projection.weight": openai["text_projection"].T,
        "vision_model.embeddings.class_embedding": openai["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": openai["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": openai["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": openai["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": openai["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": openai["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": openai["visual.ln_post.bias"],
        "visual_projection.weight": openai["visual.proj"].T,
    }
    for hf_tower, openai_tower in [("text_model", "transformer"), ("vision_model", "visual.transformer")]:
        hf_block, openai_block = f"{hf_tower}.encoder.layers.0", f"{openai_tower}.resblocks.0"
        for kind in ["weight", "bias"]:
            q, k, v = openai[f"{openai_block}.attn.in_proj_{kind}"].chunk(3)
            hf[f"{hf_block}.self_attn.q_proj.{kind}"] = q
            hf[f"{hf_block}.self_attn.k_proj.{kind}"] = k
            hf[f"{hf_block}.self_attn.v_proj.{kind}"] = v
            for hf_part, openai_part in [
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ]:
                hf[f"{hf_block}.{hf_part}.{kind}"] = openai[f"{openai_block}.{openai_part}.{kind}"]
    return {name: tensor.float().contiguous() for name, tensor in hf.items()}


def make_hf_model(openai):
    """A transformers CLIPModel with the micro ViT's configuration and weights."""
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=256, num_hidden_layers=1,
            num_attention_heads=1, max_position_embeddings=CONTEXT_LENGTH,
            bos_token_id=VOCAB_SIZE - 2, eos_token_id=VOCAB_SIZE - 1, pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=1,
            image_size=VIT["image_resolution"], patch_size=VIT["vision_patch_size"],
        ),
        projection_dim=VIT["embed_dim"],
    )
    model = transformers.CLIPModel(config).eval()
    model.load_state_dict(to_hf_state_dict(openai), strict=True)
    return model


def check_hf_matches_reference(hf_model, reference_model):
    """Both models must compute the same image and text features (in float32)."""
    images, text = example_inputs(VIT)
    reference_model = reference_model.float()
    with torch.no_grad():
        pairs = [
            (hf_model.get_image_features(pixel_values=images).pooler_output, reference_model.encode_image(images)),
            (hf_model.get_text_features(input_ids=text).pooler_output, reference_model.encode_text(text)),
        ]
    for hf_features, reference_features in pairs:
        torch.testing.assert_close(hf_features, reference_features, rtol=1e-4, atol=1e-5)


def make_wrapped_state_dict():
    """A training-style torch.save payload exercising the less common tensor layouts."""
    storage = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state_dict = {
        "module.transposed": storage.T,  # strides (1, 6): not contiguous
        "module.row": storage[2],  # starts at element 12 of the shared storage
        "module.every_other": storage[:, ::2],  # strides (6, 2)
        "module.bfloat16": torch.tensor([1.5, -2.0, 3.140625], dtype=torch.bfloat16),
        "module.float64": torch.tensor([0.1, 0.2], dtype=torch.float64),
        "module.counter": torch.tensor(7),  # 0-d int64
        "module.flags": torch.tensor([True, False]),
        "module.empty": torch.zeros(0, 3),
    }
    return {"state_dict": state_dict, "epoch": 3, "name": "micro"}


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    torch.manual_seed(0)
    reference = import_reference_model()

    vit = make_model(reference, VIT)
    vit_expected = save_traced(vit, VIT, os.path.join(FIXTURES, "vit_micro_jit.pt"))
    np.savez_compressed(os.path.join(FIXTURES, "vit_micro.npz"), **to_numpy(vit_expected))

    hf_model = make_hf_model({name: t for name, t in vit_expected.items() if name not in SCALAR_BUFFERS})
    check_hf_matches_reference(hf_model, vit)
    # float16 halves the file; the weights are float16-representable, so exact.
    hf_model.half().save_pretrained(os.path.join(FIXTURES, "vit_micro_hf"))

    rn = make_model(reference, RN)
    rn_expected = save_traced(rn, RN, os.path.join(FIXTURES, "rn_micro_jit.pt"))
    np.savez_compressed(os.path.join(FIXTURES, "rn_micro.npz"), **to_numpy(rn_expected))
    torch.save(rn.state_dict(), os.path.join(FIXTURES, "rn_micro_state_dict.pt"))

    wrapped = make_wrapped_state_dict()
    path = os.path.join(FIXTURES, "wrapped_state_dict.pt")
    torch.save(wrapped, path)
    loaded = torch.load(path, weights_only=True)["state_dict"]
    np.savez(os.path.join(FIXTURES, "wrapped_state_dict.npz"), **to_numpy({name[len("module."):]: t for name, t in loaded.items()}))

    total = 0
    for root, _, files in os.walk(FIXTURES):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(root, name), FIXTURES)
            if relative.startswith(("vit_micro", "rn_micro", "wrapped_state_dict")):  # ours, not other tests'
                size = os.path.getsize(os.path.join(root, name))
                total += size
                print(f"{relative:35s} {size:>9,d} bytes")
    print(f"{'total':35s} {total:>9,d} bytes")


if __name__ == "__main__":
    main()

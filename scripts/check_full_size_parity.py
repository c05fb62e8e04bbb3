"""Check ``miniclip.load`` on full-size released architectures against OpenAI's reference.

The committed tests use micro models. This development check builds OpenAI's reference
``CLIP`` at a released size (ViT-B/32 and RN50 by default) with random weights, stores it
the way the released files are stored (float16 weights, the three scalar entries,
``torch.jit.trace`` + ``torch.jit.save``), loads that file with ``miniclip.load`` (no torch
involved), and compares image and text features and logits in eval mode. With
``transformers`` installed it also saves a random full-size Hugging Face ``CLIPModel``
(ViT-B/32's shape) with ``save_pretrained`` and checks that ``miniclip.load(folder)``
gives its image and text features.

Needs torch and OpenAI's ``clip/model.py`` (``pip install --no-deps clip-anytorch``)::

    python scripts/check_full_size_parity.py            # ViT-B/32 and RN50
    python scripts/check_full_size_parity.py RN101
"""
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from make_model_fixtures import import_reference_model  # noqa: E402

import miniclip  # noqa: E402
from miniclip.models import RELEASED_CONFIGS  # noqa: E402


def reference_checkpoint(reference, name, path):
    """Trace OpenAI's CLIP of configuration ``name`` (random weights) into ``path``."""
    config = RELEASED_CONFIGS[name]
    model = reference.CLIP(**config).eval()
    reference.convert_weights(model)      # float16 weights, as in the released files
    # The released files hold these three as scalar tensors, not plain attributes.
    del model.context_length, model.vocab_size
    for key, value in [("input_resolution", config["image_resolution"]),
                       ("context_length", config["context_length"]),
                       ("vocab_size", config["vocab_size"])]:
        model.register_buffer(key, torch.tensor(value))
    resolution = config["image_resolution"]
    example = (torch.zeros(1, 3, resolution, resolution).half(),
               torch.zeros(1, 77, dtype=torch.long))
    torch.jit.save(torch.jit.trace(model, example, check_trace=False), path)
    model.float()  # the reference on the CPU runs in float32 (clip.load(device="cpu"))
    return model


def compare(name, reference):
    generator = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name.replace("/", "-") + ".pt")
        expected_model = reference_checkpoint(reference, name, path)
        model, _ = miniclip.load(path)
    resolution = model.input_resolution
    images = generator.standard_normal((2, 3, resolution, resolution)).astype(np.float32)
    tokens = np.zeros((3, 77), dtype=np.int64)
    for row, end in enumerate((5, 20, 76)):
        tokens[row, 1:end] = generator.integers(1, 49000, end - 1)
        tokens[row, 0], tokens[row, end] = 49406, 49407
    with torch.no_grad():
        want = [t.numpy() for t in (
            expected_model.encode_image(torch.from_numpy(images)),
            expected_model.encode_text(torch.from_numpy(tokens)),
            expected_model(torch.from_numpy(images), torch.from_numpy(tokens))[0])]
    with miniclip.no_grad():
        got = [model.encode_image(images).numpy(), model.encode_text(tokens).numpy(),
               model(images, tokens)[0].numpy()]
    for what, w, g in zip(("encode_image", "encode_text", "logits_per_image"), want, got):
        error = relative_error(g, w)
        print(f"{name:>10} {what:<17} max relative error {error:.2e}")
        assert error < 1e-4, f"{name} {what} differs from the reference"


def relative_error(got, want):
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


def compare_hugging_face():
    """A random ViT-B/32-shaped transformers CLIPModel, loaded from its saved folder."""
    import transformers

    config = transformers.CLIPConfig(
        text_config=dict(hidden_act="quick_gelu", eos_token_id=49407, bos_token_id=49406),
        vision_config=dict(hidden_act="quick_gelu", patch_size=32), projection_dim=512)
    hf_model = transformers.CLIPModel(config).eval()
    generator = np.random.default_rng(1)
    images = generator.standard_normal((2, 3, 224, 224)).astype(np.float32)
    tokens = np.zeros((2, 77), dtype=np.int64)
    tokens[:, 1:9] = generator.integers(1, 49000, (2, 8))
    tokens[:, 0], tokens[:, 9] = 49406, 49407
    with tempfile.TemporaryDirectory() as folder:
        hf_model.save_pretrained(folder)
        model, _ = miniclip.load(folder)
    with torch.no_grad():
        want = [_features(hf_model.get_image_features(pixel_values=torch.from_numpy(images))),
                _features(hf_model.get_text_features(input_ids=torch.from_numpy(tokens)))]
    with miniclip.no_grad():
        got = [model.encode_image(images).numpy(), model.encode_text(tokens).numpy()]
    for what, w, g in zip(("encode_image", "encode_text"), want, got):
        error = relative_error(g, w)
        print(f"{'HF folder':>10} {what:<17} max relative error {error:.2e}")
        assert error < 1e-4, f"Hugging Face {what} differs"


def _features(output):
    """transformers returns a tensor or, in recent versions, an output object."""
    return getattr(output, "pooler_output", output).numpy()


def main(names):
    torch.manual_seed(0)
    reference = import_reference_model()
    for name in names or ["ViT-B/32", "RN50"]:
        compare(name, reference)
    try:
        compare_hugging_face()
    except ImportError:
        print("transformers is not installed: Hugging Face check skipped")


if __name__ == "__main__":
    main(sys.argv[1:])

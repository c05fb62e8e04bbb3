"""Make the golden fixture of ``tests/test_reference_parity.py`` with OpenAI's own CLIP code.

Run once by a developer (needs PyTorch and the ``clip-anytorch`` package, which ships
OpenAI's ``clip/model.py``); the test suite itself only reads the ``.npz`` file this
writes and never imports torch::

    python scripts/make_model_fixtures.py

It builds two micro CLIP models with the reference code, one per image tower, that share
one text tower (same configuration and the same weights), and for each

1. randomises every parameter that the reference initialises to a constant (LayerNorm
   and BatchNorm gains and biases, attention biases, the zero-initialised ``bn3`` gains),
   so that no part of the network is switched off, and sets the BatchNorm running
   statistics to (perturbed) statistics of a calibration batch;
2. stores the state dict the way a released checkpoint does: Conv/Linear weights,
   attention projections, ``visual.proj`` and ``text_projection`` in float16 (the
   reference's own ``convert_weights``), everything else in float32, ``num_batches_tracked``
   as int64, plus the scalar entries ``input_resolution``, ``context_length`` and
   ``vocab_size`` that ``build_model`` deletes;
3. loads that state dict with the reference's ``build_model`` and ``.float()`` (exactly
   what ``clip.load(name, device="cpu")`` does) and records in float32: ``encode_image``,
   ``encode_text`` and the logits in eval mode; in train mode the image features, the
   logits and the BatchNorm running statistics after one training forward pass;
4. repeats the train-mode forward in float64 (``.double()``), computes the paper's loss
   ``(CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2`` and records the
   logits, the loss and its gradient with respect to the parameters, rounded to float32
   (enough for a comparison to ~1e-6 and half the size).

5. for the TorchScript micro checkpoints that ``scripts/make_checkpoint_fixtures.py``
   writes (run that script first), loads each file with ``torch.jit.load`` and the
   reference's ``build_model`` and records ``encode_image``, ``encode_text`` and the
   logits, together with the SHA-256 of the file: the end-to-end test "checkpoint file
   -> miniclip.load -> the reference's embeddings".

File layout (``tests/fixtures/reference_models.npz``): ``inputs/tokens``; ``text/<key>``
for the shared text-tower entries of the state dict; per tower ``<kind>/state/<key>``
(the rest of its state dict), ``<kind>/images``, ``<kind>/eval/...``, ``<kind>/train/...``,
``<kind>/train64/...`` and ``<kind>/grad/<parameter>``; per TorchScript checkpoint
``jit/<file stem>/{sha256,images,tokens,image_features,text_features,logits_per_image}``.

Size budget (the fixtures must stay well under 1.5 MB): the reference ties the head count
to the width (width // 64 heads of 64 features), so the smallest transformer block has
width 64 and ~50k parameters. Hence one layer per transformer, one shared text tower,
and for the ResNet model the gradients of every parameter except the text blocks'
(``transformer.resblocks.*``), whose gradients the ViT model already checks. The ResNet's
base width 4 gives an attention pool of D = 128 features, i.e. two heads, so the
multi-head split is covered too.
"""
import hashlib
import importlib.util
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
OUT_PATH = os.path.join(FIXTURES, "reference_models.npz")
# TorchScript checkpoints written by scripts/make_checkpoint_fixtures.py.
JIT_CHECKPOINTS = ("vit_micro_jit.pt", "rn_micro_jit.pt")

TEXT = dict(embed_dim=32, context_length=77, vocab_size=64, transformer_width=64,
            transformer_heads=1, transformer_layers=1)
# The two micro configurations (arguments of the reference CLIP constructor).
CONFIGS = {
    "vit": dict(TEXT, image_resolution=12, vision_layers=1, vision_width=64, vision_patch_size=4),
    "rn": dict(TEXT, image_resolution=64, vision_layers=(2, 1, 1, 1), vision_width=4,
               vision_patch_size=None),
}
BATCH = 3
# End-of-text positions of the three captions: short, medium and the full context.
EOT_POSITIONS = (3, 10, 76)


def import_reference_model():
    """Import ``clip/model.py`` by file path (the ``clip`` package import needs torchvision)."""
    spec = importlib.util.find_spec("clip")
    if spec is None:
        sys.exit("the clip-anytorch package is not installed (pip install clip-anytorch)")
    path = os.path.join(os.path.dirname(spec.origin), "model.py")
    module_spec = importlib.util.spec_from_file_location("reference_clip_model", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    # The reference LayerNorm casts its input to float32 (to run fp16 models with fp32
    # statistics). That would silently drop our float64 gradient run to float32, so use
    # PyTorch's plain LayerNorm, which is identical for float32 inputs.
    module.LayerNorm.forward = torch.nn.LayerNorm.forward
    return module


def is_text_key(name):
    return not name.startswith("visual.") and name not in ("logit_scale", "input_resolution")


def randomise_constants(model, generator):
    """Replace the constant initial values (gains 1, biases 0, the bn3 gains 0)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("bias"):
                parameter.copy_(0.1 * noise)
            elif name.endswith("weight") and parameter.ndim == 1:
                parameter.copy_(1.0 + 0.2 * noise)  # LayerNorm / BatchNorm gains
        model.logit_scale.fill_(float(np.log(20.0)))


def calibrate_running_stats(model, generator):
    """Set the BatchNorm running statistics to those of a calibration batch.

    With made-up running statistics the activations of a deep, randomly initialised
    ResNet shrink layer after layer in eval mode until every image gives nearly the same
    features, and an eval-mode parity test would no longer see the image. So run one
    train-mode pass with momentum 1 (running = batch statistics), then perturb them.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    resolution = model.visual.input_resolution
    with torch.no_grad():
        for norm in norms:
            norm.momentum = 1.0
        model.train()
        model.encode_image(torch.randn(8, 3, resolution, resolution, generator=generator))
        for norm in norms:
            norm.momentum = 0.1
            norm.running_mean.add_(0.05 * torch.randn(norm.running_mean.shape, generator=generator))
            scale = 0.9 + 0.2 * torch.rand(norm.running_var.shape, generator=generator)
            norm.running_var.mul_(scale)
            norm.num_batches_tracked.fill_(7)
        model.eval()


def checkpoint_state_dict(reference, model, config):
    """The state dict as a released checkpoint stores it (fp16 projections, extra scalars)."""
    reference.convert_weights(model)  # the reference's own fp16 conversion
    state = {name: tensor.detach().numpy().copy() for name, tensor in model.state_dict().items()}
    state["input_resolution"] = np.array(config["image_resolution"], dtype=np.int64)
    state["context_length"] = np.array(config["context_length"], dtype=np.int64)
    state["vocab_size"] = np.array(config["vocab_size"], dtype=np.int64)
    return state


def make_tokens(generator):
    vocab = TEXT["vocab_size"]
    tokens = torch.zeros(BATCH, TEXT["context_length"], dtype=torch.int64)
    for row, eot in enumerate(EOT_POSITIONS):
        tokens[row, 0] = vocab - 2  # the start-of-text id is the second largest id
        tokens[row, 1:eot] = torch.randint(1, vocab - 2, (eot - 1,), generator=generator)
        tokens[row, eot] = vocab - 1  # end-of-text: the largest id, found by argmax
    return tokens


def paper_loss(logits_per_image, logits_per_text):
    labels = torch.arange(logits_per_image.shape[0])
    return (F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_text, labels)) / 2


def running_stats(model):
    return {name: buffer.detach().numpy().copy() for name, buffer in model.named_buffers()
            if name.endswith("running_mean") or name.endswith("running_var")}


def make_model_records(reference, kind, text_state, tokens, generator):
    """The state dict and the reference's outputs and gradients for one micro model."""
    config = CONFIGS[kind]
    model = reference.CLIP(**config)
    randomise_constants(model, generator)
    calibrate_running_stats(model, generator)
    if text_state is not None:  # share the first model's text tower
        model.load_state_dict({k: torch.from_numpy(v) for k, v in text_state.items()},
                              strict=False)
    state = checkpoint_state_dict(reference, model, config)
    resolution = config["image_resolution"]
    # rounded to float16 because they are stored as float16
    images = torch.randn(BATCH, 3, resolution, resolution, generator=generator).half().float()

    def fresh(dtype):
        """The reference's loading path: build_model (fp16 weights) then a dtype cast."""
        built = reference.build_model({k: torch.from_numpy(v.copy()) for k, v in state.items()})
        return built.to(dtype)

    out = {f"state/{name}": value for name, value in state.items()}
    out["images"] = images.numpy().astype(np.float16)

    with torch.no_grad():  # float32, eval mode (running statistics)
        model32 = fresh(torch.float32).eval()
        out["eval/image_features"] = model32.encode_image(images).numpy()
        out["eval/text_features"] = model32.encode_text(tokens).numpy()
        out["eval/logits_per_image"] = model32(images, tokens)[0].numpy()

    with torch.no_grad():  # float32, train mode: one pass through the image tower each
        model32 = fresh(torch.float32).train()
        out["train/image_features"] = model32.encode_image(images).numpy()
        for name, value in running_stats(model32).items():
            out[f"train/running/{name}"] = value
        out["train/logits_per_image"] = fresh(torch.float32).train()(images, tokens)[0].numpy()

    model64 = fresh(torch.float64).train()  # float64, train mode, with gradients
    logits_per_image, logits_per_text = model64(images.double(), tokens)
    loss = paper_loss(logits_per_image, logits_per_text)
    loss.backward()
    out["train64/logits_per_image"] = logits_per_image.detach().numpy()
    out["train64/loss"] = loss.detach().numpy()
    for name, parameter in model64.named_parameters():
        if kind == "rn" and name.startswith("transformer.resblocks."):
            continue  # checked by the ViT model (see the size budget above)
        out[f"grad/{name}"] = parameter.grad.numpy().astype(np.float32)
    return out


def jit_checkpoint_records(reference, file_name, generator):
    """The reference's outputs for a TorchScript checkpoint, loaded as ``clip.load`` does."""
    path = os.path.join(FIXTURES, file_name)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run scripts/make_checkpoint_fixtures.py first")
    with open(path, "rb") as file:
        sha256 = hashlib.sha256(file.read()).hexdigest()
    state = torch.jit.load(path, map_location="cpu").state_dict()
    model = reference.build_model(dict(state)).float().eval()
    resolution, context = model.visual.input_resolution, model.context_length
    vocab = model.vocab_size
    images = torch.randn(2, 3, resolution, resolution, generator=generator).half().float()
    tokens = torch.randint(1, vocab - 1, (2, context), generator=generator)
    tokens[0, 3:] = 0
    tokens[0, 2] = tokens[1, context - 1] = vocab - 1  # end of text: the largest id
    with torch.no_grad():
        return {
            "sha256": np.array(sha256),
            "images": images.numpy().astype(np.float16),
            "tokens": tokens.numpy(),
            "image_features": model.encode_image(images).numpy(),
            "text_features": model.encode_text(tokens).numpy(),
            "logits_per_image": model(images, tokens)[0].numpy(),
        }


def main():
    reference = import_reference_model()
    generator = torch.Generator().manual_seed(1234)
    torch.manual_seed(0)  # the reference's own initialisation uses the global generator
    tokens = make_tokens(generator)
    fixture = {"inputs/tokens": tokens.numpy()}
    text_state = None
    for kind in CONFIGS:
        records = make_model_records(reference, kind, text_state, tokens, generator)
        if text_state is None:
            text_state = {k[len("state/"):]: v for k, v in records.items()
                          if k.startswith("state/") and is_text_key(k[len("state/"):])}
            fixture.update({f"text/{k}": v for k, v in text_state.items()})
        for key, value in records.items():
            if not (key.startswith("state/") and is_text_key(key[len("state/"):])):
                fixture[f"{kind}/{key}"] = value
    for file_name in JIT_CHECKPOINTS:
        stem = os.path.splitext(file_name)[0]
        for key, value in jit_checkpoint_records(reference, file_name, generator).items():
            fixture[f"jit/{stem}/{key}"] = value
    np.savez_compressed(OUT_PATH, **fixture)
    print(f"{os.path.normpath(OUT_PATH)}: {os.path.getsize(OUT_PATH) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()

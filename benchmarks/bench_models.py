"""Benchmark the CLIP models on the CPU, beside OpenAI's PyTorch code when it is installed.

    python benchmarks/bench_models.py [--repeats 5] [--profile]

1. ``encode_image`` of 8 images of 224 x 224 and ``encode_text`` of 8 captions (77
   tokens) with ViT-B/32 and RN50, random weights, eval mode, no gradients.
2. One training step of the ``tiny-vit`` preset on a batch of 64: forward, the paper's
   loss, backward and an AdamW update.

With torch and the ``clip-anytorch`` package installed, each measurement is repeated
with OpenAI's ``clip/model.py`` holding the same weights and the same batch; the two are
timed alternately (so both see the same machine load) and the medians are compared.
``--profile`` prints where miniclip's training step spends its time, by function.
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts")]

from miniclip.autograd import no_grad  # noqa: E402
from miniclip.models import create_model  # noqa: E402
from miniclip.optim import AdamW  # noqa: E402
from miniclip.training.loss import clip_loss  # noqa: E402

try:
    import torch
    import torch.nn.functional as torch_F
    from make_model_fixtures import import_reference_model
except ImportError:  # miniclip alone
    torch = None

TRAIN_BATCH = 64
ADAMW = dict(lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)  # the paper's ViT settings


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def compare(label, ours, theirs, repeats):
    """Time ``ours`` and ``theirs`` alternately after one warm-up call each; print medians."""
    ours()
    if theirs is not None:
        theirs()
    times_ours, times_theirs = [], []
    for _ in range(repeats):
        times_ours.append(seconds(ours))
        if theirs is not None:
            times_theirs.append(seconds(theirs))
    mine = statistics.median(times_ours)
    line = f"{label:<38} miniclip {mine * 1e3:9.1f} ms"
    if times_theirs:
        reference = statistics.median(times_theirs)
        line += f"   PyTorch {reference * 1e3:9.1f} ms   ratio {mine / reference:5.2f}x"
    print(line, flush=True)


def reference_copy(reference, model):
    """OpenAI's CLIP with the configuration and weights of a miniclip model."""
    twin = reference.CLIP(**model.config)
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return twin


def inputs(model, n, seed=0):
    rng = np.random.default_rng(seed)
    r, c, v = model.input_resolution, model.context_length, model.vocab_size
    images = rng.standard_normal((n, 3, r, r)).astype(np.float32)
    tokens = np.zeros((n, c), np.int64)
    for row in range(n):
        eot = int(rng.integers(5, min(20, c)))
        tokens[row, 0] = v - 2
        tokens[row, 1:eot] = rng.integers(1, v - 2, eot - 1)
        tokens[row, eot] = v - 1
    return images, tokens


def bench_encoders(reference, repeats):
    for name in ("ViT-B/32", "RN50"):
        model = create_model(name).eval()
        images, tokens = inputs(model, 8)
        twin = reference_copy(reference, model).eval() if reference else None

        def ours_image():
            with no_grad():
                model.encode_image(images)

        def ours_text():
            with no_grad():
                model.encode_text(tokens)

        theirs_image = theirs_text = None
        if twin is not None:
            image_t, tokens_t = torch.from_numpy(images), torch.from_numpy(tokens)

            def theirs_image():
                with torch.no_grad():
                    twin.encode_image(image_t)

            def theirs_text():
                with torch.no_grad():
                    twin.encode_text(tokens_t)
        compare(f"{name} encode_image 8x224px", ours_image, theirs_image, repeats)
        compare(f"{name} encode_text 8x77", ours_text, theirs_text, repeats)


def training_step(model, images, tokens):
    optimizer = AdamW(model.parameters(), **ADAMW)

    def step():
        optimizer.zero_grad()
        loss = clip_loss(*model(images, tokens))
        loss.backward()
        optimizer.step()
    return step


def reference_training_step(twin, images, tokens):
    optimizer = torch.optim.AdamW(twin.parameters(), **ADAMW)
    images, tokens = torch.from_numpy(images), torch.from_numpy(tokens)
    labels = torch.arange(images.shape[0])

    def step():
        optimizer.zero_grad()
        logits_per_image, logits_per_text = twin(images, tokens)
        loss = (torch_F.cross_entropy(logits_per_image, labels)
                + torch_F.cross_entropy(logits_per_text, labels)) / 2
        loss.backward()
        optimizer.step()
    return step


def bench_training(reference, repeats, profile):
    np.random.seed(0)
    model = create_model("tiny-vit").train()
    images, tokens = inputs(model, TRAIN_BATCH)
    twin = reference_copy(reference, model).train() if reference else None
    theirs = reference_training_step(twin, images, tokens) if twin is not None else None
    ours = training_step(model, images, tokens)
    compare(f"tiny-vit training step, batch {TRAIN_BATCH}", ours, theirs, repeats)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(repeats):
            ours()
        profiler.disable()
        print(f"\nminiclip tiny-vit training step, {repeats} steps, by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    reference = import_reference_model() if torch is not None else None
    print(f"CPU cores: {os.cpu_count()}; NumPy {np.__version__}"
          + (f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else
             "; PyTorch not installed (miniclip only)"))
    bench_encoders(reference, args.repeats)
    bench_training(reference, args.repeats, args.profile)


if __name__ == "__main__":
    main()

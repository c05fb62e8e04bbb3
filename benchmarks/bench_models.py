"""Benchmark the CLIP models, beside OpenAI's PyTorch code when it is installed.

    python benchmarks/bench_models.py [--repeats 5] [--profile]          # the CPU table
    python benchmarks/bench_models.py --device cuda [--repeats 5]        # the GPU table

On the CPU:

1. ``encode_image`` of 8 images of 224 x 224 and ``encode_text`` of 8 captions (77
   positions, the end-of-text token at 5..20 as in ordinary prompts) with ViT-B/32 and
   RN50, random weights, eval mode, no gradients.
2. One training step of the ``tiny-vit`` and ``tiny-rn`` presets on a batch of 64:
   forward, the paper's loss, backward and an AdamW update.

The header names the BLAS library, its kernel and threads (``miniclip/system/blas.py``),
the ``OPENBLAS_*`` variables set and the load average; every row gives miniclip's
examples per second and its model FLOP utilisation (MFU): the model's FLOPs
(``miniclip/models/flops.py``, those of the positions actually run for text) per second,
over the float32 matrix-product peak measured at start-up. ``--quick`` runs the tiny
presets instead of ViT-B/32 and RN50.

On a GPU (``--device cuda``), the measurements of the project's GPU table: training steps
(the batch copied from the host each step, forward, loss, backward, AdamW) of tiny-vit
(batch 256), ViT-B/32 (batch 128, float32 and mixed precision) and RN50 (batch 64), and
``encode_image`` of ViT-B/32 (batch 256) and RN50 (batch 128), each with its peak GPU
memory. ``--quick`` shrinks every model and batch, to check that the script runs.

With torch and the ``clip-anytorch`` package installed, each measurement is repeated
with OpenAI's ``clip/model.py`` holding the same weights and the same batch; the two are
timed alternately (so both see the same machine load) and the medians are compared.
``--profile`` prints where miniclip's training step spends its time, by function.
``--cpu-time`` times by the process's CPU time instead of the wall clock.

Freed memory is kept for reuse (``miniclip/system/memory.py``), as the training program
does; the setting is the process's, so PyTorch gets it too. ``--system-malloc`` leaves
glibc's ``malloc`` as it starts.
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

from miniclip import backend  # noqa: E402
from miniclip.autograd import Tensor, no_grad  # noqa: E402
from miniclip.models import create_model, flops  # noqa: E402
from miniclip.optim import (  # noqa: E402
    AdamW,  # noqa: E402
    GradScaler,
    float16_parameters,
    mixed_precision_step,
)
from miniclip.system import (  # noqa: E402
    blas_description,
    blas_threads,
    matmul_peak_flops,
    model_flops_utilization,
    reuse_freed_memory,
)
from miniclip.training.loss import clip_loss  # noqa: E402

try:
    import torch
    import torch.nn.functional as torch_F
    from make_model_fixtures import import_reference_model
except ImportError:  # miniclip alone
    torch = None

TRAIN_BATCH = 64
ADAMW = dict(lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)  # the paper's ViT settings


#: The clock of every measurement: wall time, or with ``--cpu-time`` this process's CPU
#: time, which other programs on a busy machine disturb far less (both libraries run one
#: thread, so it is their compute time).
clock = time.perf_counter


def seconds(function):
    start = clock()
    function()
    return clock() - start


def compare(label, ours, theirs, repeats, flops=None, examples=None):
    """Time ``ours`` and ``theirs`` alternately after one warm-up call each; print medians
    (and, given the ``flops`` and ``examples`` of one call, miniclip's rate and MFU).
    Returns ``(miniclip seconds, PyTorch seconds or None)``."""
    ours()
    if theirs is not None:
        theirs()
    times_ours, times_theirs = [], []
    for _ in range(repeats):
        times_ours.append(seconds(ours))
        if theirs is not None:
            times_theirs.append(seconds(theirs))
    mine = statistics.median(times_ours)
    reference = statistics.median(times_theirs) if times_theirs else None
    line = f"{label:<40} miniclip {mine * 1e3:8.1f} ms"
    if flops is not None:
        line += rate(flops, examples, mine)
    if reference is not None:
        line += f"   PyTorch {reference * 1e3:8.1f} ms   ratio {mine / reference:5.2f}x"
    print(line, flush=True)
    return mine, reference


def rate(flops, examples, seconds):
    """`` 123.4 img/s  MFU 45%``: examples per second and the share of the measured peak."""
    mfu = model_flops_utilization(flops, seconds, matmul_peak_flops(clock=clock))
    return f"{examples / seconds:8.1f} /s  MFU {mfu:4.0%}"


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


def bench_encoders(reference, repeats, quick=False):
    for name in ("ViT-B/32", "RN50"):
        name = QUICK[name][0] if quick else name
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
        side, context = model.input_resolution, model.context_length
        compare(f"{name} encode_image 8x{side}px", ours_image, theirs_image, repeats,
                8 * flops.image_flops(model.config), 8)
        runs = flops.text_positions(tokens)
        compare(f"{name} encode_text 8x{context} (runs {runs})", ours_text, theirs_text, repeats,
                8 * flops.text_flops(model.config, runs), 8)


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


def bench_training(reference, repeats, profile, name="tiny-vit"):
    np.random.seed(0)
    model = create_model(name).train()
    images, tokens = inputs(model, TRAIN_BATCH)
    twin = reference_copy(reference, model).train() if reference else None
    theirs = reference_training_step(twin, images, tokens) if twin is not None else None
    ours = training_step(model, images, tokens)
    compare(f"{name} training step, batch {TRAIN_BATCH}", ours, theirs, repeats,
            flops.training_step_flops(model.config, TRAIN_BATCH, flops.text_positions(tokens)),
            TRAIN_BATCH)
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(repeats):
            ours()
        profiler.disable()
        print(f"\nminiclip {name} training step, {repeats} steps, by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


# ------------------------------------------------------------------------------ on a GPU
#: The GPU table: (label, model, batch, what, target ratio to PyTorch from issue 8).
GPU_TABLE = [
    ("tiny-vit training step, batch 256, fp32", "tiny-vit", 256, "train", 1.5),
    ("ViT-B/32 training step, batch 128, fp32", "ViT-B/32", 128, "train", 1.15),
    ("ViT-B/32 training step, batch 128, mixed", "ViT-B/32", 128, "train-amp", 1.3),
    ("ViT-B/32 encode_image, batch 256", "ViT-B/32", 256, "encode", 1.2),
    ("RN50 training step, batch 64, fp32", "RN50", 64, "train", 1.8),
    ("RN50 encode_image, batch 128", "RN50", 128, "encode", None),
]
QUICK = {"tiny-vit": ("tiny-vit", 8), "ViT-B/32": ("tiny-vit", 8), "RN50": ("tiny-rn", 4)}


def synchronized(function, synchronize):
    """``function`` followed by waiting for the GPU, so that its time is the GPU's."""
    def timed():
        function()
        synchronize()
    return timed


def miniclip_gpu_step(model, images, tokens, what):
    """A training step as ``training.step.train_step`` takes it (host batch in, AdamW out), or a
    forward of ``encode_image``."""
    if what == "encode":
        def encode():
            with no_grad():
                model.encode_image(Tensor(images, device="cuda"))
        return encode
    optimizer = AdamW(model.parameters(), **ADAMW)
    scaler = GradScaler(enabled=what == "train-amp")

    def step():
        batch = Tensor(images, device="cuda")
        if scaler.enabled:
            with float16_parameters(model):
                logits = model(batch.half(), tokens)
            mixed_precision_step(clip_loss(*logits), optimizer, scaler)
        else:
            clip_loss(*model(batch, tokens)).backward()
            optimizer.step()
            optimizer.zero_grad()
    return step


def torch_gpu_step(twin, images, tokens, what):
    """The same on OpenAI's model (``torch.autocast`` and ``GradScaler`` for mixed)."""
    tokens_t = torch.from_numpy(tokens).cuda()
    if what == "encode":
        def encode():
            with torch.no_grad():
                twin.encode_image(torch.from_numpy(images).cuda())
        return encode
    optimizer = torch.optim.AdamW(twin.parameters(), **ADAMW)
    scaler = torch.amp.GradScaler("cuda", enabled=what == "train-amp")
    labels = torch.arange(images.shape[0], device="cuda")

    def step():
        batch = torch.from_numpy(images).cuda()
        with torch.autocast("cuda", dtype=torch.float16, enabled=what == "train-amp"):
            logits_per_image, logits_per_text = twin(batch, tokens_t)
        loss = (torch_F.cross_entropy(logits_per_image.float(), labels)
                + torch_F.cross_entropy(logits_per_text.float(), labels)) / 2
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
    return step


def bench_gpu(reference, repeats, quick=False):
    """The GPU table; returns one dict per row (times in seconds, memory in bytes)."""
    pool = backend.get_device("cuda").xp.get_default_memory_pool()
    rows = []
    for label, name, batch, what, target in GPU_TABLE:
        if quick:
            name, batch = QUICK[name]
        np.random.seed(0)
        model = create_model(name).to("cuda").train(what != "encode")
        images, tokens = inputs(model, batch)
        pool.free_all_blocks()
        ours = synchronized(miniclip_gpu_step(model, images, tokens, what),
                            backend.synchronize)
        theirs = None
        if reference is not None:
            twin = reference_copy(reference, model).cuda().train(what != "encode")
            theirs = synchronized(torch_gpu_step(twin, images, tokens, what),
                                  torch.cuda.synchronize)
            torch.cuda.reset_peak_memory_stats()
        mine, their_time = compare(label, ours, theirs, repeats)
        rows.append(dict(label=label, miniclip_s=mine, pytorch_s=their_time, target=target,
                         miniclip_bytes=pool.total_bytes(),
                         pytorch_bytes=torch.cuda.max_memory_allocated() if theirs else None))
        del model, ours, theirs
    return rows


def print_gpu_table(rows):
    """The rows as the README's Markdown table."""
    print("\n| measurement | miniclip | PyTorch | ratio (target) | peak GPU memory, "
          "miniclip / PyTorch |\n|---|---|---|---|---|")
    for row in rows:
        theirs = row["pytorch_s"]
        ratio = f"{row['miniclip_s'] / theirs:.2f}x" if theirs else "-"
        target = f" (<= {row['target']}x)" if row["target"] else ""
        memory = f"{row['miniclip_bytes'] / 2**30:.2f}"
        memory += f" / {row['pytorch_bytes'] / 2**30:.2f} GiB" if theirs else " GiB"
        pytorch = f"{theirs * 1e3:.1f} ms" if theirs else "-"
        print(f"| {row['label']} | {row['miniclip_s'] * 1e3:.1f} ms | {pytorch} | "
              f"{ratio}{target} | {memory} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny models and batches: check that the script runs")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by this process's CPU time instead of the wall clock "
                             "(steadier on a busy machine; for one thread each)")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's malloc as it starts, instead of keeping freed "
                             "memory for reuse as the training program does (both libraries "
                             "share the process, so the setting applies to both)")
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    if not args.system_malloc:
        print(reuse_freed_memory())
    reference = import_reference_model() if torch is not None else None
    if args.device == "cuda":
        if torch is not None and not torch.cuda.is_available():
            reference = None
        rows = bench_gpu(reference, args.repeats, args.quick)
        print_gpu_table(rows)
        return rows
    if torch is not None:  # the same number of threads as NumPy's BLAS
        torch.set_num_threads(blas_threads() or os.cpu_count())
    print(f"CPU cores: {os.cpu_count()}; NumPy {np.__version__}"
          + (f"; PyTorch {torch.__version__}, {torch.get_num_threads()} threads" if torch else
             "; PyTorch not installed (miniclip only)"))
    variables = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    print(f"{blas_description()}; environment {variables or 'no OPENBLAS_* variable'}")
    print(f"float32 matmul peak {matmul_peak_flops(clock=clock) / 1e9:.0f} GFLOP/s (measured "
          f"now{', CPU time' if args.cpu_time else ''}); "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    bench_encoders(reference, args.repeats, args.quick)
    for name in ("tiny-vit", "tiny-rn"):
        bench_training(reference, args.repeats, args.profile, name)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

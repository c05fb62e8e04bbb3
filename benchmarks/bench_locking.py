"""How much a locked tower saves: training steps of tiny-vit with and without a lock.

    python benchmarks/bench_locking.py [--repeats 7] [--batch-size 64] [--tower vit]

A locked tower (``miniclip/training/locking.py``) records no graph, so ``backward`` never
runs its ops and the optimiser never updates it: the step should be faster by about the
tower's backward pass (plus its share of the AdamW update), and by no more, since its
forward still runs. This measures, alternating the configurations so that all of them see
the same machine load:

* the full training step (the program's ``train_step``: forward, loss, backward, finite
  check, clipping, AdamW) unlocked, with ``--lock-image`` and with ``--lock-text``;
* each tower's backward on its own: forward and backward of ``encode_*(...).sum()``
  minus the forward alone; and its update: an AdamW step over its parameters alone;

and prints the medians, the saving of each lock and the backward and update it should save,
with the load average. On a shared machine the figures wobble: compare the ratios.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT]

from miniclip import nn  # noqa: E402
from miniclip.autograd import no_grad  # noqa: E402
from miniclip.models import create_model  # noqa: E402
from miniclip.optim import GradScaler  # noqa: E402
from miniclip.training.config import TINY_MODELS  # noqa: E402
from miniclip.training.locking import lock_tower  # noqa: E402
from miniclip.training.recipe import paper_optimizer  # noqa: E402
from miniclip.training.step import train_step  # noqa: E402


def model_and_step(tower, lock):
    """A fresh model (seed 0) with ``lock`` locked (or None) and a function running one
    training step of it on a batch."""
    nn.manual_seed(0)
    model = create_model(TINY_MODELS[tower]).train()
    if lock:
        lock_tower(model, lock)
    optimizer = paper_optimizer(model, 1e-4, model.vision_kind)
    scaler = GradScaler(enabled=False)

    def step(images, tokens):
        train_step(model, optimizer, scaler, images, tokens, 1, "cpu", 1.0)
    return model, step


def tower_backward(model, tower, images, tokens):
    """Seconds of one tower's backward: forward + backward of its features' sum, minus its
    forward alone (the same forward, under no_grad, builds no graph)."""
    encode = (lambda: model.encode_image(images)) if tower == "image" else \
        (lambda: model.encode_text(tokens))
    began = time.perf_counter()
    encode().sum().backward()
    both = time.perf_counter() - began
    model.zero_grad()
    began = time.perf_counter()
    with no_grad():
        encode()
    return both - (time.perf_counter() - began)


def tower_update(model, tower):
    """Seconds of one AdamW step (the paper's groups) over ``tower``'s parameters alone: the
    other tower locked, every gradient set."""
    lock_tower(model, "text" if tower == "image" else "image")
    optimizer = paper_optimizer(model, 1e-4, model.vision_kind)
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = np.ones_like(param.data)
    began = time.perf_counter()
    optimizer.step()
    return time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tower", choices=sorted(TINY_MODELS), default="vit")
    args = parser.parse_args(argv)
    locks = {"unlocked": None, "--lock-image": "image", "--lock-text": "text"}
    steps = {name: model_and_step(args.tower, lock) for name, lock in locks.items()}
    model = steps["unlocked"][0]
    rng = np.random.default_rng(0)
    side = model.input_resolution
    images = rng.standard_normal((args.batch_size, 3, side, side)).astype(np.float32)
    tokens = np.zeros((args.batch_size, 13), dtype=np.int64)            # [N, L] as trimmed
    tokens[:, 0] = model.vocab_size - 2
    tokens[:, 1:12] = rng.integers(1, 4000, size=(args.batch_size, 11))
    tokens[:, 12] = model.vocab_size - 1
    for _, step in steps.values():  # warm up: the first step allocates
        step(images, tokens)
    times = {name: [] for name in [*locks, "image backward", "text backward", "image update",
                                   "text update"]}
    for _ in range(args.repeats):
        for name, (_, step) in steps.items():
            began = time.perf_counter()
            step(images, tokens)
            times[name].append(time.perf_counter() - began)
        fresh, _ = model_and_step(args.tower, None)
        for tower in ("image", "text"):
            times[f"{tower} backward"].append(tower_backward(fresh, tower, images, tokens))
            times[f"{tower} update"].append(tower_update(model_and_step(args.tower, None)[0],
                                                         tower))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{TINY_MODELS[args.tower]}, batch {args.batch_size}, median of {args.repeats} "
          f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    print(f"  training step, unlocked:   {median['unlocked'] * 1e3:7.1f} ms")
    for name, tower in (("--lock-image", "image"), ("--lock-text", "text")):
        saved = median["unlocked"] - median[name]
        backward, update = median[f"{tower} backward"], median[f"{tower} update"]
        print(f"  training step, {name + ':':<12} {median[name] * 1e3:7.1f} ms, saves "
              f"{saved * 1e3:6.1f} ms; the {tower} tower's backward takes "
              f"{backward * 1e3:6.1f} ms and its AdamW update {update * 1e3:5.1f} ms "
              f"(saved / both = {saved / (backward + update):.2f})")


if __name__ == "__main__":
    main()

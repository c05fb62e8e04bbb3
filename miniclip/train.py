"""Train a CLIP from scratch: ``python -m miniclip.train --tiny``.

The tiny run trains the ``tiny-vit`` preset (``--tower rn``: ``tiny-rn``) on
:class:`~miniclip.data.SyntheticShapes` — pictures of coloured shapes with captions such as
"a photo of a small red circle on the left." — on the CPU in 1-2 minutes, then measures
zero-shot accuracy on held-out pictures: each is given the class ("red circle", "blue
square", …) whose prompts its embedding is closest to, a task the model was never trained
on. The recipe is the paper's, scaled down:

* the symmetric contrastive loss over the batch (``training/loss.py``, ``clip_loss``);
* AdamW with the paper's β and ε for the image tower and weight decay 0.2 on weights but
  not on gains and biases (``training/recipe.py``, ``paper_optimizer``);
* linear warm-up, then cosine decay of the learning rate (``optim.WarmupCosine``);
* the learned temperature, clipped so the logit scale never exceeds 100
  (``cap_logit_scale_`` after every step);
* gradient-norm clipping, and optionally mixed precision (``--amp``, see ``amp.py``).

One training step::

    logits_per_image, logits_per_text = model(images, tokens)   # [N, N] each
    loss = clip_loss(logits_per_image, logits_per_text)
    loss.backward()
    check_finite(model, step, loss)        # stop, naming the step, on an inf/NaN
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step(); optimizer.zero_grad()
    cap_logit_scale_(model)

With ``--out DIR`` the run saves ``DIR/checkpoint.npz`` (model, optimiser, loss scaler,
step, loss history) every ``--save-every`` steps and at the end, atomically; ``--resume``
continues from it exactly: the data stream, the schedule and the optimiser pick up at the
saved step. ``--data DIR`` trains on a folder of images with a ``captions.csv`` instead
(see ``data.ImageTextFolder``); zero-shot evaluation needs class names and is then skipped.
"""
import argparse
import functools
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from . import nn
from .amp import GradScaler, float16_parameters, mixed_precision_step
from .autograd import Tensor
from .data import (ArrayDataset, CLIPCollate, DataLoader, ImageTextFolder, SyntheticShapes,
                   stack_fields)
from .models import create_model
from .optim import WarmupCosine, clip_grad_norm_
from .training.loss import LOGIT_SCALE_INIT, cap_logit_scale_, clip_loss
from .training.recipe import paper_optimizer
from .training.state import (NonFiniteError, check_finite, load_training_state,
                             save_training_state)
from .evaluation.zeroshot import accuracy, zero_shot_classifier, zero_shot_predict

#: The teaching preset ``--tiny`` trains, per image tower.
TINY_MODELS = {"vit": "tiny-vit", "rn": "tiny-rn"}

#: Default number of steps, per image tower. With batches of 32 and a peak rate of 1e-3 both
#: reach about 85% zero-shot accuracy (chance: 3.3%) on 2 CPU cores in 1-2 minutes; the
#: convolutions of the ResNet see shapes sooner, so it needs fewer (but slower) steps.
DEFAULT_STEPS = {"vit": 1500, "rn": 800}

#: The file ``--out`` holds and ``--resume`` reads.
CHECKPOINT = "checkpoint.npz"

#: How many steps at each end of the run the "loss a -> b" summary averages.
LOSS_WINDOW = 20


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m miniclip.train",
        description="Train a CLIP from scratch. --tiny trains a tiny CLIP on synthetic shapes\n"
                    "on the CPU in 1-2 minutes and reports its zero-shot accuracy.",
        epilog="examples:\n"
               "  python -m miniclip.train --tiny                       # ViT tower, CPU\n"
               "  python -m miniclip.train --tiny --tower rn --steps 200\n"
               "  python -m miniclip.train --tiny --out runs/a          # save checkpoints\n"
               "  python -m miniclip.train --tiny --out runs/a --resume # pick up where it stopped\n"
               "  python -m miniclip.train --tiny --device cuda --amp   # GPU, mixed precision",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tiny", action="store_true",
                       help="train the tiny teaching preset of --tower on synthetic shapes")
    which.add_argument("--model", metavar="NAME",
                       help="train this configuration instead (a name from "
                            "miniclip.models.available_configs())")
    add = parser.add_argument
    add("--tower", choices=sorted(TINY_MODELS), default="vit",
        help="image tower of the --tiny model: vit (default) or rn (ResNet)")
    add("--steps", metavar="N", type=int, default=None,
        help=f"optimiser steps (default {DEFAULT_STEPS['vit']} for vit, "
             f"{DEFAULT_STEPS['rn']} for rn)")
    add("--batch-size", metavar="N", type=int, default=32, help="pairs per batch (default 32)")
    add("--lr", metavar="LR", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    add("--warmup", metavar="N", type=int, default=None,
        help="warm-up steps (default: 10%% of --steps)")
    add("--weight-decay", metavar="WD", type=float, default=0.2,
        help="AdamW weight decay of the weight matrices (default 0.2, the paper's)")
    add("--grad-clip", metavar="NORM", type=float, default=1.0,
        help="clip the global gradient norm to this (default 1.0; 0 turns it off)")
    add("--seed", metavar="N", type=int, default=0,
        help="seed of the weights, the data and its order (default 0)")
    add("--device", default="cpu", help="cpu (default) or cuda")
    add("--amp", action="store_true",
        help="mixed precision: float16 forward/backward, float32 master weights (for GPUs)")
    add("--train-size", metavar="N", type=int, default=4096,
        help="synthetic training pictures (default 4096)")
    add("--eval-size", metavar="N", type=int, default=600,
        help="held-out synthetic pictures for zero-shot accuracy (default 600)")
    add("--data", metavar="DIR",
        help="train on this folder of images instead; its captions file has a header line "
             "'filename,caption' and a row per caption, several per image allowed (README: "
             "Training on your own images)")
    add("--captions", metavar="FILE",
        help="captions file inside --data (default: the first of captions.csv, "
             "captions.tsv, captions.jsonl)")
    add("--no-augment", action="store_true",
        help="--data: centre crops, not the paper's random square crops of resized images")
    add("--prefetch", metavar="N", type=int, default=2,
        help="--data: batches prepared ahead in a background thread (default 2; 0: none)")
    add("--out", metavar="DIR", help="folder for the checkpoint (none is written without it)")
    add("--save-every", metavar="N", type=int, default=100,
        help="steps between checkpoints (default 100)")
    add("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    add("--quiet", action="store_true", help="no progress bar")
    add("--distributed", action="store_true",
        help="one process of a data-parallel run: mpiexec -n 4 python -m miniclip.train "
             "--tiny --distributed (needs mpi4py; --batch-size is the global batch)")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = DEFAULT_STEPS[args.tower]
    if args.resume and not args.out:
        parser.error("--resume needs --out (the folder holding the checkpoint)")
    if args.steps < 1 or args.batch_size < 2:
        parser.error("--steps must be >= 1 and --batch-size >= 2 (a contrastive batch needs "
                     "at least one mismatched pair)")
    if args.warmup is None:
        args.warmup = args.steps // 10
    return args


def main(argv=None):
    """Run ``python -m miniclip.train`` with the arguments ``argv``; returns the exit code.

    Training stops with exit code 1 and a message naming the step if the loss, a gradient
    or a weight becomes inf or NaN (the last checkpoint is kept).
    """
    args = parse_args(argv)
    try:
        if args.distributed:  # an error on any rank ends the whole job (distributed/launch.py)
            from .distributed.launch import run
            run(train, args)
        else:
            train(args)
    except NonFiniteError as error:
        print(f"error: training stopped: {error}\nThe last checkpoint (if any) is unchanged. "
              "A lower --lr, a longer --warmup or --grad-clip usually cures a diverging run.",
              file=sys.stderr)
        return 1
    return 0


def train(args, world=None):
    """The training run ``args`` describes (see ``parse_args``), as one rank of ``world``
    when given (a data-parallel run, ``miniclip/distributed/``). Returns a summary dict:
    ``losses`` (one per step, from step 1), ``seconds`` (of this session's steps),
    ``accuracy_before`` and ``accuracy`` (zero-shot top-1; None without evaluation) and
    ``chance`` (1 / number of classes)."""
    name = TINY_MODELS[args.tower] if args.tiny else args.model
    nn.manual_seed(args.seed)
    model = create_model(name).to(args.device).train()
    print(f"{name}: {model.num_parameters():,} parameters, on {args.device}"
          + (", mixed precision" if args.amp else ""))
    if args.amp and model.logit_scale.device.name == "cpu":
        print("note: --amp is for GPUs. NumPy has no fast float16 matrix product, so on the CPU "
              "mixed precision is about 100x slower than float32.")
    collate = CLIPCollate.for_model(model.input_resolution, model.context_length)
    loader, evaluation = _data(args, model.input_resolution, collate)
    step_function = train_step
    if world is not None:  # each rank: rank 0's weights, its rows of each batch, the same step
        from .distributed import broadcast_parameters, shard, train_step as parallel_step
        broadcast_parameters(world, model)
        loader, step_function = shard(loader, world), functools.partial(parallel_step, world)
        evaluation = evaluation if world.rank == 0 else None
    optimizer = paper_optimizer(model, args.lr, model.vision_kind, weight_decay=args.weight_decay)
    schedule = WarmupCosine(optimizer, args.warmup, args.steps)
    scaler = GradScaler(enabled=args.amp)
    # What a resumed run must share. (The learning rate and weight decay come back from the
    # optimiser's saved state, so a different --lr would be silently ignored: refuse it.)
    run = {"model": name, "batch_size": args.batch_size, "seed": args.seed, "data": args.data,
           "train_size": args.train_size, "lr": args.lr, "weight_decay": args.weight_decay,
           "world_size": 1 if world is None else world.size}

    start, losses, accuracy_before = 0, [], None
    if args.resume:
        start, losses, accuracy_before = _resume(args.out, model, optimizer, scaler, run)
    elif evaluation is not None:
        accuracy_before = evaluate(model, *evaluation, collate.tokenize)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    def save(step):
        if world is not None and world.rank != 0:
            return  # one writer
        save_training_state(os.path.join(args.out, CHECKPOINT), model, optimizer, step, scaler,
                            extra=dict(run, losses=losses, accuracy_before=accuracy_before))

    print(f"training steps {start + 1}..{args.steps}, batch {args.batch_size}, "
          f"peak lr {args.lr:g} after {args.warmup} warm-up steps")
    began = time.perf_counter()
    batches = loader.batches(start_step=start)
    progress = tqdm(range(start, args.steps), initial=start, total=args.steps, desc=name,
                    disable=args.quiet, dynamic_ncols=True)
    for step in progress:
        lr = schedule(step)
        images, tokens = next(batches)
        losses.append(step_function(model, optimizer, scaler, images, tokens, step + 1,
                                    args.device, args.grad_clip))
        if (step + 1) % 10 == 0 or step + 1 == args.steps:  # the temperature is a device read
            progress.set_postfix({"loss": f"{np.mean(losses[-10:]):.3f}",
                                  "temp": f"{_temperature(model):.4f}", "lr": f"{lr:.1e}"})
        if args.out and (step + 1) % args.save_every == 0:
            save(step + 1)
    progress.close()
    seconds = time.perf_counter() - began
    if args.out:
        save(args.steps)

    result = {"losses": losses, "seconds": seconds, "accuracy_before": accuracy_before,
              "accuracy": None, "chance": None}
    if evaluation is not None:
        result["accuracy"] = evaluate(model, *evaluation, collate.tokenize)
        result["chance"] = 1 / len(evaluation[0].classnames)
    _report(result, args.steps - start, _temperature(model), evaluation)
    return result


def _temperature(model):
    """The learned temperature τ = 1 / exp(logit_scale)."""
    return float(np.exp(-model.logit_scale.item()))


def _report(result, steps, temperature, evaluation):
    """Print how long the run took, how far the loss fell and the zero-shot accuracy."""
    seconds, losses = result["seconds"], result["losses"]
    print(f"trained {steps} step{'s' * (steps != 1)} in {seconds:.1f} s "
          f"({seconds / max(steps, 1):.3f} s/step)")
    if losses:
        window = min(LOSS_WINDOW, max(len(losses) // 2, 1))
        print(f"loss {np.mean(losses[:window]):.2f} → {np.mean(losses[-window:]):.2f} "
              f"(mean of the first and last {window} steps)")
    print(f"temperature {np.exp(-LOGIT_SCALE_INIT):.3f} → {temperature:.3f} "
          f"(logit scale {1 / temperature:.1f})")
    if evaluation is not None:
        dataset = evaluation[0]
        before = result["accuracy_before"]
        before = "" if before is None else f", before training {before:.1%}"
        print(f"zero-shot accuracy on {len(dataset)} held-out pictures, "
              f"{len(dataset.classnames)} classes: {result['accuracy']:.1%} "
              f"(chance {result['chance']:.1%}{before})")


def train_step(model, optimizer, scaler, images, tokens, step, device, max_grad_norm):
    """One optimiser step on a batch (NumPy ``images [N, 3, R, R]``, ``tokens [N, C]``);
    returns the loss as a float. ``step`` (counted from 1) names the step in errors."""
    # The token ids stay on the host: the text tower checks their range there, for free,
    # before copying them to the model's device.
    images = Tensor(images, device=device)
    max_grad_norm = max_grad_norm or None  # 0 turns clipping off
    # check_finite reads the loss and its verdicts in one transfer. With the range checks
    # of the embedding's ids and of the loss's labels, a float32 step waits for a GPU four
    # times; mixed precision adds the loss scaler's inf check.
    if scaler.enabled:
        # float16 copies of the weights for the forward pass; the loss itself is float32
        with float16_parameters(model):
            logits_per_image, logits_per_text = model(images, tokens)
        loss = clip_loss(logits_per_image, logits_per_text)
        value = check_finite(model, step, loss)  # an overflowing *gradient* only skips the step
        # Scaled float16 gradients overflow now and then by design: the scaler sees the
        # inf, skips the step and lowers the scale. NumPy's warnings about it are noise.
        with np.errstate(over="ignore", invalid="ignore"):
            mixed_precision_step(loss, optimizer, scaler, max_grad_norm)
    else:
        logits_per_image, logits_per_text = model(images, tokens)
        loss = clip_loss(logits_per_image, logits_per_text)
        loss.backward()
        value = check_finite(model, step, loss)  # before the update: the weights are still good
        if max_grad_norm is not None:
            clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
    cap_logit_scale_(model)
    return value


def evaluate(model, dataset, images, labels, tokenize):
    """Zero-shot top-1 accuracy on ``images`` with ``dataset``'s class names and templates."""
    model.eval()  # ResNet batch norms use their running statistics
    classifier = zero_shot_classifier(model, dataset.classnames, dataset.templates, tokenize)
    score = accuracy(zero_shot_predict(model, images, classifier), labels)
    model.train()
    return score


def _data(args, image_size, collate):
    """The training batches, and ``(dataset, images, labels)`` for evaluation or None.

    The synthetic sets are small, so they are drawn, preprocessed and tokenized once
    (``ArrayDataset.prepare``); a folder of real images is read batch by batch.
    """
    if args.data:
        train_set = ImageTextFolder(args.data, args.captions, seed=args.seed,
                                    random_crop=None if args.no_augment else image_size)
        loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                            drop_last=True, collate=collate, prefetch=args.prefetch)
        return loader, None
    images, tokens = ArrayDataset.prepare(
        SyntheticShapes(args.train_size, image_size, split="train", seed=args.seed), collate).arrays
    train_set = ArrayDataset(images, trim_padding(tokens))
    loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                        drop_last=True, collate=stack_fields)
    test_set = SyntheticShapes(args.eval_size, image_size, split="test", seed=args.seed)
    images, _ = ArrayDataset.prepare(test_set, collate).arrays
    return loader, (test_set, images, test_set.labels())


def trim_padding(tokens):
    """Drop the columns ``tokens [N, C]`` holds only padding (id 0) in: ``[N, L]``, L <= C.

    The text tower pools at the end-of-text token, and its causal mask lets no position
    see the positions after it, so padding after the end-of-text token cannot change the
    text features: the model gives the same features for ``[N, L]`` as for ``[N, C]``. Our
    captions fill at most 13 of the tiny model's 32 positions, so this more than halves
    the text tower's work.
    """
    used = np.flatnonzero(tokens.any(axis=0))  # columns holding a real token in some row
    return tokens[:, :used[-1] + 1]


def _resume(out, model, optimizer, scaler, run):
    """Load ``out/checkpoint.npz`` into the objects; returns (step, losses, accuracy_before)."""
    path = os.path.join(out, CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    state = load_training_state(path, model, optimizer, scaler)
    saved = state["extra"] or {}
    changed = [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in run.items()
               if saved.get(key) != value]
    if changed:
        raise ValueError(f"--resume: {path} was trained with other settings "
                         f"({', '.join(changed)}); resume with the same ones, or start afresh "
                         "in another --out folder")
    return state["step"], list(saved["losses"]), saved["accuracy_before"]


if __name__ == "__main__":
    sys.exit(main())

"""Train a CLIP from scratch: ``python -m miniclip.train --tiny``.

The tiny run trains the ``tiny-vit`` preset (``--tower rn``: ``tiny-rn``) on
:class:`~miniclip.data.SyntheticShapes` — pictures of coloured shapes with captions such as
"a photo of a small red circle on the left." or "there is a square that is green." — on
the CPU in a minute or two, then measures what it learned (``evaluation/shapes.py``):
zero-shot accuracy over all 30 colour–shape classes, separately on the combinations it was
trained on and on six it never saw pictured or named (``data.synthetic.HELD_OUT``), on
shifted pictures (outlines, heavy noise, striped backgrounds), retrieval Recall@K and a
linear probe. The recipe is the paper's, scaled down:

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

Every run writes a folder (``--out DIR``, by default ``runs/<date>-<time>``):
``checkpoint.npz`` (model, optimiser, loss scaler, step, schedule and history; every
``--save-every`` steps and at the end, atomically, loadable with ``miniclip.load``),
``metrics.json`` and PNG plots (``training/plots.py``). ``--resume`` continues a run
exactly where it stopped: the data stream, the schedule and the optimiser pick up at the
saved step. Ctrl-C finishes the current step, saves, and says how to resume. ``--data DIR``
trains on a folder of images with a captions file instead; evaluate such a run with
``python -m miniclip.evaluation``.

Problems the user can fix end with one ``error:`` line naming the fix and exit code 2,
other failures with exit code 1 (``--debug`` shows the traceback), Ctrl-C with 130.
"""
import argparse
import functools
import json
import os
import shlex
import signal
import sys
import threading
import time

import numpy as np
from tqdm import tqdm

from . import nn
from .amp import GradScaler, float16_parameters, mixed_precision_step
from .autograd import Tensor
from .data import (
    ArrayDataset,
    CLIPCollate,
    DataLoader,
    ImageTextFolder,
    SyntheticShapes,
    stack_fields,
)
from .evaluation.shapes import ShapesBenchmark
from .fileio import atomic_write
from .models import create_model, trim_padding
from .optim import WarmupCosine, clip_grad_norm_
from .training import plots
from .training.loss import LOGIT_SCALE_INIT, cap_logit_scale_, clip_loss
from .training.memory import reuse_freed_memory
from .training.recipe import paper_optimizer
from .training.state import NonFiniteError, check_finite, load_training_state, save_training_state
from .training.threads import limit_blas_threads

#: The teaching preset ``--tiny`` trains, per image tower.
TINY_MODELS = {"vit": "tiny-vit", "rn": "tiny-rn"}

#: Default number of steps and batch size, per image tower, at a peak rate of 1e-3 (README,
#: "Quick start", for what they reach). For the ViT, 800 batches of 64 beat 1500 of 32 (about
#: the same time) on the held-out pairs: more negatives per batch make the model tell apart
#: pairs that share a colour or a shape. The ResNet's convolutions see shapes sooner, but
#: each of its steps is slower.
DEFAULT_STEPS = {"vit": 800, "rn": 800}
DEFAULT_BATCH = {"vit": 64, "rn": 32}

#: Synthetic training pictures, drawn once (about 5 s). The ViT's 800 batches of 64 draw
#: 51,200 pairs: from 4,096 pictures that is each one 12 times, and the model learned
#: those pictures rather than shapes (seed 0: 82% seen / 62% held-out pairs, against 86% /
#: 77% from 16,384 pictures; 32,768 gave no more).
DEFAULT_TRAIN_SIZE = 16384

#: What a run folder holds.
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
CURVES_PLOT, SIMILARITY_PLOT, PREDICTIONS_PLOT = ("training_curves.png", "similarity.png",
                                                  "predictions.png")

#: How many steps at each end of the run the "loss a -> b" summary averages.
LOSS_WINDOW = 20

#: The temperature is read (a device read on a GPU) and the progress shown every this-many steps.
SHOW_EVERY = 10


class RunError(Exception):
    """A problem with the command line or its inputs; the message says how to fix it."""


class Interrupted(Exception):
    """Ctrl-C stopped the run after a completed step, which was saved."""

    def __init__(self, step):
        super().__init__(f"interrupted after step {step}")
        self.step = step


#: Exceptions that mean "the inputs are wrong": one line and exit code 2, like argparse's.
INPUT_ERRORS = (RunError, FileNotFoundError, NotADirectoryError, ValueError)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m miniclip.train",
        description="Train a CLIP from scratch. --tiny trains a tiny CLIP on synthetic shapes\n"
                    "on the CPU in a minute or two, then writes its metrics and plots.",
        epilog="examples:\n"
               "  python -m miniclip.train --tiny                       # ViT tower, CPU\n"
               "  python -m miniclip.train --tiny --tower rn --steps 200\n"
               "  python -m miniclip.train --tiny --out runs/a          # name the run folder\n"
               "  python -m miniclip.train --tiny --out runs/a --resume # pick up where it stopped\n"
               "  python -m miniclip.train --tiny --device cuda --amp   # GPU, mixed precision\n"
               "\n"
               "A run folder holds checkpoint.npz (miniclip.load reads it), metrics.json,\n"
               f"{CURVES_PLOT}, {SIMILARITY_PLOT} and {PREDICTIONS_PLOT}.",
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
        help=f"optimiser steps in all (default {DEFAULT_STEPS['vit']} for vit, "
             f"{DEFAULT_STEPS['rn']} for rn; with --resume, the saved run's)")
    add("--batch-size", metavar="N", type=int, default=None,
        help=f"pairs per batch (default {DEFAULT_BATCH['vit']} for vit, {DEFAULT_BATCH['rn']} "
             "for rn)")
    add("--lr", metavar="LR", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    add("--warmup", metavar="N", type=int, default=None,
        help="warm-up steps (default: 10%% of --steps; with --resume, the saved run's)")
    add("--weight-decay", metavar="WD", type=float, default=0.2,
        help="AdamW weight decay of the weight matrices (default 0.2, the paper's)")
    add("--grad-clip", metavar="NORM", type=float, default=1.0,
        help="clip the global gradient norm to this (default 1.0; 0 turns it off)")
    add("--seed", metavar="N", type=int, default=0,
        help="seed of the weights, the data and its order (default 0)")
    add("--device", default="cpu", help="cpu (default) or cuda")
    add("--amp", action="store_true",
        help="mixed precision: float16 forward/backward, float32 master weights (for GPUs)")
    add("--threads", metavar="N", type=int, default=None,
        help="BLAS threads (default: $MINICLIP_NUM_THREADS, $OPENBLAS_NUM_THREADS, else the "
             "cores not busy with other programs)")
    add("--train-size", metavar="N", type=int, default=DEFAULT_TRAIN_SIZE,
        help=f"synthetic training pictures (default {DEFAULT_TRAIN_SIZE})")
    add("--eval-size", metavar="N", type=int, default=900,
        help="synthetic test pictures for the zero-shot scores (default 900; a third as many "
             "per shifted set)")
    add("--eval-every", metavar="N", type=int, default=0,
        help="also measure zero-shot accuracy every N steps (default: only at the end)")
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
    add("--out", metavar="DIR",
        help="run folder for the checkpoint, metrics and plots (default runs/<date>-<time>)")
    add("--overwrite", action="store_true", help="replace the run already in --out")
    add("--save-every", metavar="N", type=int, default=100,
        help="steps between checkpoints (default 100)")
    add("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT}")
    add("--log-every", metavar="N", type=int, default=100,
        help="without a terminal, print progress every N steps (default 100)")
    add("--quiet", action="store_true", help="no progress bar or progress lines")
    add("--debug", action="store_true", help="show the traceback of an error")
    add("--distributed", action="store_true",
        help="one process of a data-parallel run: mpiexec -n 4 python -m miniclip.train "
             "--tiny --distributed (needs mpi4py; --batch-size is the global batch)")
    args = parser.parse_args(argv)
    if args.resume and not args.out:
        parser.error("--resume needs --out (the run folder holding the checkpoint)")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --out and --overwrite replaces it: "
                     "choose one")
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH[args.tower]
    if (args.steps is not None and args.steps < 1) or args.batch_size < 2:
        parser.error("--steps must be >= 1 and --batch-size >= 2 (a contrastive batch needs "
                     "at least one mismatched pair)")
    if not args.resume:  # a resumed run takes its schedule from the checkpoint
        if args.steps is None:
            args.steps = DEFAULT_STEPS[args.tower]
        if args.warmup is None:
            args.warmup = args.steps // 10
    return args


def main(argv=None):
    """Run ``python -m miniclip.train`` with the arguments ``argv``; returns the exit code.

    0 when the run finished; 1 if it stopped on an inf/NaN (naming the step; the last
    checkpoint is kept) or failed unexpectedly; 2 for a problem with the inputs that the
    ``error:`` line says how to fix; 130 after Ctrl-C. ``--debug`` lets errors raise.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        print(reuse_freed_memory())
        if args.distributed:  # an error on any rank ends the whole job (distributed/launch.py)
            from .distributed.launch import run
            run(train, args)  # which sets the BLAS threads, once it knows the ranks
        else:
            print(limit_blas_threads(args.threads))
            train(args)
    except NonFiniteError as error:
        print(f"error: training stopped: {error}\nThe last checkpoint (if any) is unchanged. "
              "A lower --lr, a longer --warmup or --grad-clip usually cures a diverging run.",
              file=sys.stderr)
        return 1
    except (Interrupted, KeyboardInterrupt) as stop:
        saved = os.path.join(args.out, CHECKPOINT) if args.out else None
        if isinstance(stop, Interrupted):
            what = f"stopped after step {stop.step}, saved in {saved}"
        elif saved and os.path.exists(saved):
            what = f"stopped; the last checkpoint ({saved}) is kept"
        else:
            print("interrupted before the first checkpoint; nothing to resume", file=sys.stderr)
            return 130
        print(f"interrupted: {what}. Continue with:\n  "
              f"{resume_command(argv, args.out)}", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        code = 2 if isinstance(error, INPUT_ERRORS) else 1
        kind = "" if code == 2 else f"{type(error).__name__}: "
        print(f"error: {kind}{error}" + ("" if code == 2 else
                                         " (run again with --debug for the traceback)"),
              file=sys.stderr)
        return code
    return 0


def resume_command(argv, out):
    """The command line that continues the run of ``argv`` saved in ``out``."""
    kept = [a for a in argv if a not in ("--resume", "--overwrite")]
    if "--out" not in kept and not any(a.startswith("--out=") for a in kept):
        kept += ["--out", out]
    return " ".join(["python -m miniclip.train"] + [shlex.quote(a) for a in kept] + ["--resume"])


def default_run_folder(root="runs"):
    """``runs/<date>-<time>``, with a counter if a run of the same second exists."""
    base = os.path.join(root, time.strftime("%Y%m%d-%H%M%S"))
    folder, number = base, 1
    while os.path.exists(folder):
        number += 1
        folder = f"{base}-{number}"
    return folder


def train(args, world=None):
    """The training run ``args`` describes (see ``parse_args``), as one rank of ``world``
    when given (a data-parallel run, ``miniclip/distributed/``); returns its metrics, the
    dict written to ``metrics.json``. Sets ``args.out`` to the run folder it used."""
    started = time.perf_counter()
    name = TINY_MODELS[args.tower] if args.tiny else args.model
    writer = world is None or world.rank == 0  # the one process that evaluates, writes, reports
    args.out = args.out or default_run_folder()  # (only a resumed run reads it on every rank)
    if writer:
        _check_run_folder(args)
    nn.manual_seed(args.seed)
    model = create_model(name).to(args.device).train()
    print(f"{name}: {model.num_parameters():,} parameters, on {args.device}"
          + (", mixed precision" if args.amp else "") + f"; run folder {args.out}")
    if args.amp and model.logit_scale.device.name == "cpu":
        print("note: --amp is for GPUs. NumPy has no fast float16 matrix product, so on the CPU "
              "mixed precision is about 100x slower than float32.")
    collate = CLIPCollate.for_model(model.input_resolution, model.context_length)
    loader, benchmark = _data(args, model.input_resolution, collate)
    step_function = train_step
    if world is not None:  # each rank: rank 0's weights, its rows of each batch, the same step
        from .distributed import broadcast_parameters, shard
        from .distributed import train_step as parallel_step
        broadcast_parameters(world, model)
        loader, step_function = shard(loader, world), functools.partial(parallel_step, world)
        benchmark = benchmark if writer else None
    optimizer = paper_optimizer(model, args.lr, model.vision_kind, weight_decay=args.weight_decay)
    scaler = GradScaler(enabled=args.amp)
    # What a resumed run must share. (The learning rate and weight decay come back from the
    # optimiser's saved state, so a different --lr would be silently ignored: refuse it.)
    run = {"model": name, "batch_size": args.batch_size, "seed": args.seed, "data": args.data,
           "train_size": args.train_size, "lr": args.lr, "weight_decay": args.weight_decay,
           "world_size": 1 if world is None else world.size}

    if args.resume:
        start, history = _resume(args, model, optimizer, scaler, run)
    else:
        start = 0
        # losses: one per step; temperatures: (step, τ) every SHOW_EVERY steps;
        # evaluations: zero-shot scores every --eval-every steps; seconds: of all sessions
        history = {"losses": [], "temperatures": [], "evaluations": [], "seconds": 0.0,
                   "before": benchmark.zero_shot(model) if benchmark else None}
    schedule = WarmupCosine(optimizer, args.warmup, args.steps)
    if writer:
        os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, CHECKPOINT)

    def save(step):
        if not writer:
            return
        save_training_state(checkpoint, model, optimizer, step, scaler,
                            extra=dict(run, history=history,
                                       schedule={"steps": args.steps, "warmup": args.warmup}))

    print(f"training steps {start + 1}..{args.steps}, batch {args.batch_size}, "
          f"peak lr {args.lr:g} after {args.warmup} warm-up steps")
    began = time.perf_counter()
    batches = loader.batches(start_step=start)
    progress = Progress(name, start, args.steps, args.log_every, args.quiet)
    with StopRequest() as stop:
        for step in range(start, args.steps):
            lr = schedule(step)
            images, tokens = next(batches)
            history["losses"].append(step_function(model, optimizer, scaler, images, tokens,
                                                   step + 1, args.device, args.grad_clip))
            done = step + 1
            if done % SHOW_EVERY == 0 or done == args.steps or progress.due(done):
                history["temperatures"].append((done, _temperature(model)))
                progress.show(done, loss=np.mean(history["losses"][-SHOW_EVERY:]),
                              temp=history["temperatures"][-1][1], lr=lr)
            if benchmark and args.eval_every and done % args.eval_every == 0:
                history["evaluations"].append(dict(step=done, **benchmark.zero_shot(model)))
                progress.write(f"step {done}: zero-shot top-1 " + _seen_unseen(
                    history["evaluations"][-1]))
            if done % args.save_every == 0 or stop.requested:
                history["seconds"] += time.perf_counter() - began
                began = time.perf_counter()
                save(done)
            if stop.requested:
                progress.close()
                raise Interrupted(done)
    progress.close()
    history["seconds"] += time.perf_counter() - began
    save(args.steps)
    if not writer:
        return {"model": name, "steps": args.steps}

    metrics = {"model": name, "steps": args.steps, "steps_this_session": args.steps - start,
               "batch_size": args.batch_size, "seed": args.seed,
               "train_seconds": history["seconds"], "checkpoint": checkpoint,
               "temperature": _temperature(model)}
    if benchmark:
        metrics.update(_evaluate(model, benchmark, args.out))
        metrics["zeroshot_before_training"] = history["before"]
    metrics.update(loss_history=history["losses"], temperature_history=history["temperatures"],
                   evaluations=history["evaluations"])
    plots.plot_training_curves(os.path.join(args.out, CURVES_PLOT), history["losses"],
                               history["temperatures"], history["evaluations"], args.batch_size)
    # everything of this session but importing: data, training, evaluation, plots
    metrics["run_seconds"] = time.perf_counter() - started
    with atomic_write(os.path.join(args.out, METRICS)) as file:
        file.write(json.dumps(metrics, indent=1).encode())
    _report(metrics, args.out, time.perf_counter() - began)
    return metrics


def _check_run_folder(args):
    """Refuse to replace a run without ``--overwrite``, or to resume one that isn't there."""
    existing = [f for f in (CHECKPOINT, METRICS) if os.path.exists(os.path.join(args.out, f))]
    if args.resume and CHECKPOINT not in existing:
        raise RunError(f"--resume: there is no {CHECKPOINT} in {args.out}; start the run "
                       "without --resume")
    if existing and not (args.resume or args.overwrite):
        raise RunError(f"{args.out} already holds a run ({', '.join(existing)}); continue it "
                       "with --resume, replace it with --overwrite, or choose another --out")


class StopRequest:
    """Ctrl-C during training, turned into a request to stop after the current step.

    An interrupt that lands inside a step could leave half the weights updated; instead the
    first Ctrl-C sets :attr:`requested`, and the loop saves a consistent checkpoint after the
    step and stops. A second Ctrl-C interrupts at once (the last checkpoint is kept).
    Python delivers signals to the main thread only, so elsewhere this does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press it again to stop at once)",
              file=sys.stderr)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """Training progress: a tqdm bar on a terminal; without one (a CI log, a file), one
    line every ``every`` steps, since a bar's hundreds of ``\\r`` redraws would each become
    a line; nothing when ``quiet``."""

    def __init__(self, name, start, total, every, quiet):
        self.total, self.every, self.quiet = total, max(every, 1), quiet
        self.last, self.began = start, time.perf_counter()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, desc=name, dynamic_ncols=True)

    def due(self, step):
        """Whether a progress line is due at ``step`` (never with a bar, or when quiet)."""
        return self.bar is None and not self.quiet and step % self.every == 0

    def show(self, step, loss, temp, lr):
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.bar.set_postfix({"loss": f"{loss:.3f}", "temp": f"{temp:.4f}", "lr": f"{lr:.1e}"})
            self.last = step
        elif self.due(step) or (step == self.total and not self.quiet):
            seconds = time.perf_counter() - self.began
            print(f"step {step}/{self.total}  loss {loss:.3f}  temp {temp:.4f}  lr {lr:.1e}  "
                  f"{seconds:.0f} s", file=sys.stderr, flush=True)

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _temperature(model):
    """The learned temperature τ = 1 / exp(logit_scale)."""
    return float(np.exp(-model.logit_scale.item()))


def _seen_unseen(scores):
    return (f"seen pairs {scores['zeroshot_top1_seen']:.1%}, "
            f"held-out pairs {scores['zeroshot_top1_unseen']:.1%}")


def _evaluate(model, benchmark, out):
    """``benchmark``'s metrics of the trained model, and its two evaluation plots in ``out``."""
    metrics, details = benchmark.evaluate(model)
    test_set = benchmark.test_set
    count = 10
    captions = [test_set[i][1] for i in range(count)]
    plots.plot_similarity(os.path.join(out, SIMILARITY_PLOT),
                          details["similarity"][:count, :count],
                          [test_set[i][0] for i in range(count)], captions)
    # Eight pictures of trained pairs and eight of held-out ones.
    shown = np.concatenate([np.flatnonzero(~benchmark.unseen)[:8],
                            np.flatnonzero(benchmark.unseen)[:8]])
    logits = np.exp(model.logit_scale.item()) * details["scores"][shown]      # [16, 30]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    plots.plot_predictions(os.path.join(out, PREDICTIONS_PLOT),
                           [test_set[int(i)][0] for i in shown], probabilities,
                           benchmark.labels[shown], benchmark.classnames,
                           test_set.held_out_classes())
    metrics.update(class_set=benchmark.class_set, chance=1 / len(benchmark.classnames))
    return metrics


def _report(metrics, out, evaluation_seconds):
    """Print how long the run took, how far the loss fell, what it scores and where it is."""
    steps, seconds, losses = metrics["steps_this_session"], metrics["train_seconds"], \
        metrics["loss_history"]
    print(f"trained {steps} step{'s' * (steps != 1)} in {seconds:.1f} s "
          f"({seconds / max(steps, 1):.3f} s/step), evaluated in {evaluation_seconds:.1f} s; "
          f"{metrics['run_seconds']:.1f} s in all")
    if losses:
        window = min(LOSS_WINDOW, max(len(losses) // 2, 1))
        print(f"loss {np.mean(losses[:window]):.2f} → {np.mean(losses[-window:]):.2f} "
              f"(mean of the first and last {window} steps)")
    temperature = metrics["temperature"]
    print(f"temperature {np.exp(-LOGIT_SCALE_INIT):.3f} → {temperature:.3f} "
          f"(logit scale {1 / temperature:.1f})")
    if "zeroshot_top1_seen" in metrics:
        print(f"zero-shot top-1 over {metrics['class_set']}:\n  {_seen_unseen(metrics)} "
              f"(chance {metrics['chance']:.1%}; before training "
              f"{_seen_unseen(metrics['zeroshot_before_training'])})")
        print("  shifted pictures: " + ", ".join(
            f"{shift} {metrics[f'zeroshot_top1_{shift}']:.1%}"
            for shift in ("outline", "noise", "background")))
        print(f"retrieval R@1/R@5: image->text {metrics['i2t_R@1']:.1%}/{metrics['i2t_R@5']:.1%},"
              f" text->image {metrics['t2i_R@1']:.1%}/{metrics['t2i_R@5']:.1%}; "
              f"linear probe top-1 {metrics['linear_probe_top1']:.1%}")
    checkpoint = metrics["checkpoint"]
    print(f"results: {os.path.join(out, METRICS)}, {CURVES_PLOT}"
          + (f", {SIMILARITY_PLOT}, {PREDICTIONS_PLOT}" if "zeroshot_top1_seen" in metrics else ""))
    print(f"checkpoint: {checkpoint} (step {metrics['steps']}); load it with\n"
          f"  model, preprocess = miniclip.load({checkpoint!r})\n"
          f"or evaluate it: python -m miniclip.evaluation classify DIR --weights {checkpoint}")


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


def _data(args, image_size, collate):
    """The training batches, and the :class:`ShapesBenchmark` to evaluate on (None for a
    folder of real images: it has no class names; ``python -m miniclip.evaluation`` scores
    such a run).

    The synthetic sets are small, so they are drawn, preprocessed and tokenized once
    (``ArrayDataset.prepare``); a folder of real images is read batch by batch.
    """
    if args.data:
        if not os.path.isdir(args.data):
            raise RunError(f"--data {args.data}: no such folder")
        train_set = ImageTextFolder(args.data, args.captions, seed=args.seed,
                                    random_crop=None if args.no_augment else image_size)
        if len(train_set) < args.batch_size:
            raise RunError(f"--data {args.data} holds {len(train_set)} image-caption pairs, "
                           f"fewer than one batch: lower --batch-size (now {args.batch_size})")
        loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                            drop_last=True, collate=collate, prefetch=args.prefetch)
        return loader, None
    if args.train_size < args.batch_size:
        raise RunError(f"--train-size {args.train_size} is smaller than --batch-size "
                       f"{args.batch_size}; raise it or lower --batch-size")
    images, tokens = ArrayDataset.prepare(
        SyntheticShapes(args.train_size, image_size, split="train", seed=args.seed,
                        captions="varied"), collate).arrays
    train_set = ArrayDataset(images, trim_padding(tokens))
    loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed,
                        drop_last=True, collate=stack_fields)
    benchmark = ShapesBenchmark(image_size, collate, args.eval_size,
                                max(args.eval_size // 3, 1), seed=args.seed)
    return loader, benchmark


def _resume(args, model, optimizer, scaler, run):
    """Load ``args.out``'s checkpoint into the objects and its schedule into ``args``
    (``steps`` and ``warmup``, unless given: a longer ``--steps`` stretches the cosine
    but keeps the warm-up done); returns ``(step, history)``."""
    path = os.path.join(args.out, CHECKPOINT)
    state = load_training_state(path, model, optimizer, scaler)
    saved, step = state["extra"] or {}, state["step"]
    changed = [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in run.items()
               if saved.get(key) != value]
    if changed:
        raise RunError(f"--resume: {path} was trained with other settings "
                       f"({', '.join(changed)}); resume with the same ones, or start afresh "
                       "in another --out folder")
    schedule = saved["schedule"]
    if args.steps is None:
        args.steps = schedule["steps"]
    if args.steps < step:
        raise RunError(f"--resume: {path} has already trained {step} steps; pass --steps "
                       f"{step} or more (or leave it out to finish the saved schedule of "
                       f"{schedule['steps']} steps)")
    if args.warmup is not None and args.warmup != schedule["warmup"]:
        raise RunError(f"--resume: the run warms up over {schedule['warmup']} steps; "
                       "leave --warmup out (changing it mid-run would jump the learning rate)")
    args.warmup = schedule["warmup"]
    return step, saved["history"]


if __name__ == "__main__":
    sys.exit(main())

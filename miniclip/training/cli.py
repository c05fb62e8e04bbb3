"""The command line of ``python -m miniclip.train``: train a CLIP from scratch, or fine-tune
one from weights (``--init-from``, optionally with a tower locked: ``--lock-image`` is LiT).

The tiny run trains the ``tiny-vit`` preset (``--tower rn``: ``tiny-rn``) on
:class:`~miniclip.data.SyntheticShapes` — pictures of coloured shapes with captions such as
"a photo of a small red circle on the left." or "there is a square that is green." — on
the CPU in a minute or two, then measures what it learned (``evaluation/shapes.py``):
zero-shot accuracy over all 30 colour–shape classes, separately on the combinations it was
trained on and on six it never saw pictured or named (``data.synthetic.HELD_OUT``), on
shifted pictures (outlines, heavy noise, striped backgrounds), retrieval Recall@K and a
linear probe. The recipe is the paper's, scaled down:

* the symmetric contrastive loss over the batch (``training/loss.py``, ``clip_loss``), or
  with ``--loss siglip`` SigLIP's pairwise sigmoid loss and its learned bias
  (``training/siglip.py``);
* AdamW with the paper's β and ε for the image tower and weight decay 0.2 on weights but
  not on gains and biases (``training/recipe.py``, ``paper_optimizer``);
* linear warm-up, then cosine decay of the learning rate (``optim.WarmupCosine``);
* the learned temperature, clipped so the logit scale never exceeds 100
  (``clamp_logit_scale_`` after every step);
* gradient-norm clipping, and optionally mixed precision (``--amp``, see ``optim/amp.py``).

One training step (``training/step.py``, the one every caller takes)::

    logits_per_image, logits_per_text = model(images, tokens)   # [N, N] each
    loss = clip_loss(logits_per_image, logits_per_text)
    scaler.scale(loss).backward()          # the scaler is disabled (S = 1) without --amp
    check_finite(model, step, loss)        # stop, naming the step, on an inf/NaN
    scaler.unscale_(optimizer)
    clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer); scaler.update(); optimizer.zero_grad()
    clamp_logit_scale_(model)

Every run writes a folder (``--out DIR``, by default ``runs/<date>-<time>``):
``checkpoint.npz`` (model, optimiser, loss scaler, step, schedule and history; every
``--save-every`` steps and at the end, atomically, loadable with ``miniclip.load``),
``metrics.json`` and PNG plots (``training/plots.py``). ``--resume`` continues a run
exactly where it stopped: the data stream, the schedule and the optimiser pick up at the
saved step. Ctrl-C finishes the current step, saves, and says how to resume. ``--data DIR``
trains on a folder of images with a captions file instead; evaluate such a run with
``python -m miniclip.evaluation``.

The run itself is ``run.py`` (progress and Ctrl-C: ``progress.py``; the run folder's
checks: ``resume.py``; the report: ``report.py``); this file parses the command line into a
``RunConfig`` (``config.py``) and ends the program as every program does
(``miniclip/system/program.py``): problems the user can fix end with one ``error:`` line
naming the fix and exit code 2, other failures with exit code 1 (``--debug`` shows the
traceback), Ctrl-C with 130 after saying how to resume.
"""
import argparse
import functools
import os
import shlex
import sys
import textwrap

from ..data.synthetic import SHIFTS
from ..system.memory import reuse_freed_memory
from ..system.program import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, print_error, run_program
from ..system.threads import limit_blas_threads
from .config import (
    CHECKPOINT,
    CURVES_PLOT,
    DEFAULT_BATCH,
    DEFAULT_STEPS,
    DEFAULT_TRAIN_SIZE,
    LOSSES,
    PREDICTIONS_PLOT,
    SIMILARITY_PLOT,
    TINY_MODELS,
    RunConfig,
)
from .finetune import FINE_TUNING
from .progress import Interrupted
from .recipe import TOWER_ADAM
from .run import train
from .state import NonFiniteError

PROG = "python -m miniclip.train"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a CLIP from scratch. --tiny trains a tiny CLIP on synthetic shapes\n"
                    "on the CPU in a minute or two, then writes its metrics and plots;\n"
                    "--init-from WEIGHTS fine-tunes trained weights instead.",
        epilog="examples:\n"
               "  python -m miniclip.train --tiny                       # ViT tower, CPU\n"
               "  python -m miniclip.train --tiny --tower rn --steps 200\n"
               "  python -m miniclip.train --tiny --out runs/a          # name the run folder\n"
               "  python -m miniclip.train --tiny --out runs/a --resume # pick up where it stopped\n"
               "  python -m miniclip.train --tiny --device cuda --amp   # GPU, mixed precision\n"
               "  python -m miniclip.train --tiny --init-from runs/a/checkpoint.npz "
               "--train-shift background\n"
               "  python -m miniclip.train --init-from ViT-B/32 --data photos/ --lock-image  # LiT\n"
               "  python -m miniclip.train --tiny --loss siglip         # SigLIP's sigmoid loss\n"
               "\n"
               "A run folder holds checkpoint.npz (miniclip.load reads it), metrics.json,\n"
               f"{CURVES_PLOT}, {SIMILARITY_PLOT} and {PREDICTIONS_PLOT}.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tiny", action="store_true",
                       help="train the tiny teaching preset of --tower on synthetic shapes "
                            "(with --init-from: fine-tune those weights on them)")
    which.add_argument("--model", metavar="NAME",
                       help="train this configuration instead (a name from "
                            "miniclip.models.available_configs())")
    add = parser.add_argument
    add("--tower", choices=sorted(TINY_MODELS), default=None,
        help="image tower of the --tiny model: vit (default) or rn (ResNet)")
    add_fine_tuning_arguments(parser)
    add("--steps", metavar="N", type=int, default=None,
        help=f"optimiser steps in all (default {DEFAULT_STEPS['vit']} for vit, "
             f"{DEFAULT_STEPS['rn']} for rn; with --resume, the saved run's)")
    add("--batch-size", metavar="N", type=int, default=None,
        help=f"pairs per batch (default {DEFAULT_BATCH['vit']} for vit, {DEFAULT_BATCH['rn']} "
             "for rn)")
    add("--lr", metavar="LR", type=float, default=None,
        help="peak learning rate (default 1e-3; --init-from: see fine-tuning)")
    add("--warmup", metavar="N", type=int, default=None,
        help="warm-up steps (default: 10%% of --steps; with --resume, the saved run's)")
    add("--weight-decay", metavar="WD", type=float, default=None,
        help="AdamW weight decay of the weight matrices (default 0.2, the paper's; "
             "--init-from: see fine-tuning)")
    add("--grad-clip", metavar="NORM", type=float, default=1.0,
        help="clip the global gradient norm to this (default 1.0; 0 turns it off)")
    add("--loss", choices=LOSSES, default="clip",
        help="clip: the paper's softmax contrastive loss (default); siglip: SigLIP's pairwise "
             "sigmoid loss with its learned bias (training/siglip.py)")
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
             "'filename,caption' and a row per caption, several per image allowed (tutorials/"
             "training.md: your own images)")
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
    check_fine_tuning_arguments(parser, args)
    tuned = bool(args.init_from)
    if args.lr is None:
        args.lr = FINE_TUNING["lr"] if tuned else 1e-3
    if args.weight_decay is None:
        args.weight_decay = FINE_TUNING["weight_decay"] if tuned else 0.2
    tower = args.tower or "vit"
    if not tuned:  # --init-from keeps None: weights bring their tower, a given one is checked
        args.tower = tower
    if args.resume and not args.out:
        parser.error("--resume needs --out (the run folder holding the checkpoint)")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --out and --overwrite replaces it: "
                     "choose one")
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH[tower]
    if (args.steps is not None and args.steps < 1) or args.batch_size < 2:
        parser.error("--steps must be >= 1 and --batch-size >= 2 (a contrastive batch needs "
                     "at least one mismatched pair)")
    if args.loss == "siglip" and args.distributed:
        parser.error("--loss siglip trains on one process; leave out --distributed (the "
                     "data-parallel loss is CLIP's, gathered over the ranks)")
    if not args.resume:  # a resumed run takes its schedule from the checkpoint
        if args.steps is None:
            args.steps = FINE_TUNING["steps"] if tuned else DEFAULT_STEPS[tower]
        if args.warmup is None:
            args.warmup = (int(args.steps * FINE_TUNING["warmup_fraction"]) if tuned
                           else args.steps // 10)
    return args


def add_fine_tuning_arguments(parser):
    """The options of fine-tuning from weights and of locking towers, in their own group
    whose description states the fine-tuning defaults."""
    group = parser.add_argument_group("fine-tuning", textwrap.fill(
        f"--init-from starts from weights, with defaults for a pretrained model: peak --lr "
        f"{FINE_TUNING['lr']:g} (not 1e-3), --warmup {FINE_TUNING['warmup_fraction']:.0%} of "
        f"--steps (not 10%), --weight-decay {FINE_TUNING['weight_decay']:g} (not 0.2), "
        f"--steps {FINE_TUNING['steps']}; Adam's betas and eps are the paper's for the image "
        "tower (" + "; ".join(f"{tower} {adam['betas'][0]:g}, {adam['betas'][1]:g}, "
                              f"{adam['eps']:g}" for tower, adam in TOWER_ADAM.items())
        + "). The run folder records them, the source and its SHA-256.", 79))
    add = group.add_argument
    add("--init-from", metavar="WEIGHTS",
        help="start from these weights: a released name (ViT-B/32), a .pt, .npz or "
             ".safetensors file, a Hugging Face folder or a run's checkpoint.npz; the "
             "architecture is theirs (no --model needed)")
    add("--tokenizer", metavar="FILE",
        help="--init-from: OpenAI's merges file (or a Hugging Face folder) for weights of "
             "OpenAI's vocabulary, if no clip/open_clip package provides it")
    add("--lock-image", action="store_true",
        help="freeze the image tower (LiT: train the text tower to read it); a ResNet's "
             "batch norms stay in evaluation mode")
    add("--lock-text", action="store_true", help="freeze the text tower")
    add("--train-shift", choices=SHIFTS,
        help="--tiny: draw the training pictures shifted, like the shifted test set of that "
             "name (to fine-tune on a distribution the zero-shot model handles badly)")


def check_fine_tuning_arguments(parser, args):
    """Refuse, naming the fix, the combinations that cannot be meant."""
    if not (args.tiny or args.model or args.init_from):
        parser.error("say what to train: --tiny, --model NAME or --init-from WEIGHTS")
    if args.init_from and not (args.tiny or args.data):
        parser.error("--init-from needs training data: --data DIR, or --tiny for the "
                     "synthetic shapes")
    if args.tokenizer and not args.init_from:
        parser.error("--tokenizer is for --init-from weights of OpenAI's vocabulary")
    if args.lock_image and args.lock_text:
        parser.error("--lock-image --lock-text together would train only the temperature; "
                     "lock one tower (--lock-image is LiT)")
    if args.train_shift and args.data:
        parser.error("--train-shift draws synthetic pictures; it does not apply to --data")


def main(argv=None):
    """Run ``python -m miniclip.train`` with the arguments ``argv``; returns the exit code.

    0 when the run finished; 1 if it stopped on an inf/NaN (naming the step; the last
    checkpoint is kept) or failed unexpectedly; 2 for a problem with the inputs that the
    ``error:`` line says how to fix; 130 after Ctrl-C. ``--debug`` lets errors raise.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run_program(PROG, functools.partial(run, argv, RunConfig.from_args(args)),
                       args.debug)


def run(argv, config):
    """The run of ``config`` (the command line ``argv``), on one process or as one rank."""
    print(reuse_freed_memory())
    try:
        if config.distributed:  # an error on any rank ends the whole job (distributed/launch.py)
            from ..distributed.launch import run as run_rank
            run_rank(train, config)  # which sets the BLAS threads, once it knows the ranks
        else:
            print(limit_blas_threads(config.threads))
            train(config)
    except NonFiniteError as error:
        print_error(PROG, f"training stopped: {error}\nThe last checkpoint (if any) is "
                          "unchanged. A lower --lr, a longer --warmup or --grad-clip usually "
                          "cures a diverging run.")
        return EXIT_FAILED
    except (Interrupted, KeyboardInterrupt) as stop:
        saved = os.path.join(config.out, CHECKPOINT)
        if isinstance(stop, Interrupted):
            what = f"stopped after step {stop.step}, saved in {saved}"
        elif os.path.exists(saved):
            what = f"stopped; the last checkpoint ({saved}) is kept"
        else:
            print("interrupted before the first checkpoint; nothing to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"interrupted: {what}. Continue with:\n  "
              f"{resume_command(argv, config.out)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def resume_command(argv, out):
    """The command line that continues the run of ``argv`` saved in ``out``."""
    kept = [a for a in argv if a not in ("--resume", "--overwrite")]
    if "--out" not in kept and not any(a.startswith("--out=") for a in kept):
        kept += ["--out", out]
    return " ".join([PROG] + [shlex.quote(a) for a in kept] + ["--resume"])

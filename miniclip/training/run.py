"""A training run from start to end: ``train(config)``, the body of ``python -m miniclip.train``.

It builds the model, the data and the paper's optimiser, resumes from the run folder's
checkpoint if told to, takes ``config.steps`` steps of ``step.train_step`` (saving every
``save_every`` steps and when Ctrl-C asks it to stop), and at the end evaluates, plots,
writes ``metrics.json`` and prints the report (``report.py``). As one rank of a
data-parallel run (``world``) every rank trains and only rank 0 evaluates, writes and
reports.
"""
import dataclasses
import functools
import json
import os
import time

import numpy as np

from .. import nn
from ..data import (
    ArrayDataset,
    CLIPCollate,
    DataLoader,
    ImageTextFolder,
    SyntheticShapes,
    stack_fields,
)
from ..data.preprocess import transform
from ..evaluation.shapes import ShapesBenchmark
from ..models import create_model, flops, trim_padding
from ..optim import GradScaler, WarmupCosine
from ..system.blas import blas_description, matmul_peak_flops
from ..system.files import atomic_write
from ..system.program import UsageError
from . import plots
from .config import CHECKPOINT, CURVES_PLOT, METRICS
from .finetune import check_model_options, load_trainable, training_tokenizer
from .locking import TOWERS, lock_tower, tower_parameters
from .progress import Interrupted, Progress, StopRequest, Throughput
from .recipe import paper_optimizer
from .report import evaluate_and_plot, print_report, seen_unseen, temperature
from .resume import check_run_folder, resume, run_settings
from .siglip import SigmoidLoss, init_siglip_scale_, sigmoid_contrastive_loss
from .state import save_training_state
from .step import train_step

#: The temperature is read (a device read on a GPU) and the progress shown every this-many steps.
SHOW_EVERY = 10


def train(config, world=None):
    """The training run ``config`` describes (a ``RunConfig``), as one rank of ``world``
    when given (a data-parallel run, ``miniclip/distributed/``); returns its metrics, the
    dict written to ``metrics.json``."""
    started = time.perf_counter()
    name = config.model
    writer = world is None or world.rank == 0  # the one process that evaluates, writes, reports
    if writer:
        check_run_folder(config)
    nn.manual_seed(config.seed)
    model, name, tokenize, adaptation = initial_model(config)
    print(f"{name}: {model.num_parameters():,} parameters, on {config.device}"
          + (", mixed precision" if config.amp else "") + f"; run folder {config.out}")
    if config.amp and model.logit_scale.device.name == "cpu":
        print("note: --amp is for GPUs. NumPy has no fast float16 matrix product, so on the CPU "
              "mixed precision is about 100x slower than float32.")
    collate = (CLIPCollate(transform(model.input_resolution), tokenize) if tokenize else
               CLIPCollate.for_model(model.input_resolution, model.context_length))
    loader, benchmark = training_data(config, model.input_resolution, collate)
    step_options = {}  # train_step's loss and gradient reduction, where not the defaults
    if world is not None:  # each rank: rank 0's weights, its rows of each batch, the same step
        from ..distributed import broadcast_parameters, data_parallel, shard
        broadcast_parameters(world, model)
        loader, step_options = shard(loader, world), data_parallel(world)
        benchmark = benchmark if writer else None
    # SigLIP's learned bias trains with the model but is not part of it (a CLIP checkpoint
    # has no place for it): it rides in the run's history, for resuming.
    sigmoid = None
    if config.loss == "siglip":
        init_siglip_scale_(model)
        sigmoid = SigmoidLoss().to(config.device)
        step_options["loss"] = functools.partial(sigmoid_contrastive_loss, sigmoid)
    optimizer = paper_optimizer(model if sigmoid is None else nn.ModuleList([model, sigmoid]),
                                config.lr, model.vision_kind, weight_decay=config.weight_decay)
    scaler = GradScaler(enabled=config.amp)
    if config.init_from:  # the fine-tuning settings the run folder records
        adaptation["adam"] = {"betas": list(optimizer.param_groups[0]["betas"]),
                              "eps": optimizer.param_groups[0]["eps"]}
    settings = run_settings(dataclasses.replace(config, model=name),
                            1 if world is None else world.size, adaptation)

    if config.resume:
        config, start, history = resume(config, model, optimizer, scaler, settings)
        if sigmoid is not None:
            sigmoid.logit_bias.data[...] = history["logit_bias"]
    else:
        start = 0
        # losses: one per step; temperatures: (step, τ) every SHOW_EVERY steps;
        # evaluations: zero-shot scores every --eval-every steps; seconds: of all sessions
        history = {"losses": [], "temperatures": [], "evaluations": [], "seconds": 0.0,
                   "before": benchmark.zero_shot(model) if benchmark else None}
    schedule = WarmupCosine(optimizer, config.warmup, config.steps)
    if writer:
        os.makedirs(config.out, exist_ok=True)
    checkpoint = os.path.join(config.out, CHECKPOINT)

    def save(step):
        if not writer:
            return
        if sigmoid is not None:
            history["logit_bias"] = sigmoid.logit_bias.item()
        save_training_state(checkpoint, model, optimizer, step, scaler,
                            extra=dict(settings, history=history,
                                       schedule={"steps": config.steps, "warmup": config.warmup}))

    print(f"training steps {start + 1}..{config.steps}, batch {config.batch_size}, "
          f"peak lr {config.lr:g} after {config.warmup} warm-up steps")
    began = time.perf_counter()
    batches = loader.batches(start_step=start)
    progress = Progress(name, start, config.steps, config.log_every, config.quiet)
    throughput = Throughput(matmul_peak_flops())
    with StopRequest() as stop:
        for step in range(start, config.steps):
            lr = schedule(step)
            images, tokens = next(batches)
            loss = train_step(model, optimizer, scaler, images, tokens, step + 1, config.device,
                              config.grad_clip, **step_options)
            throughput.count(images.shape[0], flops.training_step_flops(
                model.config, images.shape[0], flops.text_positions(tokens)))
            history["losses"].append(loss if world is None else world.mean(loss))
            done = step + 1
            if done % SHOW_EVERY == 0 or done == config.steps or progress.due(done):
                history["temperatures"].append((done, temperature(model)))
                progress.show(done, loss=np.mean(history["losses"][-SHOW_EVERY:]),
                              temp=history["temperatures"][-1][1], lr=lr,
                              rate=throughput.recent())
            if benchmark and config.eval_every and done % config.eval_every == 0:
                history["evaluations"].append(dict(step=done, **benchmark.zero_shot(model)))
                progress.write(f"step {done}: zero-shot top-1 " + seen_unseen(
                    history["evaluations"][-1]))
            if done % config.save_every == 0 or stop.requested:
                history["seconds"] += time.perf_counter() - began
                began = time.perf_counter()
                save(done)
            if stop.requested:
                progress.close()
                raise Interrupted(done)
    progress.close()
    efficiency = throughput.total()  # of the steps alone, before saving and evaluating
    history["seconds"] += time.perf_counter() - began
    save(config.steps)
    if not writer:
        return {"model": name, "steps": config.steps}

    metrics = {**settings, "steps": config.steps, "steps_this_session": config.steps - start,
               "warmup": config.warmup,
               "train_seconds": history["seconds"], "checkpoint": checkpoint,
               "temperature": temperature(model), "blas": blas_description(),
               **efficiency}
    if sigmoid is not None:
        metrics["logit_bias"] = sigmoid.logit_bias.item()
    if benchmark:
        metrics.update(evaluate_and_plot(model, benchmark, config.out))
        metrics["zeroshot_before_training"] = history["before"]
    metrics.update(loss_history=history["losses"], temperature_history=history["temperatures"],
                   evaluations=history["evaluations"])
    plots.plot_training_curves(os.path.join(config.out, CURVES_PLOT), history["losses"],
                               history["temperatures"], history["evaluations"],
                               config.batch_size)
    # everything of this session but importing: data, training, evaluation, plots
    metrics["run_seconds"] = time.perf_counter() - started
    with atomic_write(os.path.join(config.out, METRICS)) as file:
        file.write(json.dumps(metrics, indent=1).encode())
    print_report(metrics, config.out, time.perf_counter() - began)
    return metrics


def initial_model(config):
    """``(model, name, tokenize, adaptation)``: the model to train, in training mode on its
    device, with its towers locked as ``config`` asks; the name of its configuration; the
    tokenizer its weights need (None: miniclip's, which ``CLIPCollate.for_model`` uses);
    and how the run began, which a resumed run must share (``resume.ADAPTATION``: the
    ``--init-from`` source and its SHA-256, the locked towers, the training pictures' shift;
    each only when the run has it, so a run from scratch records what it always did)."""
    locked = [tower for tower in TOWERS if getattr(config, f"lock_{tower}")]
    adaptation = {"locked": locked} if locked else {}
    if config.train_shift:
        adaptation["train_shift"] = config.train_shift
    name, tokenize = config.model, None
    if config.init_from:
        initial = load_trainable(config.init_from)
        check_model_options(initial, config.model, config.tower)
        tokenize, vocabulary = training_tokenizer(initial, config.tokenizer)
        model, name = initial.model.to(config.device), initial.name
        adaptation.update(init_from=initial.source, init_from_sha256=initial.sha256)
        print(f"starting from {initial.path} (SHA-256 {initial.sha256[:12]}...); "
              f"tokenizer: {vocabulary}")
    else:
        model = create_model(config.model).to(config.device).train()
    for tower in locked:
        locked = lock_tower(model, tower)
        weights = sum(p.size for _, p in tower_parameters(model, tower))
        print(f"locked the {tower} tower ({len(locked)} tensors, {weights:,} weights): it gets "
              "no gradients and no updates")
    return model, name, tokenize, adaptation


def training_data(config, image_size, collate):
    """The training batches, and the :class:`ShapesBenchmark` to evaluate on (None for a
    folder of real images: it has no class names; ``python -m miniclip.evaluation`` scores
    such a run).

    The synthetic sets are small, so they are drawn, preprocessed and tokenized once
    (``ArrayDataset.prepare``), and their tokens trimmed of the padding no caption reaches
    (``models.trim_padding``); a folder of real images is read batch by batch.
    """
    if config.data:
        if not os.path.isdir(config.data):
            raise UsageError(f"--data {config.data}: no such folder")
        train_set = ImageTextFolder(config.data, config.captions, seed=config.seed,
                                    random_crop=image_size if config.augment else None)
        if len(train_set) < config.batch_size:
            raise UsageError(f"--data {config.data} holds {len(train_set)} image-caption "
                             f"pairs, fewer than one batch: lower --batch-size (now "
                             f"{config.batch_size})")
        loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                            drop_last=True, collate=collate, prefetch=config.prefetch)
        return loader, None
    if config.train_size < config.batch_size:
        raise UsageError(f"--train-size {config.train_size} is smaller than --batch-size "
                         f"{config.batch_size}; raise it or lower --batch-size")
    images, tokens = ArrayDataset.prepare(
        SyntheticShapes(config.train_size, image_size, split="train", seed=config.seed,
                        captions="varied", shift=config.train_shift), collate).arrays
    train_set = ArrayDataset(images, trim_padding(tokens))
    loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                        drop_last=True, collate=stack_fields)
    benchmark = ShapesBenchmark(image_size, collate, config.eval_size,
                                max(config.eval_size // 3, 1), seed=config.seed)
    return loader, benchmark


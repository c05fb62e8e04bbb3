"""The end of a run: its evaluation plots, and the report it prints.

The report says how long the run took, how far the loss fell, what the temperature
became, what the model scores, and where its checkpoint, metrics and plots are, with the
commands that load and evaluate it.
"""
import os

import numpy as np

from . import plots
from .config import CURVES_PLOT, METRICS, PREDICTIONS_PLOT, SIMILARITY_PLOT
from .loss import LOGIT_SCALE_INIT
from .siglip import SIGLIP_LOGIT_SCALE_INIT

#: How many steps at each end of the run the "loss a -> b" summary averages.
LOSS_WINDOW = 20


def temperature(model):
    """The learned temperature τ = 1 / exp(logit_scale)."""
    return float(np.exp(-model.logit_scale.item()))


def seen_unseen(scores):
    return (f"seen pairs {scores['zeroshot_top1_seen']:.1%}, "
            f"held-out pairs {scores['zeroshot_top1_unseen']:.1%}")


def evaluate_and_plot(model, benchmark, out):
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


def print_report(metrics, out, evaluation_seconds):
    """Print how long the run took, how far the loss fell, what it scores and where it is."""
    steps, seconds, losses = metrics["steps_this_session"], metrics["train_seconds"], \
        metrics["loss_history"]
    print(f"trained {steps} step{'s' * (steps != 1)} in {seconds:.1f} s "
          f"({seconds / max(steps, 1):.3f} s/step), evaluated in {evaluation_seconds:.1f} s; "
          f"{metrics['run_seconds']:.1f} s in all")
    if "images_per_second" in metrics:
        print(f"{metrics['images_per_second']:.0f} images/s, model FLOP utilisation "
              f"{metrics['model_flop_utilization']:.0%} of the float32 matmul peak "
              f"{metrics['matmul_peak_flops'] / 1e9:.0f} GFLOP/s ({metrics['blas']})")
    if losses:
        window = min(LOSS_WINDOW, max(len(losses) // 2, 1))
        print(f"loss {np.mean(losses[:window]):.2f} → {np.mean(losses[-window:]):.2f} "
              f"(mean of the first and last {window} steps)")
    temperature = metrics["temperature"]
    start = SIGLIP_LOGIT_SCALE_INIT if metrics.get("loss") == "siglip" else LOGIT_SCALE_INIT
    print(f"temperature {np.exp(-start):.3f} → {temperature:.3f} "
          f"(logit scale {1 / temperature:.1f})")
    if "zeroshot_top1_seen" in metrics:
        print(f"zero-shot top-1 over {metrics['class_set']}:\n  {seen_unseen(metrics)} "
              f"(chance {metrics['chance']:.1%}; before training "
              f"{seen_unseen(metrics['zeroshot_before_training'])})")
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

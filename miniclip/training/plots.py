"""The PNG figures a training run writes next to its ``metrics.json``.

Drawn with matplotlib's object interface on the Agg canvas (``Figure`` +
``FigureCanvasAgg``), not ``pyplot``: nothing here chooses a global backend or opens a
window, so the same functions work in a terminal without a display and leave a notebook's
inline backend alone.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..system.files import atomic_write


def save_figure(figure, path):
    """Write ``figure`` as a PNG. (Its layout is set by hand: ``tight_layout`` would measure
    every label and take longer than the drawing itself.)"""
    FigureCanvasAgg(figure)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)


def plot_training_curves(path, losses, temperatures, evaluations=(), batch_size=None):
    """Loss per step (and its 20-step mean), the temperature τ and, if any,
    the zero-shot accuracies measured during training.

    ``losses``: one per step from step 1; ``temperatures``: ``[(step, τ), ...]``;
    ``evaluations``: ``[{"step": s, "zeroshot_top1_seen": a, "zeroshot_top1_unseen": b}, ...]``.
    """
    panels = 3 if evaluations else 2
    figure = Figure(figsize=(5 * panels, 3.6))
    axes = figure.subplots(1, panels, gridspec_kw=dict(left=0.2 / panels, right=0.98, bottom=0.14,
                                                       top=0.91, wspace=0.3))
    steps = np.arange(1, len(losses) + 1)
    axes[0].plot(steps, losses, alpha=0.35, label="per batch")
    if len(losses) >= 20:
        axes[0].plot(steps[19:], np.convolve(losses, np.ones(20) / 20, mode="valid"),
                     label="mean of 20")
    if batch_size:
        axes[0].axhline(np.log(batch_size), color="grey", ls=":", label=f"ln {batch_size} (chance)")
    axes[0].set(xlabel="step", ylabel="contrastive loss", title="loss")
    axes[0].legend()
    if temperatures:
        at, values = zip(*temperatures)
        axes[1].plot(at, values)
    axes[1].set(xlabel="step", ylabel="τ = 1 / exp(logit_scale)", title="temperature")
    if evaluations:
        at = [e["step"] for e in evaluations]
        for key, label in (("zeroshot_top1_seen", "seen pairs"),
                           ("zeroshot_top1_unseen", "held-out pairs")):
            axes[2].plot(at, [e[key] for e in evaluations], marker="o", label=label)
        axes[2].set(xlabel="step", ylabel="zero-shot top-1", title="zero-shot accuracy",
                    ylim=(0, 1))
        axes[2].legend()
    save_figure(figure, path)


def plot_similarity(path, similarity, images, captions):
    """The cosine similarities ``similarity [n, n]`` of ``n`` pictures (columns, each drawn
    above its column; ``images`` are ``[H, W, 3]`` arrays or PIL images) with their own
    captions (rows): after training, the diagonal lights up."""
    count = len(captions)
    figure = Figure(figsize=(3 + 0.7 * count, 1.2 + 0.6 * count))
    ax = figure.subplots(gridspec_kw=dict(left=0.3, right=0.9, bottom=0.03, top=0.92))
    shown = ax.imshow(np.asarray(similarity).T, cmap="viridis")
    for j, image in enumerate(images):
        ax.imshow(image, extent=(j - 0.45, j + 0.45, -0.6, -1.5))
    ax.set_xlim(-0.5, count - 0.5)
    ax.set_ylim(count - 0.5, -1.6)
    ax.set_yticks(range(count))
    ax.set_yticklabels(captions, fontsize=8)
    ax.set_xticks([])
    ax.set_title("image-text cosine similarity (row: caption, column: picture)")
    figure.colorbar(shown, ax=ax, fraction=0.03)
    save_figure(figure, path)


def plot_predictions(path, images, probabilities, labels, classnames, unseen_classes,
                     columns=8):
    """A grid of pictures, each titled with its top-3 zero-shot classes and probabilities,
    green when the first is right and red when not; held-out classes are starred.

    ``images``: ``n`` pictures; ``probabilities [n, K]``; ``labels [n]`` class indices.
    """
    unseen = set(int(k) for k in unseen_classes)
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(2.0 * columns, 2.4 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, gridspec_kw=dict(
        left=0.01, right=0.99, bottom=0.01, top=0.78, hspace=0.9, wspace=0.15))).ravel()

    def name(k):
        return classnames[k] + ("*" if k in unseen else "")

    for ax, image, row, label in zip(axes, images, probabilities, labels):
        ax.imshow(image)
        best = np.argsort(-row)[:3]
        lines = [f"{row[k]:.0%} {name(k)}" for k in best]
        ax.set_title("\n".join([f"true: {name(int(label))}"] + lines), fontsize=7.5, loc="left",
                     color="green" if best[0] == label else "red")
    for ax in axes:
        ax.axis("off")
    figure.suptitle("top-3 zero-shot classes of test pictures (* = held out of training)",
                    fontsize=10)
    save_figure(figure, path)


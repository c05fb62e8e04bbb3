"""``objectives``: which training objective learns zero-shot classification fastest (the
paper's Figure 2), and softmax against sigmoid across batch sizes (SigLIP's claim).

**Figure 2.** Five objectives train the same image tower on the same pictures with the same
recipe, steps and batch size (``objectives.py``); each run measures zero-shot top-1 (one
prompt template, "a photo of a {}.") four times along the way, on the pictures of seen and
of held-out colour-shape pairs. The paper found the bag-of-words contrastive objective 4x as
efficient as bag-of-words prediction, itself 3x as efficient as a transformer captioning LM.
We measure efficiency as the paper reads it off its figure: how many fewer images the
stronger objective needs to reach the weaker one's final accuracy
(:func:`efficiency`).

**Softmax against sigmoid.** CLIP and SigLIP (with the paper's bias init, and with one
scaled to the batch: ``objectives.py``) at each batch size of ``scale.sweep_batches``, for
the same number of steps: SigLIP's claim is that its sigmoid loss beats the softmax at
small batches.
"""
import numpy as np

from .context import clock, mean_and_spread
from .figures import errorbar_line, new_figure, save
from .objectives import OBJECTIVES

#: Figure 2's objectives (plus CLIP's own transformer text tower, and SigLIP), in its order.
FIGURE2 = ("captioning", "bow-prediction", "bow-contrastive", "clip", "siglip")

#: The softmax-against-sigmoid comparison across batch sizes, and its legend.
SWEEP = {"clip": "softmax (CLIP)", "siglip": "sigmoid (SigLIP, b0 = -10)",
         "siglip-log-n": "sigmoid (b0 = -log n)"}

#: The paper's efficiency claims: (stronger, weaker, factor).
CLAIMS = (("bow-contrastive", "bow-prediction", 4.0), ("bow-prediction", "captioning", 3.0))

METRICS = {"seen": "zeroshot_top1_seen", "held-out": "zeroshot_top1_unseen"}


def curve(records, metric):
    """``(images seen [P], accuracies [seeds, P])`` of one objective's runs."""
    images = [e["images_seen"] for e in records[0]["evaluations"]]
    return np.array(images), np.array([[e[metric] for e in r["evaluations"]] for r in records])


def images_to_reach(images, accuracies, target, chance):
    """Images seen at which the mean curve first reaches ``target``, interpolated linearly
    from ``(0, chance)`` through the measured points; None if it never does."""
    x = np.concatenate([[0], images])
    y = np.concatenate([[chance], np.mean(accuracies, axis=0)])
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
    return None


def efficiency(stronger, weaker, chance):
    """How many times fewer images the ``stronger`` curve needs to reach the ``weaker``
    curve's final mean accuracy (each a ``(images, accuracies)`` pair): a float; None if it
    never does (it is not the stronger); ``">=F"`` if it does by its first measurement,
    F = last / first images seen being all the curves can resolve; ``"weaker at chance"``
    when there is nothing to reach."""
    images, accuracies = weaker
    target = np.mean(accuracies[:, -1])
    if target <= chance:
        return "weaker at chance"
    needed = images_to_reach(*stronger, target, chance)
    if needed is None:
        return None
    if needed <= stronger[0][0]:
        return f">={images[-1] / stronger[0][0]:g}"
    return float(images[-1] / needed)


def needed(scale):
    """The models this experiment trains, per seed: ``[(objective, batch size or None)]``."""
    return [(name, None) for name in FIGURE2] + [(name, batch) for name in SWEEP
                                                  for batch in scale.sweep_batches]


def run(context):
    began = clock()
    scale = context.scale
    records = {name: [context.trained(OBJECTIVES[name], seed)[1] for seed in context.seeds]
               for name in FIGURE2}
    chance = 1 / len(context.data(0).classnames)
    results = {"objectives": {}, "claims": [], "sweep": {}}
    for name in FIGURE2:
        final = {split: mean_and_spread([r["evaluations"][-1][metric] for r in records[name]])
                 for split, metric in METRICS.items()}
        results["objectives"][name] = dict(
            label=OBJECTIVES[name].label, final=final,
            train_seconds=mean_and_spread([r["train_seconds"] for r in records[name]]),
            curves={split: dict(zip(("images_seen", "runs"), map(np.ndarray.tolist,
                                                               curve(records[name], metric))))
                    for split, metric in METRICS.items()})
    for stronger, weaker, factor in CLAIMS:
        measured = {split: efficiency(curve(records[stronger], metric),
                                      curve(records[weaker], metric), chance)
                    for split, metric in METRICS.items()}
        results["claims"].append(dict(stronger=stronger, weaker=weaker, paper_factor=factor,
                                      measured_factor=measured))

    sweep = {name: {batch: [context.trained(OBJECTIVES[name], seed, batch)[1]["evaluations"][-1]
                            for seed in context.seeds] for batch in scale.sweep_batches}
             for name in SWEEP}
    for name, by_batch in sweep.items():
        results["sweep"][name] = {
            str(batch): {split: mean_and_spread([e[metric] for e in evaluations])
                         for split, metric in METRICS.items()}
            for batch, evaluations in by_batch.items()}

    figure, axes = new_figure(3)
    for axis, (split, metric) in zip(axes, METRICS.items()):
        for name in FIGURE2:
            errorbar_line(axis, *curve(records[name], metric), OBJECTIVES[name].label)
        axis.axhline(chance, color="grey", ls=":", label="chance")
        axis.set(xlabel="images seen", ylabel=f"zero-shot top-1, {split} pairs", ylim=(0, 1),
                 title=f"{split} colour-shape pairs")
    axes[0].legend(fontsize=7)
    for colour, (name, by_batch) in zip(("C3", "C4", "C5"), sweep.items()):
        for split, metric in METRICS.items():
            runs = np.array([[e[metric] for e in by_batch[b]] for b in scale.sweep_batches]).T
            errorbar_line(axes[2], scale.sweep_batches, runs, f"{SWEEP[name]}, {split}",
                          color=colour, ls="-" if split == "seen" else "--")
    axes[2].set(xscale="log", xlabel=f"batch size ({scale.steps} steps)", ylim=(0, 1),
                ylabel="zero-shot top-1", title="softmax (CLIP) vs sigmoid (SigLIP)")
    axes[2].set_xticks(scale.sweep_batches, [str(b) for b in scale.sweep_batches])
    axes[2].minorticks_off()
    axes[2].legend(fontsize=7)
    figure.suptitle(f"Zero-shot top-1 per objective, mean ± std over {scale.seeds} seeds")
    results["figure"] = save(figure, f"{context.folder('objectives')}/objectives.png")
    return context.write_results("objectives", results, began)

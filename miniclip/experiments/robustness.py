"""``robustness``: zero-shot CLIP against a supervised classifier under distribution shift,
and what adapting CLIP to the training pictures does to it (the paper's Figures 13, 14).

Three classifiers of the 30 colour-shape classes, per seed:

* **supervised**: the same image tower with a linear head, trained with cross-entropy on the
  training pictures' labels, same data, steps and batch size as CLIP;
* **zero-shot CLIP**, with the prompt ensemble;
* **CLIP + linear probe**: logistic regression on CLIP's frozen features of clean training
  pictures (its L2 strength chosen on a validation split, as ``evaluation.linear_probe``
  does): CLIP adapted to the training distribution.

Each is scored on clean test pictures and on every shifted set (``data.synthetic.SHIFTS``),
counting only pictures of the 24 seen pairs, which the supervised model has labels for.
The paper's claims: zero-shot CLIP loses much less accuracy under shift than a supervised
model of the same clean accuracy ("effective robustness"), and adapting it raises its clean
accuracy but gives up part of that robustness. We report each model's clean accuracy,
its mean shifted accuracy, and their ratio (the fraction of clean accuracy kept).
"""
import numpy as np

from ..data.synthetic import SHIFTS, TEMPLATES
from ..evaluation.linear_probe import LogisticRegression, linear_probe
from ..evaluation.zeroshot import accuracy
from .context import clock, mean_and_spread
from .figures import new_figure, save
from .objectives import OBJECTIVES, image_features

MODELS = ("supervised", "zero-shot CLIP", "CLIP + linear probe")

#: Clean training pictures the probe is fitted on.
PROBE_TRAIN_SIZE = 2000


def evaluation_sets(data):
    """``{name: (images, labels)}``: the clean test pictures and each shifted set, of seen
    pairs only."""
    bench = data.benchmark
    sets = {"clean": (bench.images, bench.labels)}
    sets.update(bench.shifted)
    held_out = bench.test_set.held_out_classes()
    return {name: (images[~np.isin(labels, held_out)], labels[~np.isin(labels, held_out)])
            for name, (images, labels) in sets.items()}


def classifiers(context, seed):
    """``{model name: images -> scores [N, 30]}`` for one seed."""
    data = context.data(seed)
    clip, supervised = OBJECTIVES["clip"], OBJECTIVES["supervised"]
    clip_model, _ = context.trained(clip, seed)
    supervised_model, _ = context.trained(supervised, seed)
    fit = np.arange(min(PROBE_TRAIN_SIZE, len(data.images)))
    features, labels = image_features(clip_model, data.images[fit]), data.labels[fit]
    clean = evaluation_sets(data)["clean"]
    l2 = linear_probe(features, labels, image_features(clip_model, clean[0]), clean[1],
                      len(data.classnames))["l2"]
    probe = LogisticRegression(len(data.classnames), l2).fit(features, labels)
    return {
        "supervised": lambda images: supervised.scores(supervised_model, data, images, None),
        "zero-shot CLIP": lambda images: clip.scores(clip_model, data, images, TEMPLATES),
        "CLIP + linear probe": lambda images: probe.predict_scores(
            image_features(clip_model, images)),
    }


def needed(scale):
    """The models this experiment trains, per seed: ``[(objective, batch size or None)]``."""
    return [("clip", None), ("supervised", None)]


def run(context):
    began = clock()
    scale = context.scale
    top1 = {model: {name: [] for name in ("clean",) + SHIFTS} for model in MODELS}
    for seed in context.seeds:
        sets = evaluation_sets(context.data(seed))
        for model, classify in classifiers(context, seed).items():
            for name, (images, labels) in sets.items():
                top1[model][name].append(accuracy(classify(images), labels))

    results = {"models": {}}
    for model in MODELS:
        shifted = np.mean([top1[model][shift] for shift in SHIFTS], axis=0)     # [seeds]
        results["models"][model] = dict(
            {name: mean_and_spread(values) for name, values in top1[model].items()},
            mean_shifted=mean_and_spread(shifted),
            kept_fraction=mean_and_spread(shifted / np.maximum(top1[model]["clean"], 1e-9)))

    figure, axes = new_figure(1, width=5.6, height=4.8)
    axis = axes[0]
    axis.plot([0, 1], [0, 1], color="grey", ls=":", label="y = x (no loss under shift)")
    markers = dict(zip(SHIFTS, "os^Dv"))
    for colour, model in zip(("C0", "C1", "C2"), MODELS):
        clean = np.asarray(top1[model]["clean"])
        for shift in SHIFTS:
            values = np.asarray(top1[model][shift])
            axis.errorbar(clean.mean(), values.mean(), xerr=clean.std(ddof=1),
                          yerr=values.std(ddof=1), color=colour, marker=markers[shift],
                          capsize=3, ls="none",
                          label=f"{model}" if shift == SHIFTS[0] else None)
    for shift in SHIFTS:
        axis.plot([], [], color="k", marker=markers[shift], ls="none", label=shift)
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="top-1 on clean test pictures",
             ylabel="top-1 on shifted pictures",
             title=f"Shifted against clean accuracy, {scale.seeds} seeds")
    axis.legend(fontsize=7, loc="upper left")
    results["figure"] = save(figure, f"{context.folder('robustness')}/robustness.png")
    return context.write_results("robustness", results, began)

"""``prompts``: zero-shot accuracy from bare class names, one template, and ensembles of
templates (the paper's section 3.1.4: on ImageNet, prompt engineering and ensembling add
almost 5 points over bare class names).

Each seed's CLIP classifies the test pictures with the class embeddings of each prompt set
of :data:`PROMPT_SETS`; an ensemble averages a class's normalised embeddings over its
templates (``evaluation.zeroshot.zero_shot_classifier``).
"""
import numpy as np

from ..data.synthetic import OPENINGS, SIZES, TEMPLATES
from .context import clock, mean_and_spread
from .data import ONE_TEMPLATE
from .figures import new_figure, save
from .objectives import OBJECTIVES

#: The prompt sets compared, from least to most engineered.
PROMPT_SETS = {
    "bare name": ("{}",),
    "one template": ONE_TEMPLATE,
    f"ensemble of {len(TEMPLATES)}": TEMPLATES,
    # every opening of the training captions, with and without each size word
    f"ensemble of {len(OPENINGS) * (len(SIZES) + 1)}": tuple(
        f"{opening} {size}{{}}." for opening in OPENINGS
        for size in ("",) + tuple(f"{s} " for s in SIZES)),
}


def needed(scale):
    """The models this experiment trains, per seed: ``[(objective, batch size or None)]``."""
    return [("clip", None)]


def run(context):
    began = clock()
    clip = OBJECTIVES["clip"]
    splits = ("seen", "held-out")
    top1 = {name: {split: [] for split in splits} for name in PROMPT_SETS}
    for seed in context.seeds:
        data = context.data(seed)
        model, _ = context.trained(clip, seed)
        bench = data.benchmark
        for name, templates in PROMPT_SETS.items():
            metrics = bench.zero_shot_metrics(clip.scores(model, data, bench.images, templates))
            top1[name]["seen"].append(metrics["zeroshot_top1_seen"])
            top1[name]["held-out"].append(metrics["zeroshot_top1_unseen"])

    results = {"templates": {name: list(t) for name, t in PROMPT_SETS.items()},
               "top1": {name: {split: mean_and_spread(values) for split, values in by.items()}
                        for name, by in top1.items()}}
    figure, axes = new_figure(1, width=6.4)
    positions = np.arange(len(PROMPT_SETS))
    for offset, split in zip((-0.2, 0.2), splits):
        runs = np.array([top1[name][split] for name in PROMPT_SETS])       # [sets, seeds]
        axes[0].bar(positions + offset, runs.mean(axis=1), width=0.4, label=f"{split} pairs",
                    yerr=runs.std(axis=1, ddof=1), capsize=3)
    axes[0].set_xticks(positions, list(PROMPT_SETS), fontsize=8)
    axes[0].set(ylim=(0, 1), ylabel="zero-shot top-1",
                title=f"Prompts for zero-shot CLIP, mean ± std over {context.scale.seeds} seeds")
    axes[0].legend(fontsize=8)
    results["figure"] = save(figure, f"{context.folder('prompts')}/prompts.png")
    return context.write_results("prompts", results, began)

"""WiSE-FT: mixing a fine-tuned CLIP with the zero-shot one it started from, in weight space.

Wortsman et al. (2022, "Robust fine-tuning of zero-shot models") average the weights::

    θ(α) = (1 − α) · θ_zero-shot + α · θ_fine-tuned          (0 <= α <= 1)

α = 0 is the zero-shot model, α = 1 the fine-tuned one. Fine-tuning raises accuracy on
its own distribution and lowers it elsewhere (the CLIP paper, section 5.2); the paper's
finding is that intermediate α keep most of the gain while recovering most of the
robustness, so that some α beats both ends on both distributions together.

Why averaging weights can work at all: a network's function is not linear in its weights,
and the average of two unrelated networks (two random seeds) computes nothing, if only
because their hidden units are in different orders. A fine-tuned model, though, starts
at the zero-shot weights and moves only a little; the straight line between the two stays
in a region where the loss is low (they are "linearly mode connected"). So this is only
meaningful for two models of one architecture and one initialisation; ``interpolate``
can check the first (same names and shapes), not the second.

* ``interpolate(zero_shot_state, fine_tuned_state, alpha)``: the mixed state dict;
* ``first_mismatch``: the first key where two state dicts' architectures differ;
* ``sweep``: evaluate θ(α) for several α; ``plot_sweep``: the PNG of that sweep;
* ``model_state(path)``: a checkpoint's model weights, ready to mix.
"""
import numpy as np
from matplotlib.figure import Figure

from ..models import build_model
from ..models.clip import NON_STATE_KEYS
from ..models.pretrained import model_weights, weights_path
from ..training.plots import save_figure
from ..weights import load_state_dict


def model_state(name_or_path, download_root=None):
    """The model weights of anything ``miniclip.load`` reads, as an OpenAI-named state dict
    of NumPy arrays (a run's checkpoint gives its model, without the optimiser; the
    scalar entries of released files, which are not weights, are dropped)."""
    state = model_weights(load_state_dict(weights_path(name_or_path, download_root)))
    return {key: value for key, value in state.items() if key not in NON_STATE_KEYS}


def first_mismatch(zero_shot_state, fine_tuned_state):
    """``None`` if the two state dicts have the same keys with the same shapes; otherwise
    a phrase naming the first key (in the zero-shot dict's order, then the fine-tuned
    one's) that one lacks or where their shapes differ."""
    for key, value in zero_shot_state.items():
        if key not in fine_tuned_state:
            return f"{key!r} is in the zero-shot weights but not in the fine-tuned ones"
        other = fine_tuned_state[key]
        if np.shape(value) != np.shape(other):
            return (f"{key!r} has shape {list(np.shape(value))} in the zero-shot weights but "
                    f"{list(np.shape(other))} in the fine-tuned ones")
    for key in fine_tuned_state:
        if key not in zero_shot_state:
            return f"{key!r} is in the fine-tuned weights but not in the zero-shot ones"
    return None


def interpolate(zero_shot_state, fine_tuned_state, alpha):
    """θ(α) = (1 − α)·θ_zero-shot + α·θ_fine-tuned, key by key (a new dict of NumPy arrays).

    ``alpha`` in [0, 1]; α = 0 and α = 1 give the two inputs exactly (``1·x + 0·y == x``
    in floating point) and α = 0.5 their mean. Floating arrays keep the zero-shot dtype;
    integer ones (a batch norm's ``num_batches_tracked``) are rounded to the nearest
    integer. Raises ``ValueError`` naming the first mismatched key when the two do not have
    one architecture.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (0: the zero-shot weights, 1: the "
                         f"fine-tuned ones), got {alpha}")
    mismatch = first_mismatch(zero_shot_state, fine_tuned_state)
    if mismatch:
        raise ValueError(f"the two checkpoints have different architectures: {mismatch}; "
                         "interpolate a fine-tuned model with the weights it started from")
    mixed = {}
    for key, zero_shot in zero_shot_state.items():
        zero_shot, fine_tuned = np.asarray(zero_shot), np.asarray(fine_tuned_state[key])
        value = (1.0 - alpha) * zero_shot + alpha * fine_tuned  # float64 for integer arrays
        if np.issubdtype(zero_shot.dtype, np.floating):
            mixed[key] = value.astype(zero_shot.dtype, copy=False)
        else:
            mixed[key] = np.rint(value).astype(zero_shot.dtype)
    return mixed


def sweep(zero_shot_state, fine_tuned_state, alphas, evaluate):
    """``[{"alpha": α, **evaluate(model)}]`` for each α: ``evaluate`` gets the CLIP of
    θ(α) (float32, eval mode, CPU) and returns a dict of scores."""
    return [{"alpha": float(alpha),
             **evaluate(build_model(interpolate(zero_shot_state, fine_tuned_state, alpha)))}
            for alpha in alphas]


def best_alpha(alphas, means):
    """``(α, beats_both_ends)``: the α of the highest mean accuracy (the first if tied)
    and whether that mean is above both the α = min and the α = max one."""
    means = np.asarray(means, dtype=float)
    best = int(np.argmax(means))
    return float(alphas[best]), bool(means[best] > max(means[0], means[-1]))


def plot_sweep(path, alphas, accuracies, title="WiSE-FT"):
    """Accuracy against α: one line per evaluation set (``accuracies``: ``{name: [top-1
    per α]}``) and their mean, dashed; α = 0 is the zero-shot model, α = 1 the fine-tuned."""
    figure = Figure(figsize=(5.5, 3.8))
    axes = figure.subplots(gridspec_kw=dict(left=0.13, right=0.97, bottom=0.14, top=0.9))
    for name, values in accuracies.items():
        axes.plot(alphas, values, marker="o", label=name)
    axes.plot(alphas, np.mean(list(accuracies.values()), axis=0), ls="--", color="grey",
              marker=".", label="mean")
    axes.set(xlabel="α (0: zero-shot, 1: fine-tuned)", ylabel="zero-shot top-1",
             title=title, ylim=(0, 1))
    axes.legend()
    save_figure(figure, path)

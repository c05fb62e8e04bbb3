# %% [markdown]
# # 15. Adapting CLIP: fine-tuning, LiT and WiSE-FT
#
# Zero-shot CLIP names what it saw in pretraining. For pictures unlike those, the usual
# next step is to **fine-tune** it on some of them, and the CLIP paper (section 5.2,
# Figure 14) warns about the cost: fitting one distribution raises accuracy there and
# lowers it elsewhere. Two short papers answer with remedies that take a few lines:
#
# * **LiT** (Zhai et al., 2022): *lock* the pretrained image tower and train only the text
#   tower, so the image features cannot drift;
# * **WiSE-FT** (Wortsman et al., 2022): average the zero-shot and the fine-tuned weights,
#   $\theta(\alpha) = (1 - \alpha)\,\theta_\text{zero-shot} + \alpha\,\theta_\text{fine-tuned}$,
#   and pick $\alpha$ between the two.
#
# This notebook does all three on the synthetic shapes: pretrain a small CLIP on clean
# pictures, fine-tune it on **striped backgrounds** (a shift that breaks it), lock its image
# tower, then mix weights (exercise 15a: the interpolation) and see why mixing works only
# for two models of **one initialisation** (exercise 15b: permuted hidden units). The
# code is `miniclip/training/locking.py`, `miniclip/training/finetune.py` and
# `miniclip/evaluation/wise_ft.py`; `python -m miniclip.train --init-from`,
# `--lock-image` and `python -m miniclip.evaluation wise-ft` are the same on the command
# line.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import miniclip
from miniclip import create_model
from miniclip.data import ArrayDataset, CLIPCollate, DataLoader, SyntheticShapes, stack_fields
from miniclip.evaluation.wise_ft import interpolate as library_interpolate
from miniclip.evaluation.zeroshot import accuracy, encode_images, zero_shot_classifier
from miniclip.grading import exercise
from miniclip.models import build_model, trim_padding
from miniclip.optim import GradScaler, WarmupCosine
from miniclip.system.memory import reuse_freed_memory
from miniclip.system.threads import limit_blas_threads
from miniclip.training.finetune import FINE_TUNING
from miniclip.training.locking import lock_tower, tower_parameters
from miniclip.training.recipe import paper_optimizer
from miniclip.training.step import train_step

SEED, BATCH_SIZE = 0, 64
PRETRAIN_STEPS, PRETRAIN_LR = 300, 2e-3
TUNE_STEPS, TUNE_LR = 100, 2e-4       # a tenth of the peak rate, as --init-from does
TUNE_WARMUP = int(TUNE_STEPS * FINE_TUNING["warmup_fraction"])   # a short warm-up
# tiny-vit at half its width, with one head of 64 features per attention (OpenAI's rule,
# which `build_model` follows when it rebuilds a model from its weights)
SMALLER = dict(vision_width=64, transformer_width=64, transformer_heads=1)

print(limit_blas_threads())
print(reuse_freed_memory())

# %% [markdown]
# ## A zero-shot model, and a shift it handles badly
#
# The `tiny-vit` preset at half its width, pretrained for 300 steps on clean pictures
# (dark, plain backgrounds) as in `12_evaluating_clip.ipynb`. `fit` is the whole training
# loop: the paper's optimiser over the parameters that train, warm-up and cosine decay,
# and `train_step` of `miniclip/training/step.py`.

# %%
collate = CLIPCollate.for_model(32, 32)


def prepared(dataset):
    """``(images [N, 3, 32, 32], tokens [N, L])`` of a dataset, drawn and tokenized once."""
    images, tokens = ArrayDataset.prepare(dataset, collate).arrays
    return images, trim_padding(tokens)


def fit(model, data, steps, lr, warmup, weight_decay=0.2):
    """Train ``model`` on ``data`` (images, tokens) for ``steps``, warming up over
    ``warmup`` of them; returns the seconds per step."""
    loader = DataLoader(ArrayDataset(*data), BATCH_SIZE, shuffle=True, seed=SEED,
                        drop_last=True, collate=stack_fields)
    optimizer = paper_optimizer(model, lr, model.vision_kind, weight_decay=weight_decay)
    schedule = WarmupCosine(optimizer, warmup, steps)
    batches, no_scaling = loader.batches(), GradScaler(enabled=False)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        schedule(step)
        images, tokens = next(batches)
        train_step(model, optimizer, no_scaling, images, tokens, step + 1, "cpu", 1.0)
    model.eval()
    return (time.perf_counter() - start) / steps


clean_test = SyntheticShapes(600, 32, split="test", seed=SEED)
striped_test = SyntheticShapes(300, 32, split="test", seed=SEED, shift="background")
tests = {"clean": (prepared(clean_test)[0], clean_test.labels()),
         "striped": (prepared(striped_test)[0], striped_test.labels())}


def scores(model):
    """Zero-shot top-1 over the 30 classes on the clean and the striped test pictures."""
    classifier = zero_shot_classifier(model, clean_test.classnames, clean_test.templates,
                                      collate.tokenize)                       # [E, 30]
    return {name: accuracy(encode_images(model, images) @ classifier, labels)
            for name, (images, labels) in tests.items()}


def pretrain(seed):
    """A model of ``SMALLER`` from the random weights of ``seed``, trained on clean pictures;
    returns it and the seconds it took."""
    miniclip.manual_seed(seed)
    model = create_model("tiny-vit", **SMALLER)
    seconds = fit(model, clean_train, PRETRAIN_STEPS, PRETRAIN_LR, warmup=PRETRAIN_STEPS // 10)
    return model, seconds * PRETRAIN_STEPS


clean_train = prepared(SyntheticShapes(2048, 32, split="train", seed=SEED))
model, seconds = pretrain(SEED)
zero_shot = {key: value.copy() for key, value in model.state_dict().items()}  # θ_zero-shot
results = {"zero-shot": scores(model)}
print(f"pretrained in {seconds:.0f} s; zero-shot top-1: " +
      ", ".join(f"{k} {v:.1%}" for k, v in results["zero-shot"].items()))

# %% [markdown]
# A dozen striped pictures. The shapes and colours are the same; only the background
# changed, and that is enough for a model that never saw a bright background.

# %%
fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
for column in range(6):
    for row, dataset in enumerate((clean_test, striped_test)):
        image, caption = dataset[column]
        axes[row, column].imshow(image)
        axes[row, column].set_title(" ".join(caption.split()[3:6]), fontsize=8)
        axes[row, column].axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Fine-tuning
#
# Fine-tuning is training that starts from the pretrained weights, on pictures of the
# new distribution with their captions: here 2,048 striped training pictures (the test
# split's pictures are not among them), for a third of the pretraining steps at a tenth of
# its peak rate, with a short warm-up and weight decay 0.1: the defaults `--init-from` uses
# for a pretrained model.

# %%
striped_train = prepared(SyntheticShapes(2048, 32, split="train", seed=SEED + 1,
                                         shift="background"))
fine_tuned_model = build_model(zero_shot)
fine_tune_seconds = fit(fine_tuned_model, striped_train, TUNE_STEPS, TUNE_LR, TUNE_WARMUP,
                        FINE_TUNING["weight_decay"])
fine_tuned = fine_tuned_model.state_dict()                                     # θ_fine-tuned
results["fine-tuned"] = scores(fine_tuned_model)
print(", ".join(f"{k} {v:.1%}" for k, v in results["fine-tuned"].items()))

# %% [markdown]
# ## LiT: lock the image tower
#
# `lock_tower(model, "image")` sets `requires_grad = False` on every `visual.*`
# parameter. Then no op of the image tower records a graph (`Function.__call__` links an
# output to its inputs only if one of them needs a gradient), so `backward` never reaches
# them, the optimiser (built after locking) never holds them, and a ResNet's batch norms
# would stay in evaluation mode. The features of the image tower are exactly the
# zero-shot model's; only the text side learns to read them.

# %%
lit_model = build_model(zero_shot)
locked = lock_tower(lit_model, "image")
trainable = sum(p.numpy().size for p in lit_model.parameters() if p.requires_grad)
frozen = sum(p.numpy().size for _, p in tower_parameters(lit_model, "image"))
print(f"locked {len(locked)} tensors ({frozen:,} weights); {trainable:,} weights train")
lit_seconds = fit(lit_model, striped_train, TUNE_STEPS, TUNE_LR, TUNE_WARMUP,
                  FINE_TUNING["weight_decay"])
results["LiT"] = scores(lit_model)
print(", ".join(f"{k} {v:.1%}" for k, v in results["LiT"].items()))
print(f"seconds per step: fine-tuning {fine_tune_seconds:.3f}, LiT {lit_seconds:.3f} "
      "(the image tower's backward is skipped)")
same = all(np.array_equal(lit_model.state_dict()[k], zero_shot[k]) for k in zero_shot
           if k.startswith("visual."))
print(f"image tower bit-identical to the zero-shot one: {same}")

# %% [markdown]
# ## WiSE-FT: mixing weights
#
# ### Exercise 15a: the interpolation
#
# Return a new state dict holding $(1 - \alpha)\,z + \alpha\,f$ for every key of the two
# state dicts `zero_shot_state` and `fine_tuned_state` (dicts of NumPy arrays with the same
# keys and shapes), keeping each array's dtype. Write it as $(1-\alpha)\,z + \alpha\,f$,
# not $z + \alpha\,(f - z)$: in floating point only the first gives the two ends exactly
# at $\alpha = 0$ and $\alpha = 1$. (The library's version also refuses two state dicts of
# different architectures, naming the first key that differs.)

# %%
def interpolate(zero_shot_state, fine_tuned_state, alpha):
    """θ(α) = (1 − α)·θ_zero-shot + α·θ_fine-tuned, key by key."""
    # BEGIN SOLUTION 15a: weight-space interpolation
    return {key: ((1 - alpha) * value + alpha * fine_tuned_state[key]).astype(value.dtype)
            for key, value in zero_shot_state.items()}
    # END SOLUTION


# %%
with exercise("15a: weight-space interpolation") as check:
    for alpha in (0.0, 0.3, 0.5, 1.0):
        got, expected = (interpolate(zero_shot, fine_tuned, alpha),
                         library_interpolate(zero_shot, fine_tuned, alpha))
        check.equal(f"keys at α = {alpha}", sorted(got), sorted(expected))
        for key in ("visual.proj", "token_embedding.weight", "logit_scale"):
            check.close(f"{key} at α = {alpha}", got[key], expected[key], atol=1e-7, rtol=1e-6)
    for alpha, end in ((0.0, zero_shot), (1.0, fine_tuned)):
        mixed = interpolate(zero_shot, fine_tuned, alpha)
        check.true(f"α = {alpha:g} gives that end exactly",
                   all(np.array_equal(mixed[k], end[k]) for k in end),
                   "some array differs from the end's in its last digits: write "
                   "(1 - α)·z + α·f")

# %% [markdown]
# Now the sweep: the zero-shot accuracy of $\theta(\alpha)$ on both test sets for eleven
# values of $\alpha$, with the LiT model for comparison. The paper's claim is that some
# $\alpha$ in between beats **both ends on both distributions together**; the dashed line is
# the mean of the two accuracies.

# %%
alphas = np.linspace(0, 1, 11)
sweep = [scores(build_model(interpolate(zero_shot, fine_tuned, alpha))) for alpha in alphas]
clean, striped = (np.array([s[name] for s in sweep]) for name in ("clean", "striped"))
mean = (clean + striped) / 2
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(alphas, clean, marker="o", label="clean")
ax.plot(alphas, striped, marker="o", label="striped")
ax.plot(alphas, mean, marker=".", ls="--", color="grey", label="mean of the two")
for name, marker in (("LiT", "*"),):
    ax.scatter([1.04, 1.04], [results[name]["clean"], results[name]["striped"]],
               marker=marker, s=90, color="black", label=f"{name} (clean, striped)")
ax.set(xlabel="α (0: zero-shot, 1: fine-tuned)", ylabel="zero-shot top-1", ylim=(0, 1),
       title="WiSE-FT on the synthetic shapes")
ax.legend()
plt.tight_layout()
plt.show()
best = int(np.argmax(mean))
print(f"mean of the two: zero-shot {mean[0]:.1%}, fine-tuned {mean[-1]:.1%}, best α = "
      f"{alphas[best]:.1f} with {mean[best]:.1%}: "
      + ("above both ends" if mean[best] > max(mean[0], mean[-1]) else "not above both ends"))

# %% [markdown]
# Read the printed line before the figure's shape: in a model this small, pretrained this
# briefly, the fine-tuned model gains less on the stripes than it loses on clean pictures,
# and a mix cannot do better than share that trade out. `docs/results.md` ("Adapting:
# fine-tuning, LiT, WiSE-FT") measures the full `tiny-vit` over three seeds: there, with
# a fine-tuned model that is good on its stripes, an α near 0.7 beats both ends on the mean,
# and with a weak one the mean is flat, as here. LiT is the weakest of all on this shift:
# the locked image tower's features never learned to tell striped pictures apart, and the
# text tower, fitted to them, forgets the clean ones.
#
# ## Why it needs one initialisation
#
# A network's function is not linear in its weights, so why should the average of two
# networks compute anything? Because these two are close: the fine-tuned model *started*
# at the zero-shot weights and moved a little, and along the straight line between them the
# loss stays low. Two networks trained apart are not close even when they compute the same
# function. The plainest case: the hidden units of an MLP can be listed in any order.
# Permute the rows of `c_fc` (and its bias) and the columns of `c_proj` the same way and
# the block computes exactly what it did, yet its weights are different numbers.
#
# ### Exercise 15b: permuted hidden units
#
# Return a copy of `state` in which the MLP of the block whose names start with `prefix`
# (e.g. `"visual.transformer.resblocks.0.mlp."`) has its hidden units reordered by
# `permutation`: hidden unit `i` of the result is unit `permutation[i]` of `state`. The
# arrays are `c_fc.weight [4W, W]`, `c_fc.bias [4W]` and `c_proj.weight [W, 4W]`
# (`c_proj.bias [W]` belongs to the output, not the hidden units).

# %%
def permute_hidden_units(state, prefix, permutation):
    """A copy of ``state`` whose MLP at ``prefix`` lists its hidden units in ``permutation``."""
    permuted = dict(state)
    # BEGIN SOLUTION 15b: permuted hidden units
    permuted[prefix + "c_fc.weight"] = state[prefix + "c_fc.weight"][permutation]
    permuted[prefix + "c_fc.bias"] = state[prefix + "c_fc.bias"][permutation]
    permuted[prefix + "c_proj.weight"] = state[prefix + "c_proj.weight"][:, permutation]
    # END SOLUTION
    return permuted


# %%
def permuted_twin(state, seed=1):
    """``state`` with the hidden units of every MLP of both towers shuffled."""
    rng = np.random.default_rng(seed)
    prefixes = sorted({key[:-len("c_fc.weight")] for key in state if key.endswith("c_fc.weight")})
    for prefix in prefixes:
        state = permute_hidden_units(state, prefix, rng.permutation(len(state[prefix + "c_fc.bias"])))
    return state


with exercise("15b: permuted hidden units") as check:
    twin = permuted_twin(zero_shot)
    images = tests["clean"][0][:16]
    original, shuffled = build_model(zero_shot), build_model(twin)
    check.close("image features of the permuted twin", shuffled.encode_image(images),
                original.encode_image(images), atol=1e-5, rtol=1e-4)
    key = "visual.transformer.resblocks.0.mlp.c_fc.weight"
    check.true("the weights themselves", not np.array_equal(twin[key], zero_shot[key]),
               f"{key} is unchanged: the permutation was not applied")
    check.equal("c_proj.bias (not a hidden unit)", twin[key.replace("c_fc.weight", "c_proj.bias")].tolist(),
                zero_shot[key.replace("c_fc.weight", "c_proj.bias")].tolist())

# %% [markdown]
# Both ends of the line from the zero-shot weights to their permuted twin are the *same
# function*, with the same accuracy; in between, each hidden unit is the average of two
# unrelated ones. Two models pretrained *apart*, from the random weights of two seeds,
# differ by far more than a permutation: here is the line between the zero-shot model and
# a second one pretrained exactly like it from seed 1. All three curves are on the clean
# test pictures, which every end of every line handles well.

# %%
other, _ = pretrain(SEED + 1)
lines = {"zero-shot → fine-tuned (one initialisation)": fine_tuned,
         "zero-shot → its permuted twin (the same function)": twin,
         "zero-shot → a model pretrained from seed 1": other.state_dict()}
fig, ax = plt.subplots(figsize=(7, 3.6))
for label, end in lines.items():
    clean_line = [scores(build_model(interpolate(zero_shot, end, alpha)))["clean"]
                  for alpha in alphas]
    ax.plot(alphas, clean_line, marker="o", label=label)
    print(f"{label}: α = 0 {clean_line[0]:.1%}, α = 0.5 {clean_line[5]:.1%}, "
          f"α = 1 {clean_line[-1]:.1%}")
ax.axhline(1 / 30, color="grey", ls=":", label="chance (1/30)")
ax.set(xlabel="α", ylabel="zero-shot top-1, clean pictures", ylim=(0, 1))
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The average of two models trained apart is no model at all: near chance, though each end
# alone is good. WiSE-FT works because fine-tuning starts at the zero-shot weights and
# moves them a little, keeping every hidden unit where pretraining put it; `interpolate`
# can check that two state dicts have one architecture, but only where they came from
# says whether they have one initialisation.
#
# ## What to take away
#
# * Fine-tuning on the new distribution wins there and loses on the old one.
# * LiT keeps the image features exactly (its image tower is bit-identical) and skips the
#   image tower's backward; the text tower alone can move the classifier only so far.
# * WiSE-FT costs nothing but a weighted sum; whether an α between the ends beats both
#   depends on the run: `docs/results.md` ("Adapting: fine-tuning, LiT, WiSE-FT") measures
#   it over three seeds with `python scripts/adapting_experiment.py`.

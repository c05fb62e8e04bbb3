# %% [markdown]
# # 10. Mixed precision: float16's range, and loss scaling
#
# A GPU multiplies float16 matrices several times faster than float32 ones and stores them
# in half the memory, so CLIP was trained in **mixed precision**: float16 for the bulk of
# the arithmetic, float32 where float16 would lose the answer. This notebook looks at what
# float16 can and cannot represent, then at the two fixes `miniclip/optim/amp.py` applies:
#
# 1. the float16 number line: 65504 at the top, $6 \cdot 10^{-8}$ at the bottom, and three
#    significant digits in between;
# 2. a histogram of a real model's gradients against float16's smallest numbers, with and
#    without **loss scaling**;
# 3. a **dynamic loss scaler**, which you write (exercise 10a), and the scale it keeps over a
#    simulated run.
#
# `05_contrastive_loss.ipynb` (section 6) shows a few mixed-precision training steps. The
# exercise is a class with `raise NotImplementedError` lines for you to replace, followed
# by a `with exercise(...)` cell that checks it.

# %%
import matplotlib.pyplot as plt
import numpy as np

import miniclip
from miniclip import Tensor, create_model
from miniclip.data import CLIPCollate, SyntheticShapes
from miniclip.grading import exercise
from miniclip.optim import SGD, GradScaler
from miniclip.training.loss import clip_loss
from miniclip.system.threads import limit_blas_threads

rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. The float16 number line
#
# A float16 is 1 sign bit, 5 exponent bits and 10 fraction bits: $\pm 1.f \times 2^{e}$ with
# $e$ from −14 to 15. So
#
# * the largest value is $(2 - 2^{-10}) \cdot 2^{15} = 65504$; anything larger is `inf`;
# * the smallest *normal* value is $2^{-14} \approx 6.1 \cdot 10^{-5}$;
# * below it, the **subnormals** $0.f \times 2^{-14}$ trade precision for range, down to
#   $2^{-24} \approx 6.0 \cdot 10^{-8}$; anything smaller rounds to **0**;
# * in the normal range, neighbouring numbers differ by a factor $1 + 2^{-10}$: about three
#   significant decimal digits (float32 has seven).

# %%
for dtype in (np.float16, np.float32):
    info = np.finfo(dtype)
    print(f"{np.dtype(dtype).name}: max {info.max:.6g}, smallest normal {info.tiny:.3g}, "
          f"smallest subnormal {info.smallest_subnormal:.3g}, relative step {info.eps:.3g}")
with np.errstate(over="ignore"):
    print("float16(1 + 1e-4) =", np.float16(1 + 1e-4), "| float16(70000) =", np.float16(70000.0),
          "| float16(2e-8) =", np.float16(2e-8))

# %% [markdown]
# The gap to the next representable number, against the number itself: in the normal range
# the gap grows with the number (a constant *relative* precision); in the subnormal range
# it stays at $2^{-24}$, so a number there keeps fewer and fewer significant bits.

# %%
values = np.geomspace(1e-9, 1e5, 2000)
fig, ax = plt.subplots(figsize=(8.5, 3.8))
for dtype, colour in [(np.float16, "tab:blue"), (np.float32, "tab:orange")]:
    with np.errstate(over="ignore", invalid="ignore"):       # 1e5 is inf in float16
        cast = values.astype(dtype)
        gap = np.spacing(cast).astype(np.float64)
    keep = np.isfinite(gap) & (cast > 0)
    ax.plot(values[keep], gap[keep], color=colour, label=f"{np.dtype(dtype).name}: gap to the next number")
info = np.finfo(np.float16)
ax.axvspan(1e-9, float(info.smallest_subnormal), color="red", alpha=0.1, label="float16 rounds to 0")
ax.axvspan(float(info.smallest_subnormal), float(info.tiny), color="gold", alpha=0.2,
           label="float16 subnormals")
ax.axvspan(float(info.max), 1e5, color="purple", alpha=0.1, label="float16 overflows to inf")
ax.set(xscale="log", yscale="log", xlabel="number", ylabel="gap", title="the float16 number line")
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# ## 2. Gradients against float16's smallest numbers
#
# Where do gradients fall on that line? Here are the parameter gradients of miniclip's tiny
# ViT CLIP (1.37 million parameters), at initialisation, on a batch of 64 synthetic
# pictures, computed in float32; the ones that are exactly 0 (the embedding rows of tokens
# that are not in the batch) are left out. (A float16 backward pass on a CPU is too slow for a notebook:
# CPUs have no fast float16 matrix product. So we compute in float32 and ask which
# gradients float16 could *hold*.)

# %%
miniclip.manual_seed(0)
model = create_model("tiny-vit")
collate = CLIPCollate.for_model(image_size=32, context_length=model.context_length)
dataset = SyntheticShapes(64, image_size=32)
images, tokens = collate([dataset[i] for i in range(64)])
logits_per_image, logits_per_text = model(Tensor(images), Tensor(tokens))
clip_loss(logits_per_image, logits_per_text).backward()
gradients = np.concatenate([p.grad.ravel() for p in model.parameters()]).astype(np.float64)
gradients = gradients[gradients != 0]
print(f"{gradients.size:,} non-zero gradients, |g| from {np.abs(gradients).min():.1e} "
      f"to {np.abs(gradients).max():.2f}")

# %% [markdown]
# Loss scaling multiplies the loss by $S$ before `backward()`; every gradient is then $S$
# times larger, which on a log scale moves the whole histogram right by $\log_2 S$. After the
# backward pass the gradients are divided by $S$ again, in float32. The histograms below
# show $|g|$ and $|S g|$ against float16's limits, and count what each would lose.

# %%
def float16_fate(values):
    """How many of ``values`` float16 flushes to 0, keeps as subnormals, overflows to inf."""
    magnitude, half_smallest = np.abs(values), float(info.smallest_subnormal) / 2   # rounds to 0 below
    return {"to zero": (magnitude < half_smallest).sum(),
            "subnormal": ((magnitude >= half_smallest) & (magnitude < float(info.tiny))).sum(),
            "to inf": (magnitude > info.max).sum()}


scales = [1.0, 2.0 ** 10, 2.0 ** 16]
fig, axes = plt.subplots(1, len(scales), figsize=(15, 3.6), sharey=True)
bins = np.arange(-40, 20, 0.5)
for ax, scale in zip(axes, scales):
    ax.hist(np.log2(np.abs(scale * gradients)), bins=bins, color="grey")
    ax.axvspan(bins[0], -24, color="red", alpha=0.1)
    ax.axvspan(-24, -14, color="gold", alpha=0.2)
    ax.axvspan(np.log2(float(info.max)), bins[-1], color="purple", alpha=0.1)
    fate = ", ".join(f"{name}: {count:,}" for name, count in float16_fate(scale * gradients).items())
    ax.set(title=f"S = 2^{int(np.log2(scale))}\n{fate}", xlabel="log2 |S g|", yscale="log")
axes[0].set_ylabel("gradients")
plt.tight_layout()
plt.show()

# %% [markdown]
# * Without scaling ($S = 1$), about one gradient in twenty is a subnormal, stored with
#   only a few significant bits, and a small cluster (left) is flushed to 0. Later in
#   training, when the loss and so the gradients are smaller, the histogram slides further
#   left. In a real float16 backward pass it is worse: the gradients of the *activations*
#   on the way down (not plotted) are smaller still, and an activation gradient flushed to
#   0 zeroes every parameter gradient computed from it.
# * With $S = 2^{10}$ almost the whole histogram sits in float16's normal range.
# * With $S = 2^{16}$ the largest gradients overflow: $|S g| > 65504$ becomes `inf`. A
#   handful is enough to spoil the step, which then has to be skipped.
#
# So $S$ must be large, but not too large, and the right value changes as training goes.
# That is what a **dynamic** loss scaler finds.
#
# ## 3. A dynamic loss scaler
#
# The rule of `torch.amp.GradScaler`, and of `miniclip.optim.GradScaler`:
#
# * start high ($S = 2^{16}$);
# * after every backward pass, look at the gradients: if any is `inf` or `NaN`, **skip** the
#   optimiser step (its update would be garbage), halve $S$, and reset the count of good
#   steps;
# * otherwise take the step, and count it; after `growth_interval` good steps in a row,
#   double $S$ (and start counting again): perhaps a larger scale fits now.
#
# A few skipped steps at the start are the price of never having a scale that is
# needlessly small for long.
#
# ### Exercise 10a: the scaler's rule
#
# Complete `LossScaler.update(found_inf)`: apply the rule above to `self.scale` and
# `self.good_steps`, and return whether the optimiser step should be taken.

# %%
class LossScaler:
    """Dynamic loss scaling: ``scale`` S to multiply the loss by; call ``update`` once per
    step with whether the gradients held inf/NaN; it returns whether to take the step."""

    def __init__(self, init_scale=2.0 ** 16, growth_interval=2000):
        self.scale, self.growth_interval, self.good_steps = init_scale, growth_interval, 0

    def update(self, found_inf):
        # BEGIN SOLUTION 10a: the dynamic loss scaler
        if found_inf:
            self.scale /= 2
            self.good_steps = 0
            return False
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= 2
            self.good_steps = 0
        return True
        # END SOLUTION


# %% [markdown]
# The check drives your scaler and miniclip's `GradScaler` through the same sequence of
# overflowing and finite steps (a one-number "model" whose gradient is `inf` on an overflow)
# and compares the decisions and the scales after every step:

# %%
with exercise("10a: the dynamic loss scaler") as check:
    weight = Tensor(np.zeros(1), requires_grad=True)
    optimizer = SGD([weight], lr=0.0)
    reference, yours = GradScaler(init_scale=2.0 ** 16, growth_interval=3), LossScaler(2.0 ** 16, 3)
    overflows = [True, True, False, False, False, False, True, False, False, False, False, False, False]
    for step, overflow in enumerate(overflows):
        weight.grad = np.array([np.inf if overflow else 1.0])
        stepped = reference.step(optimizer)
        reference.update()
        check.equal(f"step {step} ({'overflow' if overflow else 'finite'}): step taken",
                    yours.update(overflow), stepped)
        check.equal(f"step {step} ({'overflow' if overflow else 'finite'}): scale after it",
                    yours.scale, reference.get_scale())

# %% [markdown]
# ### The scale over a run
#
# A simulated run: each step's largest gradient $|g|_\text{max}$ drifts down slowly over
# training, with noise (a stand-in for a real run, whose gradients shrink as the loss
# falls), and a step overflows when $S\,|g|_\text{max} > 65504$. Your scaler, with a
# `growth_interval` of 50, finds the largest safe scale, then tracks it as it rises.

# %%
scaler = LossScaler(init_scale=2.0 ** 16, growth_interval=50)
steps = np.arange(2000)
largest = 2.0 * np.exp(-steps / 600) * np.exp(0.3 * rng.standard_normal(steps.size))
history, skipped = [], []
for step, g_max in zip(steps, largest):
    history.append(scaler.scale)
    if not scaler.update(found_inf=scaler.scale * g_max > float(info.max)):
        skipped.append(step)

plt.figure(figsize=(9, 3.5))
plt.plot(steps, history, label="loss scale S")
plt.plot(steps, float(info.max) / largest, lw=0.5, color="grey", label="65504 / |g|max (overflow above)")
plt.plot(skipped, np.array(history)[skipped], "rx", ms=4, label=f"skipped steps ({len(skipped)})")
plt.yscale("log", base=2)
plt.xlabel("step")
plt.legend(fontsize=8)
plt.title("a dynamic loss scaler on a simulated run")
plt.show()
print(f"{len(skipped)} of {steps.size} steps skipped ({len(skipped) / steps.size:.1%})")

# %% [markdown]
# The scale first halves until the gradients fit, then climbs in steps of 2 every 50 good
# steps, and each climb that goes one step too far costs one skipped step and a halving: a
# sawtooth just under the overflow line, with a few percent of the steps skipped.
#
# The other half of mixed precision is the optimiser: an update $\eta\,\Delta$ much smaller
# than the weight itself vanishes in float16 (`float16(1 + 1e-4)` is 1, above), so the
# optimiser keeps **float32 master weights** and the forward pass uses float16 copies
# (`miniclip.optim.float16_parameters`).

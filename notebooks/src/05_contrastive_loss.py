# %% [markdown]
# # 5. The contrastive loss, the temperature and the optimiser
#
# CLIP is trained on a batch of $n$ matching (image, caption) pairs. Both towers embed their
# inputs, the embeddings are compared **all against all**, and the loss asks that each image
# pick out its own caption among the $n$ captions, and each caption its own image among the
# $n$ images. This notebook works through:
#
# 1. the paper's pseudocode, with its names, and miniclip's line-for-line version;
# 2. learning two projections with that loss, and the similarity matrix it produces;
# 3. the gradient of the loss with respect to the similarities;
# 4. the learned temperature and what it does to the loss;
# 5. AdamW and the warm-up + cosine learning-rate schedule;
# 6. one mixed-precision step with dynamic loss scaling.
#
# There are two exercises: the pseudocode's cross-entropy (5a) and the loss's gradient in
# closed form (5b), each a function with a `raise NotImplementedError` line for you to
# replace, followed by a `with exercise(...)` cell that checks it.
#
# The code: `miniclip/training/loss.py` (the loss and the temperature), `miniclip/optim/`
# (AdamW, schedule), `miniclip/training/recipe.py` (the paper's parameter groups and Adam
# settings), `miniclip/optim/amp.py` (mixed precision).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import miniclip
import miniclip.functional as F
from miniclip import CLIP, Tensor, create_model, no_grad
from miniclip.data import CLIPCollate, SyntheticShapes
from miniclip.grading import exercise
from miniclip.training.loss import (LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, clamp_logit_scale_, clip_loss,
                           clip_loss_from_features)
from miniclip.optim import AdamW, GradScaler, WarmupCosine, float16_parameters, mixed_precision_step
from miniclip.training.recipe import paper_optimizer, paper_param_groups
from miniclip.system.threads import limit_blas_threads

miniclip.manual_seed(0)
rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. The paper's pseudocode
#
# Figure 3 of the CLIP paper gives the whole method as NumPy-like pseudocode. From the
# features on it reads:
#
# ```python
# # I_f [n, d_i], T_f [n, d_t]: image and text features from the two encoders
# # W_i [d_i, d_e], W_t [d_t, d_e]: learned projections;  t: learned temperature
# I_e = l2_normalize(np.dot(I_f, W_i), axis=1)
# T_e = l2_normalize(np.dot(T_f, W_t), axis=1)
# logits = np.dot(I_e, T_e.T) * np.exp(t)            # [n, n] scaled cosine similarities
# labels = np.arange(n)
# loss_i = cross_entropy_loss(logits, labels, axis=0)
# loss_t = cross_entropy_loss(logits, labels, axis=1)
# loss = (loss_i + loss_t) / 2
# ```
#
# Row $i$ of `logits` is image $i$ against every text; column $j$ is text $j$ against every
# image. The diagonal holds the true pairs, so the label of row (and column) $k$ is $k$.
# `axis=1` takes the softmax along each row ("which text is this image's?") and `axis=0`
# along each column ("which image is this text's?").
#
# `clip_loss_from_features` in `miniclip/training/loss.py` is that code line for line, with the same
# names. To try it we need features in which pair $k$ has something in common. Here each
# pair shares a hidden 8-dimensional "content" vector $z_k$ that the image and the text
# features express through different random linear maps, plus plenty of noise of their
# own, the way a photo and its caption describe one scene in two very different forms.

# %%
d_i, d_t, d_e, d_z = 32, 24, 16, 8
to_image, to_text = rng.standard_normal((d_z, d_i)), rng.standard_normal((d_z, d_t))


def make_pairs(n):
    """n (image feature, text feature) pairs; pair k shares the content z_k."""
    z = rng.standard_normal((n, d_z))
    I_f = z @ to_image + 2.0 * rng.standard_normal((n, d_i))
    T_f = z @ to_text + 2.0 * rng.standard_normal((n, d_t))
    return Tensor(I_f), Tensor(T_f)


W_i = Tensor(rng.standard_normal((d_i, d_e)) / np.sqrt(d_i), requires_grad=True)
W_t = Tensor(rng.standard_normal((d_t, d_e)) / np.sqrt(d_t), requires_grad=True)
t = Tensor(np.array(LOGIT_SCALE_INIT), requires_grad=True)   # ln(1/0.07): scale 14.3

I_f, T_f = make_pairs(8)
loss = clip_loss_from_features(I_f, T_f, W_i, W_t, t)
print(f"loss with random projections: {loss.item():.4f}   (ln 8 = {np.log(8):.4f})")
assert loss.item() > np.log(8), "random projections are worse than guessing"

# %% [markdown]
# Random projections give a loss well *above* $\ln 8 \approx 2.08$, the loss of guessing
# uniformly among the 8 candidates: at the initial scale of 14.3, random cosine similarities
# of a few tenths turn into confident wrong answers. (Section 4 looks at the scale.)
#
# The same computation in plain NumPy, following the pseudocode literally, including the
# `axis` convention of its cross-entropy:

# %%
def l2_normalize(x, axis):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


def cross_entropy_loss(logits, labels, axis):
    """Mean cross-entropy of the softmax along ``axis`` of ``logits`` [n, n], where the
    true class of row (axis=1) or column (axis=0) k is labels[k]."""
    # BEGIN SOLUTION 5a: the cross-entropy of the pseudocode
    log_softmax = logits - np.log(np.exp(logits).sum(axis=axis, keepdims=True))
    picked = log_softmax[labels, labels]        # the diagonal: true pairs, for either axis
    return -picked.mean()
    # END SOLUTION


# %% [markdown]
# ### Exercise 5a: the pseudocode's cross-entropy
#
# Complete `cross_entropy_loss` above in NumPy: take the log-softmax along `axis`
# ($s - \log\sum e^{s}$ along that axis, `keepdims=True` so it broadcasts back), pick the
# entries of the true pairs (for CLIP's labels `arange(n)`: the diagonal, whichever the
# axis) and return minus their mean. The check compares it with miniclip's
# `F.cross_entropy` on rows (axis 1) and on columns (axis 0: the rows of the transpose).

# %%
with exercise("5a: the cross-entropy of the pseudocode") as check:
    some_logits = 5 * np.random.default_rng(1).standard_normal((6, 6))
    for axis, rows in [(1, some_logits), (0, some_logits.T)]:
        check.close(f"cross_entropy_loss(logits, labels, axis={axis})",
                    cross_entropy_loss(some_logits, np.arange(6), axis),
                    F.cross_entropy(Tensor(rows), np.arange(6)))

# %%
n = 8
I_e = l2_normalize(I_f.numpy() @ W_i.numpy(), axis=1)
T_e = l2_normalize(T_f.numpy() @ W_t.numpy(), axis=1)
logits_np = I_e @ T_e.T * np.exp(t.numpy())
labels = np.arange(n)
loss_np = (cross_entropy_loss(logits_np, labels, axis=0) + cross_entropy_loss(logits_np, labels, axis=1)) / 2
print(f"NumPy pseudocode: {loss_np:.6f}   miniclip: {loss.item():.6f}")

# CLIP.forward returns the logits; clip_loss takes them from there.
print(f"clip_loss on the logits: {clip_loss(Tensor(logits_np)).item():.6f}")
assert np.isclose(loss_np, loss.item(), rtol=1e-5)
assert np.isclose(clip_loss(Tensor(logits_np)).item(), loss_np, rtol=1e-5)

# %% [markdown]
# `CLIP.forward` (`miniclip/models/clip.py`) does the projection, the normalisation and the
# scaling inside the model and returns `logits_per_image` (the pseudocode's `logits`) and its
# transpose `logits_per_text`; `clip_loss(logits_per_image, logits_per_text)` is then the
# symmetric cross-entropy. The training loop in `06_train_tiny_clip.ipynb` uses that form.
#
# ## 2. Learning the projections
#
# Let us train $W_i$, $W_t$ and $t$ with this loss alone, on fresh batches of 32 pairs every
# step. AdamW and the schedule are explained in section 5 below; `clamp_logit_scale_` after
# every step keeps the scale $e^t$ at most 100, as the paper prescribes.

# %%
optimizer = AdamW([W_i, W_t, t], lr=0.02, weight_decay=0.0)
schedule = WarmupCosine(optimizer, warmup_steps=20, total_steps=300)
history = {"loss": [], "scale": []}
for step in range(300):
    schedule(step)
    loss = clip_loss_from_features(*make_pairs(32), W_i, W_t, t)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    history["loss"].append(loss.item())
    history["scale"].append(math.exp(clamp_logit_scale_(t).item()))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
axes[0].plot(history["loss"])
axes[0].axhline(np.log(32), color="grey", ls=":", label="ln 32 (chance)")
axes[0].set(xlabel="step", title="contrastive loss, batches of 32")
axes[0].legend()
axes[1].plot(history["scale"])
axes[1].axhline(np.exp(LOGIT_SCALE_INIT), color="grey", ls=":", label="start, 14.3")
axes[1].set(xlabel="step", title="logit scale exp(t) = 1 / temperature (bound: 100)")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The loss falls far below chance but not to 0: the noise makes some pairs genuinely hard
# to tell apart. The logit scale first dips while the embeddings are poor (a softer softmax
# hedges against mistakes), then grows as they improve (once the true pair is usually the
# most similar, a sharper softmax lowers the loss). Both moves are small here: from 14.3
# down to about 11 and back to about 14, far below the bound of 100 (which is why the
# axis stops short of it). Section 4 looks at why.
#
# Now the picture the loss is about: the matrix of cosine similarities of a fresh batch of 12
# pairs, before training (random projections) and after. After training the diagonal stands
# out, and each row's softmax puts most of its weight there; the off-diagonal entries that
# remain bright are the pairs the model still confuses.

# %%
def similarities(W_image, W_text, pairs):
    I_f, T_f = pairs
    with no_grad():
        I_e = F.normalize(I_f @ W_image, dim=1)
        T_e = F.normalize(T_f @ W_text, dim=1)
        return (I_e @ T_e.T).numpy()


test_pairs = make_pairs(12)
W_i_random = Tensor(rng.standard_normal((d_i, d_e)))
W_t_random = Tensor(rng.standard_normal((d_t, d_e)))
before = similarities(W_i_random, W_t_random, test_pairs)
after = similarities(W_i, W_t, test_pairs)
scale = float(np.exp(t.item()))

fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
for ax, matrix, title in [(axes[0], before, "cosine similarity, random projections"),
                          (axes[1], after, "cosine similarity, trained")]:
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(title=title, xlabel="text j", ylabel="image i")
    plt.colorbar(im, ax=ax, fraction=0.046)
row_softmax = F.softmax(Tensor(scale * after), dim=1).numpy()
im = axes[2].imshow(row_softmax, cmap="Greens", vmin=0, vmax=1)
axes[2].set(title=f"softmax over each row, scale {scale:.0f}", xlabel="text j", ylabel="image i")
plt.colorbar(im, ax=axes[2], fraction=0.046)
plt.tight_layout()
plt.show()
print("image -> text retrieval accuracy:", (after.argmax(axis=1) == np.arange(12)).mean(),
      "| text -> image:", (after.argmax(axis=0) == np.arange(12)).mean())
assert (after.argmax(axis=1) == np.arange(12)).mean() > 0.5, "training must beat chance (1/12)"

# %% [markdown]
# ## 3. The gradient with respect to the logits
#
# For one row $i$ with logits $s_{i\cdot}$ and target $i$, the cross-entropy is
# $-s_{ii} + \log\sum_j e^{s_{ij}}$, whose derivative is
# $\partial/\partial s_{ij} = p_{ij} - [i = j]$ with $p_{i\cdot} = \operatorname{softmax}(s_{i\cdot})$.
# The loss averages $n$ rows and $n$ columns and halves the sum, so
#
# $$\frac{\partial\,\text{loss}}{\partial s_{ij}} =
# \frac{1}{2n}\Big(p^{\text{row}}_{ij} + p^{\text{col}}_{ij} - 2\,[i = j]\Big).$$
#
# Every true pair is pulled up (negative gradient: gradient *descent* raises it), and every
# mismatch is pushed down in proportion to how much probability it currently steals, from
# its row and from its column. Hard negatives, the mismatches that look most like a match,
# get the largest push. Autograd agrees with the formula:

#
# ### Exercise 5b: the gradient in closed form
#
# Write `clip_loss_gradient(logits)` in NumPy with the formula above, without autograd:
# the softmax along rows and along columns (subtract each row's or column's maximum before
# `np.exp`, which changes nothing mathematically and keeps large logits from
# overflowing), then the formula. The check compares it with what miniclip's autograd gives
# for `clip_loss`, and with finite differences of the loss itself.

# %%
def clip_loss_gradient(logits):
    """d clip_loss / d logits for logits [n, n] (a NumPy array), from the closed form."""
    # BEGIN SOLUTION 5b: the gradient of the CLIP loss
    def softmax(s, axis):
        e = np.exp(s - s.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    n = len(logits)
    return (softmax(logits, 1) + softmax(logits, 0) - 2 * np.eye(n)) / (2 * n)
    # END SOLUTION


# %%
with exercise("5b: the gradient of the CLIP loss") as check:
    from miniclip.grading import numerical_gradient
    logits = Tensor(scale * after, requires_grad=True)
    clip_loss(logits).backward()
    check.close("gradient of the trained logits", clip_loss_gradient(scale * after), logits.grad)
    small = 3 * np.random.default_rng(2).standard_normal((4, 4))
    check.close("gradient of a random 4 x 4", clip_loss_gradient(small),
                numerical_gradient(lambda s: clip_loss(Tensor(s)).item(), small), atol=1e-7)

# %% [markdown]
# The map of the gradient for our trained batch:

# %%
by_hand = clip_loss_gradient(scale * after)

limit = np.abs(by_hand).max()
plt.figure(figsize=(4.6, 4))
plt.imshow(by_hand, cmap="RdBu_r", vmin=-limit, vmax=limit)
plt.colorbar(fraction=0.046)
plt.title("d loss / d logits")
plt.xlabel("text j")
plt.ylabel("image i")
plt.show()

# %% [markdown]
# Pairs the model already matches confidently contribute almost nothing: the gradient
# concentrates on the rows and columns that are still confused, where a mismatch steals
# probability from the true pair.
#
# ## 4. The temperature
#
# The logits are cosine similarities, which lie in $[-1, 1]$, times the **logit scale**
# $e^t = 1/\tau$. Without the scale, even a perfect model, with similarity 1 for the true pair
# and 0 for the others, would give the true pair only $e^1 / (e^1 + (n-1)e^0)$ of the
# probability, 8% for $n = 32$, and the loss could never get near 0. The scale is therefore
# learned, on a log scale ($t = \ln(1/\tau)$) so that it stays positive and equal steps change
# it by equal factors. It starts at $\tau = 0.07$ (scale 14.3, `LOGIT_SCALE_INIT`), and the
# paper clips it at 100 (`LOGIT_SCALE_MAX = ln 100`).
#
# How the loss depends on the scale, for batches of 32 pairs with three kinds of
# embeddings: random projections, our trained ones, and a perfect matching (similarity 1 on
# the diagonal and 0 elsewhere, for which the loss is exactly $\ln(1 + (n-1)e^{-s})$). The
# loss of one batch is noisy, so each curve averages 16 batches.

# %%
def mean_batch_loss(matrix, scale, n=32):
    """The loss at ``scale`` averaged over the n x n diagonal blocks (batches) of ``matrix``."""
    blocks = range(0, len(matrix), n)
    return np.mean([clip_loss(Tensor(scale * matrix[i:i + n, i:i + n])).item() for i in blocks])


eval_pairs = make_pairs(16 * 32)
cases = {"random projections": similarities(W_i_random, W_t_random, eval_pairs),
         "trained projections": similarities(W_i, W_t, eval_pairs),
         "perfect": np.eye(32)}
scales = np.geomspace(1, 1000, 60)
plt.figure(figsize=(8.5, 4))
for name, matrix in cases.items():
    plt.plot(scales, [mean_batch_loss(matrix, s) for s in scales], label=name)
plt.plot(scales, np.log1p(31 * np.exp(-scales)), "k:", lw=1, label="ln(1 + 31 e^-s)")
plt.axvline(np.exp(LOGIT_SCALE_INIT), color="grey", ls="--", lw=0.8)
plt.axvline(np.exp(LOGIT_SCALE_MAX), color="grey", ls="--", lw=0.8)
plt.axvline(scale, color="tab:orange", ls=":", lw=1.5, label=f"learned scale {scale:.1f}")
plt.text(np.exp(LOGIT_SCALE_INIT) * 1.05, 4.2, "start\n14.3", fontsize=8)
plt.text(np.exp(LOGIT_SCALE_MAX) * 1.05, 4.2, "bound\n100", fontsize=8)
plt.xscale("log")
plt.xlabel("logit scale exp(t)")
plt.ylabel("loss")
plt.ylim(0, 6)
plt.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
plt.tight_layout()
plt.show()

# %% [markdown]
# * **Random embeddings**: the loss is lowest at a small scale, where every guess is equally
#   uncertain ($\ln 32 \approx 3.5$); a larger scale only makes confident mistakes.
# * **Trained embeddings**: the loss has a minimum at a finite scale: sharp enough to profit
#   from the correct rankings, soft enough not to be punished too hard for the wrong ones.
#   The optimiser finds that scale through $t$'s gradient: the scale our training run
#   learned (dotted orange) sits near the minimum.
# * **Perfect embeddings**: the loss keeps falling as the scale grows, so nothing stops $t$
#   from growing without bound. The clip at 100 keeps training numerically stable.
#
# We clip *after* each optimiser step (`clamp_logit_scale_` writes $\min(t, \ln 100)$ into the
# parameter), not inside the forward pass: a clamp in the forward would zero $t$'s gradient
# whenever it sits at the bound, and $t$ could never come back down.
#
# ## 5. AdamW and the learning-rate schedule
#
# CLIP is trained with **AdamW**: Adam's per-parameter step sizes plus *decoupled* weight
# decay, $w \leftarrow w - \eta\lambda w$ applied directly to the weights rather than added to
# the gradient (where Adam's normalisation would change its strength). The paper decays
# "all weights that are not gains or biases" with $\lambda = 0.2$. `paper_param_groups`
# draws that line by shape: tensors with 2 or more dimensions decay, vectors and scalars
# (biases, LayerNorm gains, `logit_scale`, the ViT class embedding) do not.

# %%
model = create_model("tiny-vit")
for group in paper_param_groups(model, weight_decay=0.2):
    names = group["names"]
    print(f"weight_decay={group['weight_decay']}: {len(names)} tensors, "
          f"{sum(p.size for p in group['params']):,} numbers, e.g. {names[:2] + names[-2:]}")

# %% [markdown]
# `paper_optimizer(model, lr, tower)` (`tower` is `model.vision_kind`) builds AdamW over those two groups with the paper's
# $\beta$ and $\epsilon$ for the image tower (ViT: $\beta_2 = 0.98$, $\epsilon = 10^{-6}$;
# ResNet: $0.999$, $10^{-8}$). The learning rate follows `WarmupCosine`: a linear
# **warm-up** from near 0 to the peak (Adam's second-moment estimates are noisy during the
# first steps, so they should be small), then a **cosine** decay to 0. The paper warms up for
# 2,000 of its roughly 390,000 steps; below is a short run with both groups (they share the
# rate; the schedule is a pure function of the step, so resuming needs only the step
# number).

# %%
optimizer = paper_optimizer(model, lr=5e-4, tower="vit")
print("Adam settings:", {k: optimizer.param_groups[0][k] for k in ("betas", "eps")})
schedule = WarmupCosine(optimizer, warmup_steps=100, total_steps=1000)
steps = np.arange(1100)
rates = [schedule(int(s)) for s in steps]
plt.figure(figsize=(7, 3))
plt.plot(steps, rates)
plt.axvline(100, color="grey", ls=":", lw=0.8)
plt.axvline(1000, color="grey", ls=":", lw=0.8)
plt.xlabel("step")
plt.ylabel("learning rate")
plt.title("WarmupCosine(warmup_steps=100, total_steps=1000), peak 5e-4")
plt.show()

# %% [markdown]
# ## 6. Mixed precision, in one step
#
# On a GPU, float16 arithmetic is several times faster than float32 and takes half the
# memory, and CLIP was trained in mixed precision. float16 has two problems that
# `miniclip/optim/amp.py` works around:

# %%
print("1 + 1e-4 in float16:", np.float16(1) + np.float16(1e-4), " (an update that vanishes)")
print("1e-8 in float16:   ", np.float16(1e-8), " (a gradient that underflows)")
print("largest float16:   ", np.finfo(np.float16).max)

# %% [markdown]
# * Updates vanish: so the optimiser keeps **float32 master weights**, and the forward
#   pass uses float16 copies (`float16_parameters` swaps each parameter for a differentiable
#   cast, so the float32 masters receive float32 gradients). Layer norms, softmax and the
#   loss are computed in float32.
# * Small gradients underflow: so the loss is multiplied by a large **scale** $S$ before
#   `backward()`, which lifts every gradient by $S$, and the gradients are divided by $S$
#   again in float32 before the update. If some gradient overflowed to inf, the step is
#   skipped and $S$ halved (`GradScaler`, *dynamic loss scaling*).
#
# A few steps of a micro CLIP on one batch of 8 synthetic pictures. $S$ starts at $2^{16}$,
# which is too large: the first steps overflow and are skipped (the weights do not change,
# so the loss stays the same) while $S$ halves, then training proceeds. The overflows are
# expected, so the loop silences NumPy's warnings about them with `np.errstate`.
# (On a CPU this is *slower* than float32, since CPUs have no fast float16 matrix product;
# the point here is the mechanics. See `tutorials/running-on-a-gpu.md`.)

# %%
miniclip.manual_seed(0)
micro = CLIP(embed_dim=32, image_resolution=16, vision_layers=1, vision_width=64,
             vision_patch_size=8, context_length=16, vocab_size=4096, transformer_width=64,
             transformer_heads=1, transformer_layers=1)
collate = CLIPCollate.for_model(image_size=16, context_length=16)
images, tokens = collate([SyntheticShapes(8, image_size=16)[i] for i in range(8)])
images, tokens = Tensor(images), Tensor(tokens)

optimizer = paper_optimizer(micro, lr=1e-3, tower="vit")
scaler = GradScaler(init_scale=2.0 ** 16)
for step in range(8):
    scale_used = scaler.get_scale()
    with np.errstate(over="ignore", invalid="ignore"):
        with float16_parameters(micro):
            logits_per_image, logits_per_text = micro(images.half(), tokens)
        loss = clip_loss(logits_per_image, logits_per_text)      # float32
        stepped, grad_norm = mixed_precision_step(loss, optimizer, scaler, max_grad_norm=1.0)
    print(f"step {step}: S = {scale_used:7.0f}  loss {loss.item():.4f} ({loss.dtype})  "
          + (f"stepped, gradient norm {grad_norm:.3g}" if stepped else "skipped: a gradient overflowed"))
print("the master weights stay", micro.visual.conv1.weight.dtype)

# %% [markdown]
# **Where next.** `06_train_tiny_clip.ipynb` puts everything together and trains a tiny CLIP.

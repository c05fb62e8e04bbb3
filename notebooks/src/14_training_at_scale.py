# %% [markdown]
# # 14. Training at scale: one contrastive loss over many processes
#
# CLIP was trained with batches of 32,768 image–caption pairs spread over hundreds of GPUs.
# Splitting a batch over processes is routine for most losses, which are sums over
# examples; the contrastive loss is not: every image is scored against *every* caption of
# the batch. This notebook shows what that changes:
#
# 1. why a larger batch makes a harder, more informative task;
# 2. processes ("ranks") simulated as threads, and the all-gather of features;
# 3. the local and the global form of the gathered loss, equal in value;
# 4. why the backward of an all-gather must **sum** the gradients over the ranks
#    (exercise 14a), and the local loss (exercise 14b);
# 5. a data-parallel step on two ranks giving the single-process step;
# 6. the cost model: where adding workers stops paying.
#
# The code is `miniclip/distributed/`; `tutorials/distributed.md` is the chapter it
# follows. Real runs use MPI (`mpiexec -n 4 python -m miniclip.train --tiny
# --distributed`); here `miniclip.distributed.simulate` runs the ranks as threads of this
# process, with the same collectives, so nothing needs MPI.

# %%
import importlib.util
import pathlib
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np

import miniclip
import miniclip.functional as F
from miniclip import Function, Tensor, create_model
from miniclip.distributed import all_gather, data_parallel, global_loss, local_loss, simulate
from miniclip.distributed.gather import AllGather
from miniclip.grading import exercise
from miniclip.optim import SGD, GradScaler
from miniclip.training.step import train_step
from miniclip.training.loss import clip_loss
from miniclip.system.threads import limit_blas_threads

rng = np.random.default_rng(0)


def unit(rows):
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. The batch size changes the task
#
# For a batch of $N$ pairs the loss asks each image "which of these $N$ captions is
# yours?". The $N - 1$ others are the *negatives*. Take embeddings of a fixed quality:
# each caption's embedding is its image's (a random unit vector in 64 dimensions) plus a
# random vector about `noise` times as long, normalised again. The same embeddings face a harder
# question as $N$ grows: the chance that some negative looks more like the image than its
# own caption grows with the number of negatives. And the loss of a uniform guess is
# $\ln N$; the loss is the InfoNCE bound, $I(\text{image}; \text{text}) \ge \ln N - L$,
# so a batch of $N$ can certify at most $\ln N$ nats of shared information.

# %%
sizes = 2 ** np.arange(1, 13)                               # 2 ... 4096 pairs
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for noise in (1.5, 2.5, 4.0):
    top1, bound = [], []
    for n in sizes:
        images = unit(rng.standard_normal((n, 64)))
        texts = unit(images + noise * rng.standard_normal((n, 64)) / 8)   # |noise| ≈ noise
        logits = 20.0 * images @ texts.T                                   # a scale of 20
        top1.append((logits.argmax(axis=1) == np.arange(n)).mean())
        bound.append(np.log(n) - float(clip_loss(Tensor(logits)).item()))
    axes[0].plot(sizes, top1, "o-", ms=3, label=f"noise {noise}")
    axes[1].plot(sizes, bound, "o-", ms=3, label=f"noise {noise}")
axes[1].plot(sizes, np.log(sizes), "k:", label="ln N (the most a batch can certify)")
axes[0].set(xscale="log", xlabel="batch size N", ylabel="image → text top-1 in the batch",
            title="the same embeddings, more negatives")
axes[1].set(xscale="log", xlabel="batch size N", ylabel="nats", title="ln N − loss")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# With few negatives even noisy embeddings pick the right caption, and the loss cannot tell
# good embeddings from better ones: $\ln N - L$ is capped at $\ln N$. With thousands of
# negatives the task separates them. That is one reason for CLIP's batch of 32,768.
# The other side is memory: the logits are an $N \times N$ matrix, 4.3 GB in float32 at
# $N = 32{,}768$, plus about as much again for each softmax the backward keeps.
#
# ## 2. Ranks, simulated
#
# Data parallelism gives each of $W$ processes (*ranks*) the whole model and $b = N/W$
# pairs. Each computes the features of its own pairs, $I_r, T_r$ $[b, E]$; the loss needs
# all of them, so each rank **all-gathers** them: afterwards every rank holds
# $I = [I_0; I_1; \dots; I_{W-1}]$ $[N, E]$, in rank order.
#
# `simulate(W, function)` runs `function(world)` in $W$ threads; `world.rank` and
# `world.size` say who is who, and `world.all_gather`, `world.all_reduce_` and
# `world.broadcast_` meet at a barrier as MPI's collectives do.

# %%
def show_gather(world):
    mine = np.full((2, 3), float(world.rank))                    # this rank's 2 rows
    return world.all_gather(mine)[:, 0]                           # [W·2]: who sent each row


for rank, rows in enumerate(simulate(3, show_gather)):
    print(f"rank {rank} holds the rows of ranks {rows.astype(int).tolist()}")

# %% [markdown]
# ## 3. The gathered loss, global and local
#
# With $s = e^t$ and unit features, the single-process loss of the global batch is
# $L = \tfrac12\big[\tfrac1N \sum_i \mathrm{ce}_i + \tfrac1N \sum_j \mathrm{ce}'_j\big]$,
# the mean cross-entropy of the rows (image $i$ against all texts) and of the columns
# (text $j$ against all images) of $s\, I T^\top$.
#
# * **`global_loss`**: every rank builds the whole $[N, N]$ matrix and computes $L$ itself.
# * **`local_loss`**: rank $r$ builds only *its* rows (its images against all $N$ texts)
#   and *its* columns (its texts against all images), two $[b, N]$ blocks, with labels
#   $r b, \dots, r b + b - 1$:
#   $L_r = \tfrac12\big[\tfrac1b \sum_{i \in r} \mathrm{ce}_i + \tfrac1b \sum_{j \in r} \mathrm{ce}'_j\big]$.
#
# Every row and every column belongs to exactly one rank and $N = W b$, so
# $\tfrac1W \sum_r L_r = \tfrac{1}{Wb}\cdot\tfrac12 \big[\sum_i \mathrm{ce}_i + \sum_j \mathrm{ce}'_j\big] = L$:
# the mean of the local losses **is** the global loss, at $1/W$ of the memory. On four ranks
# of eight pairs each:

# %%
W, b, E = 4, 8, 16
all_images, all_texts = unit(rng.standard_normal((2, W * b, E)))
t = Tensor(np.array(np.log(1 / 0.07)))                           # the paper's initial scale


def losses_on_rank(world):
    rows = slice(world.rank * b, (world.rank + 1) * b)
    mine = Tensor(all_images[rows]), Tensor(all_texts[rows])
    return (local_loss(world, *mine, t).item(), global_loss(world, *mine, t).item())


per_rank = np.array(simulate(W, losses_on_rank))                  # [W, 2]
single = clip_loss(t.exp() * Tensor(all_images) @ Tensor(all_texts).T).item()
print("local losses of the ranks:", per_rank[:, 0].round(4), "-> mean", per_rank[:, 0].mean().round(6))
print("global loss on each rank: ", per_rank[:, 1].round(6))
print("one process, whole batch: ", round(single, 6))
assert abs(per_rank[:, 0].mean() - single) < 1e-12 and np.allclose(per_rank[:, 1], single, atol=1e-12)

# %% [markdown]
# ## 4. The backward of an all-gather
#
# Data-parallel training averages the ranks' gradients, so it descends
# $J = \tfrac1W \sum_s L_s$. Rank $r$'s features $x_r$ enter **every** rank's loss, through
# every rank's copy of the gathered $y = [x_0; \dots; x_{W-1}]$: rank $r$'s texts are
# negatives in every other rank's rows. By the chain rule,
#
# $$\frac{\partial J}{\partial x_r} = \frac1W \sum_s \left(\frac{\partial L_s}{\partial y}\right)_{\text{rows of } r}.$$
#
# Rank $s$ knows only its own $G_s = \partial L_s/\partial y$ $[N, E]$. So the backward of
# the all-gather **sums** the $G_s$ over the ranks (an all-reduce) and keeps its own rows,
# $r b$ to $r b + b - 1$; the $1/W$ is the gradient averaging every parameter gets anyway.
# PyTorch's `torch.distributed.all_gather` has no backward, and the common shortcut (gather
# without gradient, put the local tensor back in its rows) keeps only the $s = r$ term:
# the negatives are pushed apart only within each rank's own rows.
#
# ### Exercise 14a: the all-gather's backward
#
# `Gather` below is an autograd `Function` whose forward is `world.all_gather`. Write its
# backward: given `grad_y` $[W b, \dots]$, this rank's gradient of its own loss with
# respect to the gathered array, return this rank's $[b, \dots]$ slice of the sum over
# ranks. `world.all_reduce_(array)` replaces `array` by the sum over the ranks *in place*,
# and `grad_y` may be shared with other parts of the graph: reduce a copy.

# %%
class Gather(Function):
    """``x [b, ...]`` of every rank -> ``[W b, ...]`` in rank order; differentiable."""

    def __init__(self, world):
        self.world = world

    def forward(self, x):
        self.b = x.shape[0]
        return self.world.all_gather(x)

    def backward(self, grad_y):
        # BEGIN SOLUTION 14a: the all-gather's backward
        total = self.world.all_reduce_(grad_y.copy())              # Σ over ranks of G_s
        start = self.world.rank * self.b
        return total[start:start + self.b]                         # this rank's rows
        # END SOLUTION


def gather(world, x):
    return Gather(world)(x)

# %% [markdown]
# The check compares each rank's gradient with miniclip's `all_gather` on a loss that is
# different on every rank, and with finite differences of $\sum_s L_s$ computed in one
# process (a loss that only the sum can get right):

# %%
def gathered_loss(world_rank, y, weights):
    """A loss that depends on every row of the gathered ``y``, differently on each rank."""
    return (F.tanh(y) * Tensor(weights[world_rank])).sum()


with exercise("14a: the all-gather's backward") as check:
    check_rng = np.random.default_rng(1)
    x_all = check_rng.standard_normal((3 * 2, 4))                  # 3 ranks, 2 rows each
    weights = check_rng.standard_normal((3, 6, 4))

    def rank_gradients(world):
        grads = []
        for gather_function in (gather, all_gather):
            x = Tensor(x_all[2 * world.rank:2 * world.rank + 2], requires_grad=True)
            gathered_loss(world.rank, gather_function(world, x), weights).backward()
            grads.append(x.grad)
        return grads

    def grad_y_is_kept(world):
        gate = Gather(world)
        gate.b = 2
        grad_y = np.full((6, 4), world.rank + 1.0)
        gate.backward(grad_y)
        return bool((grad_y == world.rank + 1.0).all())

    check.true("grad_y", all(simulate(3, grad_y_is_kept)),
               "backward changed grad_y in place: all-reduce a copy (grad_y may be shared "
               "with other parts of the graph)")
    yours, reference = (np.concatenate(g) for g in zip(*simulate(3, rank_gradients)))
    check.close("gradients, all ranks, against miniclip's all_gather", yours, reference)
    # d(sum_s L_s)/dx: every rank's loss reaches every row of x
    check.close("gradients against the sum over ranks, by hand", yours,
                (1 - np.tanh(x_all) ** 2) * weights.sum(axis=0))

# %% [markdown]
# ### Exercise 14b: the local loss
#
# Write `my_local_loss(world, image_features, text_features, logit_scale)` for unit
# features $[b, E]$ and the 0-d tensor `logit_scale` $= t$, the logarithm of the scale
# (the logits are multiplied by $s = e^t$, as in the model's `logit_scale`): gather both
# with your `gather`, build this rank's two $[b, N]$ blocks of logits $s\, I_r T^\top$ and $s\, T_r I^\top$, and return the
# mean of their cross-entropies (`F.cross_entropy(logits, labels)`, labels a `Tensor` of
# ints), halved as in the formula of section 3.

# %%
def my_local_loss(world, image_features, text_features, logit_scale):
    """L_r: this rank's images against all texts and its texts against all images."""
    # BEGIN SOLUTION 14b: the local loss
    b = image_features.shape[0]
    images, texts = gather(world, image_features), gather(world, text_features)   # [N, E]
    scale = logit_scale.exp()
    labels = Tensor(world.rank * b + np.arange(b))
    return (F.cross_entropy(scale * image_features @ texts.T, labels)
            + F.cross_entropy(scale * text_features @ images.T, labels)) / 2
    # END SOLUTION


# %% [markdown]
# The check runs three ranks: the mean of your local losses must be the single-process
# loss, and the feature and temperature gradients must be miniclip's `local_loss`'s:

# %%
with exercise("14b: the local loss") as check:
    check_rng = np.random.default_rng(2)
    images_all, texts_all = unit(check_rng.standard_normal((2, 3 * 4, 5)))

    def rank_results(world):
        results = []
        for loss_function in (my_local_loss, local_loss):
            rows = slice(4 * world.rank, 4 * world.rank + 4)
            mine = Tensor(images_all[rows], requires_grad=True)
            scale = Tensor(np.array(2.0), requires_grad=True)
            loss = loss_function(world, mine, Tensor(texts_all[rows]), scale)
            loss.backward()
            results.append((loss.item(), mine.grad, scale.grad))
        return results

    ranks = simulate(3, rank_results)
    single = clip_loss(Tensor(np.exp(2.0) * images_all @ texts_all.T)).item()
    mean = np.mean([r[0][0] for r in ranks])
    scaled_by_t = clip_loss(Tensor(2.0 * images_all @ texts_all.T)).item()
    check.true("the scale", not np.isclose(mean, scaled_by_t),
               "the losses are those of logits scaled by t = 2 itself: scale by e^t")
    check.true("the halving", not np.isclose(mean, 2 * single),
               "the losses are twice the loss: halve the sum of the two cross-entropies")
    check.close("mean of the local losses", mean, single)
    for rank, (yours, reference) in enumerate(ranks):
        check.close(f"rank {rank}: loss", yours[0], reference[0])
        check.close(f"rank {rank}: gradient of the image features", yours[1], reference[1])
        check.close(f"rank {rank}: gradient of t", yours[2], reference[2])

# %% [markdown]
# How wrong is the shortcut on the contrastive loss? Below, miniclip's `AllGather.backward`
# is replaced for a moment by one that keeps rank $r$'s rows of its own $G_r$ only. For $W$
# ranks of 4 pairs each, the image features' gradients of `local_loss` are compared with
# the right ones. What is lost is the part that comes through the other ranks' columns
# (their texts scored against all images, this rank's among them as negatives); this
# rank's own rows reach its images directly, without the gather, and are kept.

# %%
def shortcut_backward(self, grad_y):                     # no all-reduce: only this rank's G
    start = self.world.rank * self.n
    return grad_y[start:start + self.n]


def image_gradients(W, images, texts):
    def rank(world):
        rows = slice(4 * world.rank, 4 * world.rank + 4)
        mine = Tensor(images[rows], requires_grad=True)
        local_loss(world, mine, Tensor(texts[rows]), t).backward()
        return mine.grad
    return np.concatenate(simulate(W, rank))


workers, errors = (1, 2, 4, 8, 16), []
for W_ in workers:
    images, texts = unit(rng.standard_normal((2, 4 * W_, E)))
    right = image_gradients(W_, images, texts)
    with mock.patch.object(AllGather, "backward", shortcut_backward):
        wrong = image_gradients(W_, images, texts)
    errors.append(np.linalg.norm(wrong - right) / np.linalg.norm(right))
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(workers, errors, "o-")
ax.set(xscale="log", xlabel="ranks W (4 pairs each)", ylabel="|shortcut − right| / |right|",
       title="the image features' gradient without the sum")
ax.set_xticks(workers, [str(w) for w in workers])
plt.tight_layout()
plt.show()

# %% [markdown]
# With one rank nothing is lost. From two ranks on, the shortcut's gradient is off by a
# fifth to a third of its length, on every step, in a direction that pulls the negatives
# of other ranks' batches no further apart: training still runs and the loss still falls,
# which is why the mistake is easy to miss. Only a comparison like this one, against the
# single-process gradient, shows it (`tests/test_distributed.py` makes it for every
# parameter).
#
# ## 5. A data-parallel step equals the single-process step
#
# The training step is the same one as in a single process (`miniclip.training.step.train_step`);
# `miniclip.distributed.data_parallel(world)` hands it two hooks: each rank encodes its
# rows and computes the local loss with the gathered features, and after the backward the
# parameter gradients are averaged over the ranks (an all-reduce, in buckets), so that
# every rank takes the same optimiser step. The mean of the ranks' losses is the loss of
# the global batch. One SGD step of a small CLIP on a batch of 8, on two ranks of 4 and
# in one process, from the same weights:

# %%
def small_clip():
    miniclip.manual_seed(0)
    return create_model("tiny-vit", vision_width=64, transformer_width=64, vision_layers=1,
                        transformer_layers=1)


images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
tokens = rng.integers(1, 1000, (8, 10))
tokens[:, -1] = small_clip().vocab_size - 1                        # the end token: the largest id
models = [small_clip() for _ in range(3)]                           # rank 0, rank 1, one process
off = GradScaler(enabled=False)


def parallel(world):
    model = models[world.rank]
    rows = slice(4 * world.rank, 4 * world.rank + 4)
    loss = train_step(model, SGD(model.parameters(), lr=0.5), off, images[rows], tokens[rows],
                      1, "cpu", None, **data_parallel(world))
    return world.mean(loss)


losses = simulate(2, parallel)
single_loss = train_step(models[2], SGD(models[2].parameters(), lr=0.5), off, images, tokens,
                         1, "cpu", 0)
difference = max(np.abs(p.numpy() - q.numpy()).max() / (np.abs(q.numpy()).max() + 1e-12)
                 for p, q in zip(models[0].parameters(), models[2].parameters()))
print(f"loss: two ranks {losses[0]:.6f}, one process {single_loss:.6f}")
print(f"largest relative difference of a weight after the step: {difference:.1e}")
print("the two ranks' weights are identical:",
      all(np.array_equal(p.numpy(), q.numpy())
          for p, q in zip(models[0].parameters(), models[1].parameters())))
assert difference < 1e-5

# %% [markdown]
# ## 6. The cost model: when more workers stop paying
#
# `scripts/scaling_table.py` models a step of the paper's batch of 32,768 over $p$
# workers (nothing measured: compute counted from the configurations at 40 TFLOP/s per
# worker, communication at a given link speed). A ring all-reduce sends about
# $2\,(p-1)/p$ times the gradients' bytes per worker, *whatever $p$ is*, while the compute
# per worker falls as $1/p$. So the ratio of communication to compute grows about linearly
# with the number of workers:

# %%
here = pathlib.Path.cwd().resolve()     # notebooks/ or notebooks/student/
scripts = next(folder / "scripts" for folder in (here, *here.parents)
               if (folder / "scripts" / "scaling_table.py").exists())
spec = importlib.util.spec_from_file_location("scaling_table", scripts / "scaling_table.py")
scaling_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scaling_table)

table = list(scaling_table.rows())
fig, ax = plt.subplots(figsize=(8, 3.8))
for model_name in scaling_table.PARAMETERS:
    rows = [row for row in table if row[0] == model_name]
    workers = [row[1] for row in rows]
    for share, gbit, style in ((-2, scaling_table.LINKS_GBIT[0], "o-"),
                               (-1, scaling_table.LINKS_GBIT[1], "s--")):
        ax.plot(workers, [row[share] for row in rows], style, label=f"{model_name}, {gbit} Gbit/s")
ax.axhline(1, color="grey", ls=":")
ax.set(xscale="log", yscale="log", xlabel="workers p (global batch 32,768)",
       ylabel="communication / compute", title="data parallelism's cost model")
ax.set_xticks(scaling_table.WORKERS, [str(p) for p in scaling_table.WORKERS])
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Above the dotted line a step spends longer talking than computing. On 25 Gbit/s links
# that happens before 128 workers; on 100 Gbit/s, near 256. The ways out are the ones large
# runs take: a bigger batch per worker (more compute per byte sent, which the contrastive
# loss wants anyway), faster networks, and overlapping the all-reduce with the backward
# (PyTorch's DDP does; miniclip does not, `distributed/data_parallel.py` says why).
#
# **Where next.** `tutorials/distributed.md` launches real runs with `mpiexec` and Slurm.

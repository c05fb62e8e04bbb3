# %% [markdown]
# # 9. Optimisers: SGD, momentum, Adam and AdamW
#
# Backpropagation gives the gradient $g = \nabla L(w)$; an **optimiser** turns it into a
# step. CLIP was trained with AdamW, and this notebook derives it in four moves:
#
# 1. plain gradient descent, and the learning-rate limit that curvature puts on it;
# 2. momentum;
# 3. Adam: per-parameter step sizes, and the **bias correction** its running averages need
#    (exercise 9a: write the AdamW update);
# 4. AdamW's *decoupled* weight decay, and why adding $\lambda w$ to the gradient is not the
#    same under Adam;
#
# and then races them on an ill-conditioned valley. The code is `miniclip/optim/`
# (`SGD`, `AdamW`). The exercise is a function with a `raise NotImplementedError` line for
# you to replace, followed by a `with exercise(...)` cell that checks it.

# %%
import matplotlib.pyplot as plt
import numpy as np

from miniclip import Tensor
from miniclip.grading import exercise
from miniclip.optim import SGD, AdamW
from miniclip.system.threads import limit_blas_threads

rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. Gradient descent and curvature
#
# SGD steps against the gradient, $w \leftarrow w - \eta\, g$. On a quadratic valley
# $L(w) = \tfrac12 \sum_i h_i w_i^2$ the gradient is $h_i w_i$, so each coordinate evolves
# as $w_i \leftarrow (1 - \eta h_i)\, w_i$: it shrinks only if $|1 - \eta h_i| < 1$, that is
# $\eta < 2/h_\text{max}$. The **steepest** direction caps the learning rate, and along the
# flattest direction each step then gains only a factor $1 - \eta h_\text{min}$: with a
# curvature ratio $h_\text{max}/h_\text{min}$ of 100, about 1% per step. Our valley:
#
# $$L(w) = \tfrac12\,(w_0^2 + 100\, w_1^2), \qquad \text{minimum at } (0, 0).$$

# %%
curvature = np.array([1.0, 100.0])


def valley(w):
    return 0.5 * (curvature * w * w).sum()


def run(make_optimizer, steps=150, start=(-4.0, 1.0)):
    """The path of w under an optimiser made by ``make_optimizer([w])``."""
    w = Tensor(np.array(start), requires_grad=True)
    optimizer = make_optimizer([w])
    path = [w.numpy().copy()]
    for _ in range(steps):
        loss = (Tensor(curvature) * w * w).sum() * 0.5
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        path.append(w.numpy().copy())
    return np.array(path)


for lr in (0.019, 0.021):
    end = run(lambda p: SGD(p, lr=lr), steps=100)[-1]
    print(f"SGD, lr {lr}: after 100 steps w = {np.array2string(end, precision=3)}, "
          f"loss {valley(end):.3g}")

# %% [markdown]
# Just below $2/100$ SGD converges, but $w_0$ has barely moved; just above, $w_1$ blows up.
#
# ## 2. Momentum
#
# Momentum accumulates a velocity, $b \leftarrow \mu b + g$ and $w \leftarrow w - \eta b$.
# Along a consistent direction the steps add up to about $\eta g/(1-\mu)$, ten times larger
# for $\mu = 0.9$, while components that flip sign every step (the oscillation across the
# steep direction) partly cancel. `SGD(params, lr, momentum=0.9)`.
#
# ## 3. Adam
#
# Adam gives every parameter its own step size. It keeps running averages of the gradient
# and of its square,
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,$$
#
# and steps by $\eta\, m_t / \sqrt{v_t}$: a mean over a root-mean-square, about $\pm\eta$ per
# step whatever the gradient's scale. A steep coordinate and a flat one move at the same
# speed, and multiplying the loss by 1000 changes nothing.
#
# **Bias correction.** Both averages start at 0. Unrolling the recursion,
# $m_t = (1-\beta_1)\sum_{s=1}^{t} \beta_1^{t-s} g_s$, so if the gradients have a steady mean
# $\bar g$, $\mathbb E[m_t] = (1-\beta_1)\,\bar g \sum_{s=1}^{t}\beta_1^{t-s} = (1 - \beta_1^t)\,\bar g$:
# too small by the factor $1 - \beta_1^t$, which is 0.1 at the first step for
# $\beta_1 = 0.9$ and goes to 1 later. The same holds for $v_t$ with $\beta_2$. So Adam divides
# them out:
#
# $$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
# w \leftarrow w - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$
#
# Without the correction the early steps are *not* just smaller: with $\beta_2 = 0.999$ the
# denominator $\sqrt{v_t}$ is far more biased than $m_t$, and a constant gradient gives a
# first step of $0.1/\sqrt{0.001} \approx 3.2$ times the learning rate:

# %%
steps = np.arange(1, 3001)
beta1, beta2 = 0.9, 0.999
m_raw, v_raw = 1 - beta1 ** steps, 1 - beta2 ** steps     # m_t and v_t for g = 1 at every step
plt.figure(figsize=(7, 3.2))
plt.plot(steps, m_raw / np.sqrt(v_raw), label="without bias correction")
plt.plot(steps, np.ones_like(steps, dtype=float), label="with bias correction")
plt.xscale("log")
plt.xlabel("step t")
plt.ylabel("step size / learning rate")
plt.title("Adam's step for a constant gradient g = 1 (β1 = 0.9, β2 = 0.999)")
plt.legend()
plt.show()

# %% [markdown]
# ## 4. AdamW: decoupled weight decay
#
# Weight decay pulls weights towards 0. With SGD, adding $\lambda w$ to the gradient
# ("L2 regularisation") and shrinking the weights directly are the same thing. With Adam
# they are not: $\lambda w$ added to $g$ is divided by $\sqrt{\hat v}$ with the rest, so
# weights with large gradients are barely decayed. AdamW (Loshchilov and Hutter) decays
# the weights directly, before the Adam step: $w \leftarrow w\,(1 - \eta\lambda)$. CLIP
# uses $\lambda = 0.2$ on its weight matrices (`05_contrastive_loss.ipynb`).
#
# ### Exercise 9a: the AdamW update
#
# Write one AdamW step for a NumPy array, in the order of `torch.optim.AdamW` (and of the
# docstring of miniclip's `AdamW`): decay the weights, update $m$ and $v$, correct both for
# their bias with the step count $t$ (from 1), step. Return the new $w$, $m$ and $v$ (new
# arrays; do not modify the inputs).

# %%
def adamw_step(w, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """One AdamW step at step count ``t`` (1 for the first): returns (w, m, v)."""
    # BEGIN SOLUTION 9a: the AdamW update
    beta1, beta2 = betas
    w = w * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    # END SOLUTION


# %% [markdown]
# The check runs miniclip's `AdamW` and your function side by side for 20 steps on random
# gradients, with CLIP's settings, and compares the weights after every step:

# %%
with exercise("9a: the AdamW update") as check:
    settings = dict(lr=0.1, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    start = rng.standard_normal((3, 4))
    reference = Tensor(start.copy(), requires_grad=True)
    optimizer = AdamW([reference], **settings)
    w, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, 21):
        g = rng.standard_normal(start.shape) * 10.0 ** rng.integers(-3, 3)
        reference.grad = g.copy()
        optimizer.step()
        given = (w, g, m, v)
        saved = [a.copy() for a in given]
        w, m, v = adamw_step(*given, t, **settings)
        check.true(f"step {t}", all(map(np.array_equal, given, saved)),
                   "changed the arrays it was given: return new ones instead")
        check.close(f"weights after step {t}", w, reference.numpy(), atol=1e-9)

# %% [markdown]
# ## The race
#
# 150 steps from $(-4, 1)$ on the valley, each optimiser at a good learning rate for it.
#
# * SGD zigzags across the steep direction and then crawls along the flat one: its loss
#   falls by a constant factor per step, $(1 - \eta h_\text{min})^2 \approx 0.96$.
# * Momentum travels along the valley floor many times faster, but swings across it.
# * Adam moves both coordinates at about the same speed from the first step (its steps
#   are about $\eta$ in *each* coordinate: a per-coordinate rescaling that suits this
#   axis-aligned valley) and reaches the minimum on a smooth path; its own momentum
#   ($\beta_1$) overshoots a little, the waves in its loss curve.

# %%
racers = {"SGD, lr 0.019": lambda p: SGD(p, lr=0.019),
          "SGD + momentum 0.9, lr 0.01": lambda p: SGD(p, lr=0.01, momentum=0.9),
          "Adam, lr 0.1": lambda p: AdamW(p, lr=0.1, weight_decay=0.0)}
paths = {name: run(make) for name, make in racers.items()}

fig, axes = plt.subplots(1, 2, figsize=(13, 4))
grid0, grid1 = np.meshgrid(np.linspace(-4.5, 1, 200), np.linspace(-1.3, 1.3, 200))
axes[0].contour(grid0, grid1, 0.5 * (grid0 ** 2 + 100 * grid1 ** 2), levels=np.geomspace(0.01, 100, 12),
                colors="lightgrey")
for name, path in paths.items():
    axes[0].plot(path[:, 0], path[:, 1], ".-", ms=3, lw=0.8, label=name)
    axes[1].plot([valley(w) for w in path], label=name)
axes[0].plot(0, 0, "k*", ms=10)
axes[0].set(title="paths on L = (w0² + 100 w1²) / 2", xlabel="w0", ylabel="w1")
axes[1].set(yscale="log", xlabel="step", ylabel="loss", title="loss")
axes[1].legend()
plt.tight_layout()
plt.show()
for name, path in paths.items():
    print(f"{name:30s} loss after 150 steps: {valley(path[-1]):.2e}")

# %% [markdown]
# And the scale invariance: the same race on the loss multiplied by 1000 (the gradients
# too). SGD and momentum at their old learning rates diverge; Adam takes the same path, since
# $\hat m/\sqrt{\hat v}$ does not change when every gradient is multiplied by a constant
# (up to $\epsilon$).

# %%
curvature *= 1000
with np.errstate(over="ignore", invalid="ignore"):          # SGD overflows to inf, then NaN
    scaled = {name: run(make) for name, make in racers.items()}
curvature /= 1000
for name in racers:
    diverged = not np.isfinite(scaled[name]).all()
    print(f"{name:30s} on the loss x 1000: {'diverged' if diverged else 'converged'}, "
          f"same path as before: {np.allclose(scaled[name], paths[name], atol=1e-6)}")

# %% [markdown]
# **Where next.** `10_mixed_precision.ipynb` runs the same updates with half the bits.

# %% [markdown]
# # 8. Convolution, pooling and batch norm
#
# CLIP's ResNet image tower is convolutions, pools and batch norms, and even the ViT starts
# with a convolution (`04_towers.ipynb`). This notebook opens them up:
#
# 1. a convolution as **im2col**, pictured: copy every window into a column, then one
#    matrix product does all the work;
# 2. the backward pass: the adjoint of im2col, **col2im** (exercise 8a), and the gradients
#    of a convolution (exercise 8b);
# 3. average and max pooling as reductions over the same windows;
# 4. batch norm in training mode (batch statistics) and in evaluation mode (running
#    statistics), and why the two differ.
#
# The code: `miniclip/functional/conv.py` (`conv2d`, the pools, `_windows` and
# `_add_windows`, which are im2col and col2im) and `miniclip/functional/normalization.py`
# (`batch_norm`). Each exercise is a function with a `raise NotImplementedError` line for
# you to replace, followed by a `with exercise(...)` cell that checks it.

# %%
import matplotlib.pyplot as plt
import numpy as np

import miniclip.functional as F
from miniclip import Tensor, nn
from miniclip.grading import exercise
from miniclip.system.threads import limit_blas_threads

rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. A convolution is one matrix product
#
# A convolution with $O$ kernels of size $C \times k \times k$ and stride $s$ computes, for
# every image $n$, output channel $o$ and output pixel $(r, c)$,
#
# $$y_{n,o,r,c} = b_o + \sum_{i=1}^{C}\sum_{u,v=0}^{k-1} W_{o,i,u,v}\; x_{n,i,\,rs+u,\,cs+v},$$
#
# with $H_\text{out} = \lfloor (H - k)/s \rfloor + 1$ (a window must fit). Written as loops,
# that is six nested loops of tiny multiplications: hopeless in Python. But every output
# pixel is the dot product of one flattened kernel, $C k^2$ numbers, with one flattened
# window of the input. So copy each window into a **column** of a matrix (im2col, "image to
# columns"); then all kernels times all windows is one matrix product,
# `W.reshape(O, C·k·k) @ columns`, which BLAS runs at full speed.
#
# `im2col` below makes the columns with one strided slice per kernel offset $(u, v)$:
# element $(u, v)$ of every window is the pixel grid `x[:, :, u::s, v::s]`, so $k^2$ vectorised
# copies fill the whole matrix, however large the image.

# %%
def output_size(size, k, stride):
    return (size - k) // stride + 1


def im2col(x, k, stride=1):
    """x [N, C, H, W] -> columns [N, C·k·k, H_out·W_out]: column j is the window of output
    pixel j (row-major), its rows in (channel, u, v) order, like a flattened kernel."""
    n, c, h, w = x.shape
    oh, ow = output_size(h, k, stride), output_size(w, k, stride)
    cols = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            cols[:, :, u, v] = x[:, :, u:u + stride * oh:stride, v:v + stride * ow:stride]
    return cols.reshape(n, c * k * k, oh * ow)


def conv2d(x, weight, bias, stride=1):
    """The convolution above, through im2col: [N, C, H, W] -> [N, O, H_out, W_out]."""
    o, _, k, _ = weight.shape
    oh, ow = output_size(x.shape[2], k, stride), output_size(x.shape[3], k, stride)
    y = weight.reshape(o, -1) @ im2col(x, k, stride) + bias[:, None]   # [N, O, H_out·W_out]
    return y.reshape(x.shape[0], o, oh, ow)


x = rng.standard_normal((2, 3, 7, 7))
weight, bias = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
for stride in (1, 2):
    ours = conv2d(x, weight, bias, stride)
    library = F.conv2d(Tensor(x), Tensor(weight), Tensor(bias), stride=stride).numpy()
    print(f"stride {stride}: output {ours.shape}, same as F.conv2d: {np.allclose(ours, library)}")

# %% [markdown]
# Here is the matrix for one channel of a 4×4 image whose pixels are numbered 0–15, a 2×2
# kernel and stride 1: nine windows, so nine columns of four numbers each. The highlighted
# window, output pixel 5 (row 1, column 2), is column 5. Pixels in the middle are copied
# into up to four columns: im2col costs $k^2$ times the memory of the input (with stride 1),
# the price of turning a convolution into one large, fast matrix product.

# %%
picture = np.arange(16.0).reshape(1, 1, 4, 4)
columns = im2col(picture, k=2)[0]                             # [4 rows, 9 columns]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 2.2]})
axes[0].imshow(np.zeros((4, 4)), cmap="Greys", vmin=0, vmax=1)
axes[0].add_patch(plt.Rectangle((1.5, 0.5), 2, 2, fill=True, color="tab:orange", alpha=0.4))
for pixel in range(16):
    axes[0].text(pixel % 4, pixel // 4, pixel, ha="center", va="center")
axes[0].set(title="input x (pixel numbers), window 5", xticks=[], yticks=[])
highlight = np.zeros_like(columns)
highlight[:, 5] = 1
axes[1].imshow(highlight, cmap="Oranges", vmin=0, vmax=2.5)
for (row, col), value in np.ndenumerate(columns):
    axes[1].text(col, row, int(value), ha="center", va="center")
axes[1].set_xticks(range(9), [f"out {j}" for j in range(9)], fontsize=8)
axes[1].set_yticks(range(4), ["(u,v)=(0,0)", "(0,1)", "(1,0)", "(1,1)"])
axes[1].set_title("im2col(x): one column per output pixel, one row per kernel offset")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The backward pass: col2im
#
# im2col is linear: `columns = A x` for a matrix $A$ of 0s and 1s that copies pixels. The
# backward pass of a linear map is its transpose: given $g = \partial L/\partial\,\text{columns}$,
#
# $$\frac{\partial L}{\partial x} = A^\top g,$$
#
# and $A^\top$ sends every entry of $g$ back to the pixel it was copied from, **adding**
# where several windows copied the same pixel. That is *col2im*. (One way to be sure you
# have a transpose: $\langle A x, g\rangle = \langle x, A^\top g\rangle$ for every $x$ and
# $g$, the check below uses it.)
#
# ### Exercise 8a: col2im
#
# Write `col2im(columns, x_shape, k, stride)`: start from zeros of `x_shape` and, for every
# kernel offset $(u, v)$, add row block $(u, v)$ of the columns onto the pixel grid
# `x[:, :, u::s, v::s]` it was copied from: the mirror image of `im2col`, with `+=` for `=`.

# %%
def col2im(columns, x_shape, k, stride=1):
    """The transpose of im2col: columns [N, C·k·k, H_out·W_out] -> [N, C, H, W], each
    entry added to the pixel it was copied from."""
    # BEGIN SOLUTION 8a: col2im
    n, c, h, w = x_shape
    oh, ow = output_size(h, k, stride), output_size(w, k, stride)
    cols = columns.reshape(n, c, k, k, oh, ow)
    x = np.zeros(x_shape, dtype=columns.dtype)
    for u in range(k):
        for v in range(k):
            x[:, :, u:u + stride * oh:stride, v:v + stride * ow:stride] += cols[:, :, u, v]
    return x
    # END SOLUTION


# %%
with exercise("8a: col2im") as check:
    for shape, k, stride in [((2, 3, 6, 6), 3, 1), ((1, 2, 7, 5), 3, 2), ((1, 1, 4, 4), 2, 2)]:
        x_test = rng.standard_normal(shape)
        g = rng.standard_normal(im2col(x_test, k, stride).shape)
        check.close(f"<im2col(x), g> - <x, col2im(g)> for x {shape}, k={k}, stride={stride}",
                    np.vdot(im2col(x_test, k, stride), g) - np.vdot(x_test, col2im(g, shape, k, stride)),
                    0.0, atol=1e-9)
    check.close("col2im of ones, 3x3 input, k=2", col2im(np.ones((1, 4, 4)), (1, 1, 3, 3), 2)[0, 0],
                [[1, 2, 1], [2, 4, 2], [1, 2, 1]])

# %% [markdown]
# `col2im` of all-ones columns counts how many windows cover each pixel, which is how many
# gradient contributions each pixel collects. With stride equal to the kernel (ViT's patch
# convolution, ResNet's pools) the windows tile the image and every count is 1; with
# stride 1 the middle pixels are in $k^2$ windows and the corners in one.

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
for ax, (k, stride) in zip(axes, [(3, 1), (3, 2), (4, 4)]):
    shape = (1, 1, 12, 12)
    covered = col2im(np.ones(im2col(np.zeros(shape), k, stride).shape), shape, k, stride)[0, 0]
    image = ax.imshow(covered, cmap="viridis", vmin=0, vmax=9)
    ax.set(title=f"windows covering each pixel\nk={k}, stride={stride}", xticks=[], yticks=[])
plt.colorbar(image, ax=axes, fraction=0.02)
plt.show()

# %% [markdown]
# ### Exercise 8b: the gradients of a convolution
#
# With the columns $X_n$ `[C·k·k, P]` of image $n$ and the flattened kernels $W$ `[O, C·k·k]`,
# the forward pass is $Y_n = W X_n + b$, `[O, P]`. For an upstream gradient $G_n$ shaped
# like $Y_n$, the rules of a matrix product give
#
# $$\frac{\partial L}{\partial W} = \sum_n G_n X_n^\top, \qquad
# \frac{\partial L}{\partial b} = \sum_{n,p} G_{n,\cdot,p}, \qquad
# \frac{\partial L}{\partial X_n} = W^\top G_n, \qquad
# \frac{\partial L}{\partial x} = \operatorname{col2im}\!\Big(\frac{\partial L}{\partial X}\Big).$$
#
# Write `conv2d_backward`. (`a @ b` on `[N, ·, ·]` arrays multiplies image by image, and
# `np.swapaxes(a, 1, 2)` transposes each.)

# %%
def conv2d_backward(x, weight, grad_output, stride=1):
    """(dL/dx, dL/dweight, dL/dbias) of conv2d(x, weight, bias, stride), given
    grad_output = dL/dy [N, O, H_out, W_out]."""
    # BEGIN SOLUTION 8b: the gradients of a convolution
    n, o = grad_output.shape[:2]
    k = weight.shape[2]
    columns = im2col(x, k, stride)                              # [N, C·k·k, P]
    g = grad_output.reshape(n, o, -1)                           # [N, O, P]
    grad_weight = (g @ np.swapaxes(columns, 1, 2)).sum(axis=0).reshape(weight.shape)
    grad_bias = g.sum(axis=(0, 2))
    grad_x = col2im(weight.reshape(o, -1).T @ g, x.shape, k, stride)
    return grad_x, grad_weight, grad_bias
    # END SOLUTION


# %% [markdown]
# The check runs miniclip's `F.conv2d` forward and backward with autograd and compares:

# %%
with exercise("8b: the gradients of a convolution") as check:
    for stride in (1, 2):
        tensors = [Tensor(a, requires_grad=True) for a in (x, weight, bias)]
        y = F.conv2d(*tensors, stride=stride)
        upstream = rng.standard_normal(y.shape)
        y.backward(upstream)
        for name, got, tensor in zip(["dL/dx", "dL/dweight", "dL/dbias"],
                                     conv2d_backward(x, weight, upstream, stride), tensors):
            check.close(f"{name}, stride {stride}", got, tensor.grad)

# %% [markdown]
# miniclip's `Conv2d` (`functional/conv.py`) is this with two refinements: its "columns" are
# a strided *view* of the input (`_windows`, no copy until the matrix product needs one),
# and when the windows tile the image without overlap, `_add_windows` (col2im) puts them
# back with one reshape instead of $k^2$ additions.
#
# ## 3. Pooling: a reduction over the same windows
#
# Pooling has no weights: it reduces each window to one number. **Average pooling** is the
# mean of each window's column; its backward spreads each output gradient evenly, $g/k^2$
# to every pixel of the window (col2im of the spread columns). **Max pooling** keeps the
# largest element; its backward sends the whole gradient to that one pixel and 0 to the
# others, so only the "winners" learn. Below, a 2×2 max pool of a random 6×6 map: the
# gradient of the sum of its outputs marks the winner of every window.

# %%
feature_map = Tensor(rng.standard_normal((1, 1, 6, 6)), requires_grad=True)
F.max_pool2d(feature_map, 2).sum().backward()
averaged = Tensor(feature_map.numpy(), requires_grad=True)
F.avg_pool2d(averaged, 2).sum().backward()
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
for ax, (title, values, cmap) in zip(axes, [("input", feature_map.numpy()[0, 0], "RdBu_r"),
                                            ("max pool: d out / d input", feature_map.grad[0, 0], "Greens"),
                                            ("avg pool: d out / d input", averaged.grad[0, 0], "Greens")]):
    ax.imshow(values, cmap=cmap, vmin=-2.5 if cmap == "RdBu_r" else 0, vmax=2.5 if cmap == "RdBu_r" else 1)
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, f"{value:.2g}", ha="center", va="center", fontsize=7)
    for line in (1.5, 3.5):
        ax.axhline(line, color="k", lw=1)
        ax.axvline(line, color="k", lw=1)
    ax.set(title=title, xticks=[], yticks=[])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Batch norm: training and evaluation differ
#
# A batch norm layer normalises each **channel** with a mean and variance over the batch and
# the pixels, $\hat x = (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon}$, then scales and shifts it
# by learned $\gamma, \beta$. In **training** mode $\mu_B$ and $\sigma_B^2$ are those of the
# current batch, so gradients flow through them too, and the layer keeps exponential
# moving averages, `running = 0.9 running + 0.1 batch`. In **evaluation** mode it uses those
# running averages instead: an image's output no longer depends on the other images in
# its batch, and a batch of one works.
#
# Feature maps whose channels have means 3 and −1 and standard deviations 2 and 0.5: the
# running statistics approach the true ones in a few dozen batches.

# %%
true_mean, true_std = np.array([3.0, -1.0]), np.array([2.0, 0.5])


def batch(size):
    return Tensor(true_mean[:, None, None] + true_std[:, None, None]
                  * rng.standard_normal((size, 2, 4, 4)))


norm = nn.BatchNorm2d(2).to(np.float64)
history = []
for step in range(60):
    norm(batch(8))
    history.append((norm.running_mean.data.copy(), np.sqrt(norm.running_var.data)))
means, stds = map(np.array, zip(*history))
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for channel, colour in enumerate(["tab:blue", "tab:orange"]):
    axes[0].plot(means[:, channel], color=colour, label=f"channel {channel}")
    axes[0].axhline(true_mean[channel], color=colour, ls=":")
    axes[1].plot(stds[:, channel], color=colour, label=f"channel {channel}")
    axes[1].axhline(true_std[channel], color=colour, ls=":")
axes[0].set(title="running_mean (dotted: true mean)", xlabel="training batches")
axes[1].set(title="sqrt(running_var) (dotted: true std)", xlabel="training batches")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Now the same image in two different batches. In training mode its output changes with
# its companions (their statistics normalise it); in evaluation mode it does not.

# %%
image = batch(1)
companions = [batch(3), Tensor(batch(3).numpy() + 5.0)]       # the second batch is brighter
for mode in ("train", "eval"):
    getattr(norm, mode)()
    outputs = [norm(F.cat([image, others], dim=0)).numpy()[0] for others in companions]
    print(f"{mode:5s} mode: the image's output differs between the batches by "
          f"{np.abs(outputs[0] - outputs[1]).max():.3f}")

# %% [markdown]
# This is why a model must be put in evaluation mode (`model.eval()`) before it is
# evaluated or exported, and why the ResNet tower's batch norms are trained with batches
# large enough to give stable statistics. It is also why miniclip checks its ResNet against
# OpenAI's in both modes (`tests/test_reference_parity.py`).
#
# **Where next.** `09_optimisers.ipynb` turns gradients into weight updates.

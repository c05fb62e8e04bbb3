# %% [markdown]
# # 13. Running on a GPU with CuPy
#
# miniclip runs on a GPU through **CuPy**, a NumPy look-alike whose arrays live in GPU
# memory. Every op is written once against an *array module* `xp`, NumPy or CuPy, so the
# GPU needs no second implementation. What changes is the cost model, and this notebook is
# about that:
#
# 1. devices and the array module `xp`;
# 2. copies between host and device, and why every `.item()` makes the CPU wait for the GPU;
# 3. counting those waits in a training step;
# 4. fused kernels with `backend.fuse` (exercises 13a, a fused GELU, and 13b, a fused
#    momentum update, each checked on both devices);
# 5. what a real GPU measured.
#
# **It runs on the CPU.** Like the test suite, it installs the fake CuPy of
# `tests/fake_cupy.py` before miniclip first asks for CuPy: miniclip's real `"cuda"` code
# runs (the lazy import, the copies, the CuPy-only branches) on arrays that live in host
# memory but refuse implicit conversion to NumPy as CuPy's do, and the fake counts every
# read from the "device". On a machine with a GPU, leave out the `install()` line and the
# same cells run on it (the read counts then come from the fake only, so skip those cells).
# `tutorials/running-on-a-gpu.md` is the reference for everything here.

# %%
import importlib.util
import math
import pathlib
import warnings

import matplotlib.pyplot as plt
import numpy as np

# this notebook runs from notebooks/ (or notebooks/student/): find the repository's tests/
here = pathlib.Path.cwd().resolve()
tests = next(folder / "tests" for folder in (here, *here.parents) if (folder / "tests").is_dir())
spec = importlib.util.spec_from_file_location("fake_cupy", tests / "fake_cupy.py")
fake_cupy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake_cupy)
fake_cupy.install()                  # before miniclip first imports cupy

import miniclip  # noqa: E402  (after the fake is installed)
import miniclip.functional as F  # noqa: E402
from miniclip import Tensor, backend, create_model  # noqa: E402
from miniclip.grading import exercise  # noqa: E402
from miniclip.optim import SGD, GradScaler  # noqa: E402
from miniclip.training.step import train_step  # noqa: E402
from miniclip.training.loss import clip_loss  # noqa: E402
from miniclip.training.recipe import paper_optimizer  # noqa: E402
from miniclip.system.threads import limit_blas_threads  # noqa: E402

rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. Devices and the array module
#
# A device is named by a string, `"cpu"` or `"cuda"`, and owns an array module: NumPy
# for the CPU, CuPy for CUDA (`miniclip/backend.py`). A tensor's `.data` is an array of its
# device's module, and every op finds the module from its inputs,
# `xp = backend.get_array_module(x)`, then calls `xp.exp`, `xp.matmul`, ... So one line of
# op code serves both devices, provided it uses only what both modules offer.

# %%
on_cpu = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
on_gpu = on_cpu.to("cuda")                        # a host-to-device copy
for t in (on_cpu, on_gpu):
    xp = backend.get_array_module(t.data)
    print(f"{str(t.device):22s} data is {type(t.data).__module__}.{type(t.data).__name__:10s}"
          f" xp = {xp.__name__}")
print("the same op on both:", (on_cpu * 2).sum().item(), (on_gpu * 2).sum().item())

# %% [markdown]
# CuPy refuses to turn a device array into a NumPy array behind your back, because it
# would be a copy across the PCIe bus (and a wait, section 2). NumPy code that works on
# the CPU can therefore fail on a GPU:

# %%
for attempt, action in [("np.asarray(gpu array)", lambda: np.asarray(on_gpu.data)),
                        ("np.exp(gpu array)", lambda: np.exp(on_gpu.data)),
                        ("gpu array + numpy array", lambda: on_gpu.data + np.ones(3))]:
    try:
        action()
        print(f"{attempt:26s} worked")
    except TypeError as error:
        print(f"{attempt:26s} TypeError: {str(error)[:70]}...")

# %% [markdown]
# The explicit copies are `backend.move(array, device)`, `tensor.to("cpu")` and
# `tensor.numpy()` (device to host), and `Tensor(host_array, device="cuda")` or
# `.to("cuda")` (host to device). A model moves with `model.to("cuda")`.
#
# ## 2. Why `.item()` waits for the GPU
#
# A GPU call returns to Python as soon as its kernel is **queued**: the CPU runs ahead,
# launching kernel after kernel, while the GPU works through the queue. That is what makes
# GPUs fast from Python, since the few microseconds Python spends per op overlap with the
# GPU's work. Reading a value back breaks the overlap: `loss.item()` needs the kernels
# that compute the loss to have *finished*, so the CPU stops and waits for the queue to
# drain, then copies the number; meanwhile nothing new is queued, and afterwards the GPU
# idles until the CPU has launched the next kernels. The sketch below (not a measurement)
# shows a step of ten small kernels, each launched in a little less time than it runs,
# with one read at the end and with a read after every kernel.

# %%
def timeline(ax, reads_after, title, launch=0.5, run=0.7):
    """Draw when the host launches each kernel and when the GPU runs it (arbitrary units)."""
    host_time = gpu_free = 0.0
    for kernel in range(10):
        start = max(host_time + launch, gpu_free)
        ax.barh(1, launch, left=host_time, color="tab:blue")
        ax.barh(0, run, left=start, color="tab:orange", edgecolor="white")
        host_time, gpu_free = host_time + launch, start + run
        if kernel in reads_after:                             # .item(): wait for the queue
            ax.barh(1, gpu_free - host_time, left=host_time, color="lightgrey", hatch="//")
            host_time = gpu_free
    ax.set(yticks=[0, 1], yticklabels=["GPU runs kernels", "CPU launches"], xlim=(0, 13),
           title=f"{title}: step done at t = {gpu_free:.1f}")


fig, axes = plt.subplots(2, 1, figsize=(11, 3.6), sharex=True)
timeline(axes[0], reads_after=[9], title="one read at the end")
timeline(axes[1], reads_after=range(10), title="a read after every kernel")
axes[1].set_xlabel("time (grey hatching: the CPU waiting for the GPU)")
plt.tight_layout()
plt.show()

# %% [markdown]
# With one read per step the GPU is never idle after the first launch: the step takes the
# GPU's time. With a read after every kernel, launching and running no longer overlap: the
# step takes the sum of both, and the GPU idles while the CPU launches. The rule for GPU code: **keep values on
# the device** and read them rarely and together. That is why
# `backend.finite_flags` tests every parameter on the device and returns all the verdicts
# in *one* copy, and why `training/step.py` folds the finiteness check into the read of the loss.
#
# ## 3. Counting device reads
#
# The fake CuPy counts every device-to-host read in `fake_cupy.transfers` (`get`, `item`,
# `float`, `bool`, ...). A float32 training step of the tiny ViT through
# `miniclip.training.step.train_step`:

# %%
miniclip.manual_seed(0)
model = create_model("tiny-vit").to("cuda").train()
optimizer = paper_optimizer(model, 1e-3, tower="vit")
images = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
tokens = rng.integers(1, 1000, (16, 12))
tokens[:, -1] = model.vocab_size - 1                     # the end-of-text token, the largest id

fake_cupy.transfers.clear()
loss = train_step(model, optimizer, GradScaler(enabled=False), images, tokens, 1, "cuda", 1.0)
careful = sum(fake_cupy.transfers.values())
print(f"loss {loss:.3f}; device reads in the step: {dict(fake_cupy.transfers)}")

# %% [markdown]
# Four reads (the loss with the finite checks, and range checks of the token ids and of
# the loss's labels; README, "GPUs"). Here is the same step written the way one would on
# the CPU, where reading a number costs nothing: check every gradient for inf/NaN one by
# one, compute the gradient norm for clipping parameter by parameter as Python floats,
# log the loss.

# %%
def naive_step(model, optimizer, images, tokens, max_norm=1.0):
    logits_per_image, logits_per_text = model(Tensor(images, device="cuda"), tokens)
    loss = clip_loss(logits_per_image, logits_per_text)
    loss.backward()
    parameters = [p for p in model.parameters() if p.grad is not None]
    for p in parameters:                                           # one read each
        if not bool(backend.get_array_module(p.grad).isfinite(p.grad).all()):
            raise FloatingPointError("non-finite gradient")
    norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in parameters))  # one read each
    if norm > max_norm:
        for p in parameters:
            p.grad *= max_norm / norm
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()                                             # and one more


fake_cupy.transfers.clear()
naive_step(model, optimizer, images, tokens)
naive = sum(fake_cupy.transfers.values())
print(f"{len(list(model.parameters()))} parameters; device reads: naive step {naive}, "
      f"train_step {careful}")

# %% [markdown]
# Each of those reads is a full stop of the pipeline of section 2; on the H100 the first
# GPU version of miniclip spent 11 ms of a 59 ms tiny step on such per-parameter checks
# (README, "GPUs"). The counts are what the test suite asserts on
# (`tests/test_train.py`), so a change that adds a read per parameter fails CI without a GPU.
#
# ## 4. Fused kernels: `backend.fuse`
#
# Every `xp` operation on a GPU is a kernel that reads its inputs from GPU memory and writes
# a new array back. An elementwise function of a few operations does almost no arithmetic
# per byte, so its time is the memory traffic. QuickGELU, $x\,\sigma(1.702x)$, written as
# `x * (0.5 * (xp.tanh(0.851 * x) + 1.0))`, is five kernels: five reads and five writes of
# an activation-sized array. Fused into one kernel it reads $x$ once and writes $y$ once.
# For ViT-B/32's MLP activations at batch 128 ($128 \times 50$ tokens $\times$ 3072
# features, float32), on an H100's 3.35 TB/s of memory bandwidth:

# %%
activation_bytes = 128 * 50 * 3072 * 4
bandwidth = 3.35e12
for name, kernels in (("five separate kernels", 5), ("one fused kernel", 1)):
    traffic = 2 * kernels * activation_bytes                      # each reads and writes once
    print(f"{name:22s} {traffic / 1e6:6.0f} MB of traffic, at least "
          f"{traffic / bandwidth * 1e6:5.0f} µs for one QuickGELU of one block")

# %% [markdown]
# `backend.fuse` compiles a function written once on `xp` into one kernel on CuPy (with
# `cupy.fuse`) and calls it as plain array code on NumPy. The function receives `xp` as
# its first argument, because while CuPy *traces* it the arguments are stand-ins that
# record operations, not arrays: only arithmetic, comparisons, `xp`'s elementwise
# functions, `astype`, in-place updates of the arguments and Python numbers are allowed.
# No indexing, no reshaping, no branching on values. The fake CuPy traces on stand-ins
# with the same rules; a function that breaks them falls back to unfused array code with a
# warning (slower, never wrong):

# %%
@backend.fuse
def first_element_plus_one(xp, x):
    return x[0] + 1.0                                     # indexing: no kernel can do this


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first_element_plus_one(on_gpu.data)
print(caught[0].message)

# %% [markdown]
# ### Exercise 13a: a fused GELU, tanh form
#
# GPT-2 and many others use the tanh approximation of the GELU,
#
# $$\mathrm{gelu}(x) \approx \tfrac12\, x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\, x^3)\right)\right).$$
#
# Write it once, on `xp`, so that `backend.fuse` makes it one kernel on a GPU. The check
# runs it on both devices, compares with the formula on NumPy, and turns a fall-back
# warning into a failure, so a body that a kernel cannot run does not pass.

# %%
@backend.fuse
def gelu_tanh(xp, x):
    """The tanh approximation of the GELU, elementwise, as one kernel on a GPU."""
    # BEGIN SOLUTION 13a: a fused GELU
    inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)       # sqrt(2/pi) (x + 0.044715 x^3)
    return 0.5 * x * (1.0 + xp.tanh(inner))
    # END SOLUTION


# %%
def check_on_both_devices(check, part, function, host_inputs):
    """Run ``function`` on NumPy and on the (fake) GPU; each result must be of its device's
    module, with no fall-back warning and no device read inside the call; returns both
    outputs as host arrays."""
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)    # a fall-back from fusing fails
        for device in ("cpu", "cuda"):
            inputs = [backend.move(a.copy(), device) for a in host_inputs]
            fake_cupy.transfers.clear()
            out = function(*inputs)
            check.equal(f"{part} on {device}: device reads during the call",
                        sum(fake_cupy.transfers.values()), 0)
            outs = out if isinstance(out, tuple) else (out,)
            check.true(f"{part} on {device}", all(backend.device_of(o).name == device
                                                  for o in outs if o is not None),
                       "the result is not an array of the input's device")
            results[device] = [backend.to_numpy(a) for a in inputs], out
    return results


with exercise("13a: a fused GELU") as check:
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32) * 3
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    for device, (_, out) in check_on_both_devices(check, "gelu_tanh", gelu_tanh, [x]).items():
        check.close(f"gelu_tanh on {device}", out, expected, atol=1e-6)
    exact = Tensor(x.astype(np.float64))
    check.close("gelu_tanh against the exact GELU (within 1e-3)", gelu_tanh(x),
                F.gelu(exact).numpy(), atol=1e-3)

# %% [markdown]
# ### Exercise 13b: a fused momentum update, in place
#
# SGD with momentum (`miniclip.optim.SGD`, as `torch.optim.SGD`) keeps a buffer $b$ per
# weight; after the first step, each step is
#
# $$b \leftarrow \mu\, b + g, \qquad w \leftarrow w - \eta\, b.$$
#
# Write it as one kernel that updates `w` and `b` **in place** (`b *= ...`, `b += ...`,
# `w -= ...`: a fused function may write into its arguments but not assign into them by
# index) and returns nothing. An optimiser fusing this reads $w$, $g$, $b$ once and
# writes $w$, $b$ once; as separate operations it would make four kernels and two
# temporaries.

# %%
@backend.fuse
def momentum_update_(xp, w, g, b, lr, momentum):
    """b <- momentum b + g; w <- w - lr b, both in place, as one kernel on a GPU."""
    # BEGIN SOLUTION 13b: a fused momentum update
    b *= momentum
    b += g
    w -= lr * b
    # END SOLUTION


# %% [markdown]
# The check runs five steps on both devices and compares with miniclip's `SGD`, which
# starts its buffer at the first gradient, so the check starts the buffer there too:

# %%
with exercise("13b: a fused momentum update") as check:
    check_rng = np.random.default_rng(2)
    w0 = check_rng.standard_normal((3, 4)).astype(np.float32)
    gradients = [check_rng.standard_normal((3, 4)).astype(np.float32) for _ in range(5)]
    reference = Tensor(w0.copy(), requires_grad=True)
    sgd = SGD([reference], lr=0.1, momentum=0.9)
    for g in gradients:
        reference.grad = g.copy()
        sgd.step()

    def five_steps(w, *device_gradients):
        b = device_gradients[0] * 0.0                      # with b = 0, step 1 gives b = g
        for g in device_gradients:
            momentum_update_(w, g, b, 0.1, 0.9)
        return w

    results = check_on_both_devices(check, "five momentum steps", five_steps, [w0, *gradients])
    for device, ((w_after, *_), _) in results.items():
        check.close(f"w after five steps on {device} (updated in place)", w_after,
                    reference.numpy(), atol=1e-6)

# %% [markdown]
# ## 5. What a real GPU measured
#
# The README's GPU table, measured on one **NVIDIA H100 80GB** against OpenAI's PyTorch
# model with the same weights and batch (CuPy 14.2, PyTorch 2.11; medians of 5 steps after
# a warm-up). The miniclip figures are of the code **before the latest changes** (commit
# 06a4875, `../shared/gpu/first-gpu-run.md`): the bucketed, fused AdamW and the single-read
# checks of sections 3–4 came after that run and have not been timed on a GPU yet
# (`python scripts/gpu_check.py` prints this table when they are).

# %%
measured = {   # measurement: (miniclip at 06a4875 in ms, PyTorch in ms, target ratio)
    "tiny-vit step, batch 256": (40.0, 10.2, 1.5),
    "ViT-B/32 step, batch 128": (336, 193, 1.15),
    "ViT-B/32 step, mixed precision": (259, 70, 1.3),
    "ViT-B/32 encode_image, 256": (127, 62, 1.2),
    "RN50 step, batch 64": (357, 109, 1.8),
    "RN50 encode_image, 128": (144, 27.5, None),
}
labels = list(measured)
ours, theirs, targets = (np.array([row[i] for row in measured.values()], dtype=float)
                         for i in range(3))
fig, axes = plt.subplots(1, 2, figsize=(14, 4), gridspec_kw={"width_ratios": [3, 2]})
y = np.arange(len(labels))
axes[0].barh(y - 0.2, ours, height=0.4, label="miniclip (commit 06a4875)")
axes[0].barh(y + 0.2, theirs, height=0.4, label="PyTorch (OpenAI's clip/model.py)")
axes[0].set(yticks=y, yticklabels=labels, xscale="log", xlabel="ms (log scale)")
axes[0].invert_yaxis()
axes[0].legend(loc="lower right", fontsize=8)
axes[1].barh(y, ours / theirs, color="tab:blue")
axes[1].scatter(targets, y, marker="|", s=300, color="black", label="target ratio", zorder=3)
axes[1].set(yticks=y, yticklabels=[], xlabel="miniclip / PyTorch time")
axes[1].invert_yaxis()
axes[1].set_xlim(0, 7.5)
axes[1].legend(loc="center right", fontsize=8)
fig.suptitle("measured on one NVIDIA H100 80GB, with the code before the latest changes")
plt.tight_layout()
plt.show()

# %% [markdown]
# The tiny model's step took 3.9 times PyTorch's: its kernels are so small that the time
# is the host's, launching kernels and waiting on reads, which is exactly what sections 3
# and 4 remove. On ViT-B/32 the matrix products dominate and the gap is smaller (1.7×); mixed
# precision gains less than PyTorch's because the normalisations and softmax are not yet
# fused, and RN50 pays for im2col copies where PyTorch calls cuDNN
# (`tutorials/running-on-a-gpu.md`, section 6).
#
# **Where next.** `14_training_at_scale.ipynb`: many devices at once.

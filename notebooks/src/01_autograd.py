# %% [markdown]
# # 1. Autograd: how miniclip computes gradients
#
# Training CLIP means adjusting about a hundred million numbers so that a loss goes down,
# and for that we need the derivative of the loss with respect to every one of them.
# miniclip computes those derivatives with **reverse-mode automatic differentiation**
# ("autograd"), the same idea PyTorch uses, in about 450 lines you can read in one sitting:
# `miniclip/autograd.py`.
#
# In this notebook you will
#
# 1. build a small computation and look at the graph autograd records;
# 2. call `backward()` and check the result against a derivative worked out by hand;
# 3. see that gradients *accumulate* across `backward()` calls, and why that is useful;
# 4. write your own differentiable op as a `Function` with a `forward` and a `backward`;
# 5. check it with `miniclip.functional.gradcheck.gradcheck`, exhaustively and along one direction;
# 6. watch gradcheck catch a deliberately wrong backward, and compare gradients tensor by
#    tensor with `compare_grads`;
# 7. plot two activation functions and the derivatives autograd gives for them;
# 8. **exercises**: build the heart of an autograd engine yourself, for scalars: the
#    topological order and the backward pass.
#
# An exercise is a function with a `raise NotImplementedError` line for you to replace,
# followed by a cell starting `with exercise(...)` that checks it: it prints "passed", or
# says which part is wrong, the expected and the computed value of the worst element.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import miniclip.functional as F
from miniclip import Function, Tensor, backend
from miniclip.functional.gradcheck import GradcheckError, compare_grads, gradcheck
from miniclip.grading import exercise
from miniclip.system.threads import limit_blas_threads

np.random.seed(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## Tensors
#
# A `Tensor` wraps an array (NumPy on the CPU, CuPy on a GPU) in `.data`. Asking for
# `requires_grad=True` marks it as something we want gradients for: a *leaf* of the graph,
# typically a weight. Python floats become float32 tensors (as in PyTorch); a NumPy array
# keeps its dtype, which is how we will get float64 tensors for gradient checking later.

# %%
x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
print(x)
print("shape", x.shape, "| dtype", x.dtype, "| device", x.device, "| leaf:", x.is_leaf)
print("float64 from NumPy:", Tensor(np.zeros(3)).dtype)

# %% [markdown]
# ## The graph
#
# Every operation on tensors is a `Function` (`miniclip/autograd.py`, class `Function`).
# When at least one input requires a gradient, calling it does two things: it computes the
# output with `forward`, and it *records itself* on the output as `grad_fn`, keeping a
# reference to its inputs. Chaining operations therefore builds a graph from the result
# back to the leaves.
#
# Let us compute $y = \sum_{ij} (x_{ij}\, w_{ij} + b)^2$ and walk that graph backwards
# from `y`.

# %%
w = Tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
b = Tensor(0.1, requires_grad=True)
z = x * w + b
y = (z * z).sum()


def show_graph(tensor, depth=0):
    """Print the Functions that produced ``tensor``, one level of indentation per step back."""
    pad = "    " * depth
    fn = tensor.grad_fn
    if fn is None:
        print(f"{pad}leaf {tensor.shape}")
        return
    print(f"{pad}{type(fn).__name__} -> {tensor.shape}")
    for parent in fn.inputs:
        show_graph(parent, depth + 1)


show_graph(y)

# %% [markdown]
# The `Add` subtree is printed twice because `z` is *one* tensor feeding both inputs of
# the last `Mul` (`z * z`), and the `Add` has `b`, of shape `()`, broadcast against a
# `[2, 2]` tensor. Both facts matter for the backward pass:
#
# * a tensor used twice must receive the **sum** of the gradients from both uses;
# * a broadcast input must receive the gradient **summed over the broadcast axes**, so
#   that its gradient has its own shape.
#
# The engine handles both (`Tensor._receive_grad` adds incoming gradients;
# `autograd.sum_to` undoes broadcasting), so no individual op has to.
#
# ## `backward()`
#
# `y.backward()` visits the Functions in reverse topological order (every consumer before
# the op that produced its input, `autograd._topological_order`) and calls each one's
# `backward` with $\partial y / \partial(\text{its output})$. Each returns
# $\partial y / \partial(\text{its inputs})$ by the chain rule, and the leaves store the
# result in `.grad`.
#
# By hand: $y = \sum z^2$ with $z = x w + b$, so
# $\partial y/\partial x = 2 z\, w$, $\partial y/\partial w = 2 z\, x$ and
# $\partial y/\partial b = \sum 2 z$ (b touches every element).

# %%
y.backward()
zd = z.numpy()
print("x.grad\n", x.grad, "\nby hand\n", 2 * zd * w.numpy())
print("w.grad\n", w.grad, "\nby hand\n", 2 * zd * x.numpy())
print("b.grad", b.grad, "  by hand", (2 * zd).sum())
assert np.allclose(x.grad, 2 * zd * w.numpy()) and np.allclose(w.grad, 2 * zd * x.numpy())
assert np.allclose(b.grad, (2 * zd).sum())

# %% [markdown]
# ## Gradients accumulate
#
# Call `backward()` a second time on a freshly built graph and the leaf gradients are
# **added** to what is already in `.grad`: the leaf does not know whether the two
# backward passes belong to the same step. PyTorch does exactly the same, and it is a
# feature: a batch too large for memory can be processed as several *micro-batches*, each
# with its own `backward()`, and the summed gradients equal those of the whole batch.
#
# Below, the loss of a 4-sample batch is a mean. Splitting it into two halves, each loss
# scaled by 1/2 so that the two add up to the full mean, gives exactly the full-batch
# gradient.

# %%
data = np.random.randn(4, 3)
target = np.random.randn(4)
weights = Tensor(np.random.randn(3), requires_grad=True)


def batch_loss(rows):
    residual = Tensor(data[rows]) @ weights - Tensor(target[rows])
    return (residual * residual).mean()


batch_loss([0, 1, 2, 3]).backward()
full_batch = weights.grad.copy()

weights.grad = None                                # start afresh (what zero_grad() does)
(batch_loss([0, 1]) * 0.5).backward()
(batch_loss([2, 3]) * 0.5).backward()              # adds to weights.grad
print("full batch     ", full_batch)
print("two half-steps ", weights.grad)
assert np.allclose(weights.grad, full_batch), "accumulated half-batches must equal the full batch"

# %% [markdown]
# The flip side: in a training loop you must clear the gradients after every optimiser
# step, or each step would use the sum of all gradients so far. `Module.zero_grad()`
# (`miniclip/nn/module.py`) and `optimizer.zero_grad()` (`miniclip/optim/optimizers.py`) set every
# `.grad` back to `None`.
#
# A graph can be traversed only once: `backward()` frees the arrays each Function saved
# for its backward pass (activations are most of a network's memory). Going through it a
# second time is an error that says what to do:

# %%
loss = batch_loss([0, 1, 2, 3])
loss.backward()
try:
    loss.backward()
except RuntimeError as error:
    print("RuntimeError:", error)

# %% [markdown]
# ## Writing your own op
#
# Every op in `miniclip/functional/` follows one recipe. Subclass `Function` and write two
# methods on **raw arrays** (not Tensors):
#
# * `forward(self, *arrays)` returns the output and saves on `self` what backward needs;
# * `backward(self, grad_output)` receives $g = \partial L/\partial y$, an array shaped like
#   the output, and returns $\partial L/\partial x$ for each input.
#
# We write **softplus**, $y = \log(1 + e^x)$, a smooth ReLU. Its derivative is
#
# $$\frac{dy}{dx} = \frac{e^x}{1 + e^x} = \frac{1}{1 + e^{-x}} = \sigma(x),$$
#
# the logistic sigmoid, and since softplus acts element by element, the chain rule gives
# $\partial L/\partial x = g \cdot \sigma(x)$.
#
# Three practical details:
#
# * `log(1 + exp(x))` overflows for large x, so the forward uses `logaddexp(0, x)`
#   $= \log(e^0 + e^x)$, which NumPy computes stably.
# * The backward needs $\sigma(x) = e^x / (1 + e^x) = e^{x - y}$: written through the
#   saved output $y$, it needs no new logarithm and cannot overflow, since $x - y \le 0$.
# * The array module is looked up from the data with `backend.get_array_module`, so the
#   same code runs on NumPy and CuPy arrays: the rule every op in miniclip follows (see
#   `miniclip/backend.py`).

# %%
class Softplus(Function):
    """y = log(1 + e^x);  dy/dx = sigmoid(x), so dL/dx = g * sigmoid(x)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = xp.logaddexp(0.0, x)
        self.x, self.y = x, y                       # saved for backward
        return y

    def backward(self, grad_output):
        xp = backend.get_array_module(grad_output)
        sigmoid = xp.exp(self.x - self.y)           # e^x / (1 + e^x); x - y <= 0: no overflow
        return grad_output * sigmoid


def softplus(x):
    return Softplus()(x)


t = Tensor(np.array([-30.0, -1.0, 0.0, 1.0, 30.0]), requires_grad=True)
out = softplus(t)
out.sum().backward()
print("softplus      ", out.numpy())
print("its gradient  ", t.grad)
print("sigmoid check ", 1 / (1 + np.exp(-t.numpy())))
assert np.allclose(t.grad, 1 / (1 + np.exp(-t.numpy()))), "softplus' derivative is the sigmoid"

# %% [markdown]
# ## Checking a backward with finite differences
#
# How do we know `backward` is right? Compare it with the definition of a derivative.
# `gradcheck` (`miniclip/functional/gradcheck.py`) picks a fixed random "upstream gradient" $R$ shaped
# like the output and looks at the scalar $L(x) = \sum R \odot f(x)$. Its exact gradient is
# what `backward` returns when $R$ arrives at the output, and numerically
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + \epsilon e_i) - L(x - \epsilon e_i)}{2\epsilon}.$$
#
# The error of this *central* difference shrinks like $\epsilon^2$, but in float32
# $L(x+\epsilon) - L(x-\epsilon)$ loses most of its digits to cancellation. So gradchecks
# run in **float64**, with $\epsilon = 10^{-6}$.
#
# * `mode="exhaustive"` nudges every element of every input: two forward passes per
#   element. It reports *which* element is worst.
# * `mode="directional"` nudges all inputs at once along one random unit direction $v$ and
#   compares the numerical slope with $\langle \nabla L, v\rangle$: two forward passes in
#   total, whatever the size. A wrong gradient goes unnoticed only if its error happens to
#   be orthogonal to a random $v$, which has probability zero. This is how whole
#   transformer blocks are checked in the test suite.

# %%
def counted(fn):
    """``fn`` that counts how often it is called (every forward pass of the check)."""
    def wrapper(*args):
        wrapper.calls += 1
        return fn(*args)
    wrapper.calls = 0
    return wrapper


big = Tensor(np.random.randn(40, 30), requires_grad=True)     # float64: 1,200 elements
for mode in ("exhaustive", "directional"):
    fn = counted(softplus)
    start = time.perf_counter()
    report = gradcheck(fn, [big], mode=mode)
    seconds = time.perf_counter() - start
    print(f"{report}\n  -> {fn.calls} forward passes, {seconds * 1e3:.0f} ms\n")

# %% [markdown]
# ## A bug, caught
#
# Here is a plausible mistake: mixing up the derivative of softplus (the sigmoid) with the
# derivative of the sigmoid, $\sigma(x)(1 - \sigma(x))$. The forward pass is still right,
# so the outputs look fine; only the gradients are wrong, and training would quietly go
# nowhere. gradcheck fails and points at the element where the two disagree most.

# %%
class BuggySoftplus(Softplus):
    def backward(self, grad_output):
        xp = backend.get_array_module(grad_output)
        sigmoid = xp.exp(self.x - self.y)
        return grad_output * sigmoid * (1 - sigmoid)      # wrong: this is sigmoid'(x)


small = Tensor(np.random.randn(3, 4), requires_grad=True)
report = gradcheck(lambda a: BuggySoftplus()(a), [small], raise_exception=False)
print(report)

# %% [markdown]
# By default a failed check raises `GradcheckError` (an `AssertionError`), so in a test file
# `gradcheck(fn, inputs)` on its own line is the whole test. The directional check catches
# the bug too:

# %%
try:
    gradcheck(lambda a: BuggySoftplus()(a), [small], mode="directional")
except GradcheckError as error:
    print("GradcheckError:\n", error)

# %% [markdown]
# ## Comparing gradients tensor by tensor
#
# gradcheck answers "is this op's backward right?". When a whole network's gradients are
# in question, for instance a student's hand-derived backpropagation, `compare_grads`
# lines up two dicts of gradients, name by name, and labels each *exact*, *close* or
# *different*. The reference here is the engine's.
#
# The network is $\hat y = W_2\, \mathrm{relu}(W_1 x + b_1) + b_2$ with a mean squared error.
# The "student" derivation below has one mistake: the gradient of $b_1$ is averaged
# over the batch instead of summed (the $1/N$ of the mean is already in `d_out`).

# %%
rng = np.random.default_rng(0)
inputs, targets = rng.standard_normal((8, 5)), rng.standard_normal((8, 2))
params = {"W1": rng.standard_normal((4, 5)), "b1": rng.standard_normal(4),
          "W2": rng.standard_normal((2, 4)), "b2": rng.standard_normal(2)}

# The engine's gradients
tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
hidden = F.relu(F.linear(Tensor(inputs), tensors["W1"], tensors["b1"]))
prediction = F.linear(hidden, tensors["W2"], tensors["b2"])
((prediction - Tensor(targets)) ** 2).mean().backward()
engine = {name: t.grad for name, t in tensors.items()}

# A hand-written backward pass in plain NumPy
pre = inputs @ params["W1"].T + params["b1"]                  # [8, 4]
act = np.maximum(pre, 0)
out_np = act @ params["W2"].T + params["b2"]                  # [8, 2]
d_out = 2 * (out_np - targets) / out_np.size                  # d mean((out - t)^2) / d out
d_act = d_out @ params["W2"]
d_pre = d_act * (pre > 0)
student = {"W2": d_out.T @ act, "b2": d_out.sum(0),
           "W1": d_pre.T @ inputs, "b1": d_pre.mean(0)}       # the bug: mean, not sum

compare_grads(engine, student)

# %% [markdown]
# `compare_grads` returns a report that Jupyter shows as a table; `print(report)` gives the
# same as text, and `report.all_close` is the boolean a grader would assert on (see
# `tutorials/assignments.md`).
#
# ## Seeing a derivative: GELU and QuickGELU
#
# CLIP's transformers use **QuickGELU**, $x\,\sigma(1.702\,x)$, a cheap stand-in for the
# GELU, $x\,\Phi(x)$ with $\Phi$ the standard normal CDF. Both live in
# `miniclip/functional/activation.py` (classes `GELU` and `QuickGELU`), where the
# docstrings derive their derivatives:
#
# $$\mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x), \qquad
# \mathrm{QuickGELU}'(x) = s + 1.702\,x\,s(1-s),\quad s = \sigma(1.702\,x).$$
#
# Autograd gives the whole derivative curve in one backward pass: for $L = \sum_i f(x_i)$,
# $\partial L/\partial x_i = f'(x_i)$, because each output depends only on its own input.

# %%
grid = np.linspace(-4, 4, 401)
curves = {}
for name, fn in [("GELU", F.gelu), ("QuickGELU", F.quick_gelu)]:
    xs = Tensor(grid, requires_grad=True)
    ys = fn(xs)
    ys.sum().backward()
    curves[name] = (ys.numpy(), xs.grad)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for name, (values, slopes) in curves.items():
    axes[0].plot(grid, values, label=name)
    axes[1].plot(grid, slopes, label=name)
axes[2].plot(grid, curves["QuickGELU"][0] - curves["GELU"][0], label="f")
axes[2].plot(grid, curves["QuickGELU"][1] - curves["GELU"][1], label="f'")
axes[0].set_title("f(x)")
axes[1].set_title("f'(x) from backward()")
axes[2].set_title("QuickGELU minus GELU")
for ax in axes:
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend()
    ax.set_xlabel("x")
plt.tight_layout()
plt.show()

print("largest gap in value:", np.abs(curves["QuickGELU"][0] - curves["GELU"][0]).max().round(4),
      "| in slope:", np.abs(curves["QuickGELU"][1] - curves["GELU"][1]).max().round(4))

# %% [markdown]
# The two functions differ by at most about 0.02: close, but not equal. A model trained
# with one activation must be run with the same one, which is why loading OpenAI's weights
# requires QuickGELU (`miniclip/models/transformer.py` uses `nn.QuickGELU`). Both
# derivatives dip slightly below zero for negative $x$ and overshoot 1 for positive $x$:
# unlike ReLU, these activations let a little gradient through for negative inputs.
#
# ## Exercises: an autograd engine for scalars
#
# Everything `backward()` does fits in a page when the values are plain numbers instead of
# arrays (this is Karpathy's *micrograd*). Below, `Value` holds one number, its gradient,
# and the `Value`s it was computed from. Each operation creates a new `Value` and gives it
# a `backward_step`: a function that, once `out.grad` holds $\partial L/\partial\,\text{out}$,
# **adds** the chain-rule contribution to each input's `.grad`. The operations are written
# for you; the engine that calls them in the right order is yours.

# %%
class Value:
    """A scalar in a computation graph: ``data``, ``grad`` = dL/d(this), and its ``inputs``."""

    def __init__(self, data, inputs=(), label=""):
        self.data, self.grad, self.inputs, self.label = float(data), 0.0, inputs, label
        self.backward_step = lambda: None          # a leaf passes its gradient nowhere

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def backward_step():                       # d(a + b)/da = d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out.backward_step = backward_step
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def backward_step():                       # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out.backward_step = backward_step
        return out

    __radd__, __rmul__ = __add__, __mul__

    def tanh(self):
        out = Value(np.tanh(self.data), (self,))

        def backward_step():                       # tanh' = 1 - tanh^2
            self.grad += (1 - out.data ** 2) * out.grad
        out.backward_step = backward_step
        return out

    def __repr__(self):
        return f"Value({self.label}={self.data:.4g}, grad={self.grad:.4g})"

# %% [markdown]
# ### Exercise 1a: the topological order
#
# A node's `backward_step` may run only once its own `.grad` is complete, that is, after
# every node that *uses* it has passed its contribution on. So the nodes must be visited
# in an order where each node comes **after all its inputs** (a *topological order*), and
# then walked in reverse.
#
# Write `topological_order(root)`: a list of every node the root depends on, each exactly
# once (a node used twice is still one node), each after its inputs, the root last. A
# depth-first search does it: visit a node's inputs first, then append the node; keep a set
# of visited nodes (by identity: `id(node)`) so shared nodes are not appended twice.

# %%
def topological_order(root):
    """Every node ``root`` depends on, each once and after all its inputs; ``root`` last."""
    # BEGIN SOLUTION 1a: topological order
    order, visited = [], set()

    def visit(node):
        if id(node) not in visited:
            visited.add(id(node))
            for parent in node.inputs:
                visit(parent)
            order.append(node)
    visit(root)
    return order
    # END SOLUTION


# %%
def example():
    """f = tanh(a·b + c)·a + b, with a and b used twice; returns (f, the leaves a, b, c)."""
    a, b, c = Value(0.8, label="a"), Value(-1.5, label="b"), Value(0.3, label="c")
    nodes = {"a·b": a * b}
    nodes["a·b+c"] = nodes["a·b"] + c
    nodes["tanh"] = nodes["a·b+c"].tanh()
    nodes["tanh·a"] = nodes["tanh"] * a
    nodes["f"] = nodes["tanh·a"] + b
    for label, node in nodes.items():
        node.label = label
    return nodes["f"], (a, b, c)


with exercise("1a: topological order") as check:
    f, leaves = example()
    order = topological_order(f)
    check.equal("number of nodes", len(order), 8)
    check.equal("distinct nodes", len({id(node) for node in order}), 8)
    check.true("last node", order[-1] is f, "the root f must come last")
    position = {id(node): i for i, node in enumerate(order)}
    for node in order:
        for parent in node.inputs:
            check.true(f"position of {node.label}", position[id(parent)] < position[id(node)],
                       f"node {node.label} comes before its input {parent.label}")
print([node.label for node in order])

# %% [markdown]
# ### Exercise 1b: `backward`
#
# Now the engine: set the root's gradient to $\partial f/\partial f = 1$, then call every
# node's `backward_step` in **reverse** topological order. Because each step *adds* into
# its inputs' `.grad`, a node used twice (like `a`) collects both contributions: the
# same rule as `Tensor._receive_grad` in miniclip.

# %%
def backward(root):
    """Fill ``.grad`` of every node ``root`` depends on with d(root)/d(node)."""
    # BEGIN SOLUTION 1b: backward
    root.grad = 1.0
    for node in reversed(topological_order(root)):
        node.backward_step()
    # END SOLUTION


# %% [markdown]
# The check builds the same function with miniclip's tensors, lets miniclip's engine
# differentiate it, and compares the leaves' gradients with yours:

# %%
with exercise("1b: backward") as check:
    f, leaves = example()
    backward(f)
    tensors = [Tensor(np.array(leaf.data), requires_grad=True) for leaf in leaves]
    ta, tb, tc = tensors
    (F.tanh(ta * tb + tc) * ta + tb).backward()
    for leaf, tensor in zip(leaves, tensors):
        check.close(f"d f / d {leaf.label}", leaf.grad, tensor.grad)
print(leaves)

# %% [markdown]
# From here to miniclip is mostly a change of *granularity*: a `Tensor` node holds a whole
# array, `backward_step` becomes `Function.backward`, which returns the gradients instead of
# adding them (the engine adds them, and undoes broadcasting), and miniclip's
# `_topological_order` (`miniclip/autograd.py`) is the same depth-first search over the
# `Function`s, written with an explicit stack so that graphs thousands of ops deep do not
# hit Python's recursion limit.
#
# **Where next.** `02_attention.ipynb` builds attention from these pieces. To add an op of
# your own to miniclip, with its tests, follow `tutorials/adding-an-op.md`.

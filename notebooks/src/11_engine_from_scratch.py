# %% [markdown]
# # 11. An autograd engine from a blank file: from scalars to tensors
#
# `01_autograd.ipynb` used miniclip's engine and asked you for its two central functions.
# This notebook starts from nothing but NumPy and builds a whole engine twice:
#
# 1. **for scalars**: a `Scalar` that remembers, for each input, the *local derivative*
#    $\partial\,\text{out}/\partial\,\text{input}$; the chain rule is then a sum over paths
#    of products of local derivatives, computed in one reverse sweep;
# 2. **for arrays**: why storing local derivatives stops working (a layer's Jacobian has
#    billions of entries), what replaces them (*vector–Jacobian products*), and what
#    broadcasting does to gradients (exercise 11a: `sum_to`; exercise 11b: the backward of
#    a matrix product);
# 3. a small network trained with the engine you just built, and its gradients compared
#    with miniclip's to the last digits.
#
# Each exercise is a function with a `raise NotImplementedError` line for you to replace,
# followed by a `with exercise(...)` cell that checks it.

# %%
import matplotlib.pyplot as plt
import numpy as np

import miniclip.functional as F
from miniclip import Tensor, autograd
from miniclip.grading import exercise, numerical_gradient
from miniclip.system.threads import limit_blas_threads

rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. Scalars and their local derivatives
#
# Take $f = \tanh(w_1 x_1 + w_2 x_2 + b)$, one neuron. Every intermediate value
# $v$ depends on a few inputs $u$, and we can note, when $v$ is computed, the number
# $\partial v/\partial u$: for $v = u_1 + u_2$ it is 1 for both; for $v = u_1 u_2$ it is
# $u_2$ for $u_1$ and $u_1$ for $u_2$; for $v = \tanh u$ it is $1 - v^2$.
#
# The chain rule says that the derivative of the output $f$ with respect to any node $u$ is
#
# $$\frac{\partial f}{\partial u} = \sum_{v \,\text{uses}\, u} \frac{\partial f}{\partial v}\,
# \frac{\partial v}{\partial u},$$
#
# a sum over the nodes that consume $u$. So if we visit the nodes from $f$ backwards, each
# node after all its consumers, every $\partial f/\partial v$ on the right is complete when
# we need it: one sweep gives the derivative of $f$ with respect to *every* node. That is
# reverse-mode differentiation, and the whole engine is the class below plus that sweep.

# %%
class Scalar:
    """A number in a graph: ``data``, ``grad`` (= d root / d this, after ``backward``), and
    ``inputs`` with ``local`` = d this / d input, one per input."""

    def __init__(self, data, inputs=(), local=(), name=""):
        self.data, self.grad, self.name = float(data), 0.0, name
        self.inputs, self.local = inputs, local

    def __add__(self, other):
        other = other if isinstance(other, Scalar) else Scalar(other)
        return Scalar(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Scalar) else Scalar(other)
        return Scalar(self.data * other.data, (self, other), (other.data, self.data))

    __radd__, __rmul__ = __add__, __mul__

    def tanh(self):
        t = np.tanh(self.data)
        return Scalar(t, (self,), (1.0 - t * t,))

    def __repr__(self):
        return f"Scalar({self.name or '?'} = {self.data:.4f}, grad {self.grad:.4f})"


def topological_order(root):
    """Every node ``root`` depends on, each once, each after its inputs, ``root`` last.

    Depth-first, with an explicit stack instead of recursion (a graph thousands of nodes
    deep would exceed Python's recursion limit): a node is pushed twice, once to visit its
    inputs and once, below them on the stack, to be appended after they are.
    """
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.inputs)
    return order


def backward_scalars(root):
    """d root / d node for every node, by the chain rule in reverse topological order."""
    order = topological_order(root)
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    for node in reversed(order):
        for parent, local in zip(node.inputs, node.local):
            parent.grad += local * node.grad
    return order

# %% [markdown]
# One neuron, and its graph drawn with every node's value and gradient. Columns are the
# steps from the leaves; arrows point from an input to the node that uses it.

# %%
def neuron(x1, x2, w1, w2, b):
    x1, x2, w1, w2, b = (Scalar(v, name=n) for v, n in
                         zip((x1, x2, w1, w2, b), ("x1", "x2", "w1", "w2", "b")))
    products = [x1 * w1, x2 * w2]
    products[0].name, products[1].name = "x1·w1", "x2·w2"
    total = products[0] + products[1] + b
    total.inputs[0].name, total.name = "sum of products", "z"
    f = total.tanh()
    f.name = "f = tanh z"
    return f


f = neuron(2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
order = backward_scalars(f)

column, row = {}, {}
leaves_seen = 0
for node in order:                               # inputs come first: theirs are placed
    if not node.inputs:
        column[id(node)], row[id(node)] = 0, leaves_seen
        leaves_seen += 1
    else:                                        # right of its inputs, level with their middle
        column[id(node)] = 1 + max(column[id(p)] for p in node.inputs)
        row[id(node)] = np.mean([row[id(p)] for p in node.inputs])

fig, ax = plt.subplots(figsize=(13, 4.2))
for node in order:
    x, y = column[id(node)], -row[id(node)]
    for parent in node.inputs:
        ax.annotate("", (x, y), (column[id(parent)], -row[id(parent)]),
                    arrowprops=dict(arrowstyle="->", color="grey", shrinkA=28, shrinkB=28))
    ax.text(x, y, f"{node.name}\ndata {node.data:.3f}\ngrad {node.grad:.3f}", ha="center",
            va="center", fontsize=8, bbox=dict(boxstyle="round", fc="lavender"))
ax.set_xlim(-0.5, max(column.values()) + 0.5)
ax.set_ylim(-leaves_seen + 0.4, 0.6)
ax.axis("off")
ax.set_title("f = tanh(x1 w1 + x2 w2 + b): values forward, gradients backward")
plt.show()

# %% [markdown]
# Read the gradients against the calculus: $f = \tanh z$ with $z = 0.8814$, so
# $\partial f/\partial z = 1 - \tanh^2 z = 0.5$; every input of a sum receives that 0.5;
# $\partial f/\partial w_1 = 0.5\,x_1 = 1$ and $\partial f/\partial x_1 = 0.5\,w_1 = -1.5$;
# $x_2 = 0$, so $w_2$ gets no gradient. The finite differences agree:

# %%
leaves = {node.name: node for node in order if not node.inputs}
values = {name: leaf.data for name, leaf in leaves.items()}
for name, leaf in leaves.items():
    def f_of(v, name=name):
        return neuron(**dict(values, **{name: float(v)})).data
    print(f"d f / d {name:3s}  engine {leaf.grad:+.6f}   finite differences "
          f"{numerical_gradient(f_of, np.array(values[name])):+.6f}")

# %% [markdown]
# A node used twice collects both contributions, because `backward_scalars` *adds* into
# `parent.grad`: for $g = a \cdot a + a$, $\partial g/\partial a = 2a + 1$.

# %%
a = Scalar(3.0, name="a")
g = a * a + a
backward_scalars(g)
print(a, "(2a + 1 =", 2 * a.data + 1, ")")

# %% [markdown]
# ## 2. From scalars to arrays
#
# Run the same engine on every number of a network and it works, slowly: one Python object
# per multiplication. Arrays are the cure: one node per *array* operation. But the local
# derivative of an array op is a **Jacobian**. For a linear layer $Y = X W$ with
# $X$ of shape $[N, D]$ and $W$ of shape $[D, M]$, $\partial Y/\partial W$ has $NM \cdot DM$
# entries: for ViT-B/32's MLP ($D = 768$, $M = 3072$) and a batch of 256 tokens, about
# $1.9\times 10^{12}$ numbers (7 TB in float32), almost all zero.
#
# We never need the Jacobian itself, only its product with the gradient arriving from
# above. If $G = \partial L/\partial Y$ (shaped like $Y$), the chain rule gives
#
# $$\frac{\partial L}{\partial W_{dm}} = \sum_{n, m'} G_{nm'}\,\frac{\partial Y_{nm'}}{\partial W_{dm}}
# = \sum_n G_{nm} X_{nd} = (X^\top G)_{dm},$$
#
# since $Y_{nm'} = \sum_d X_{nd} W_{dm'}$ depends on $W_{dm}$ only when $m' = m$, with
# derivative $X_{nd}$. So each array op stores a **vector–Jacobian product** (VJP): a
# function from $G$ to the gradients of its inputs, costing about as much as the forward
# pass. The scalar engine's `parent.grad += local * node.grad` becomes
# `parent.grad += vjp(node.grad)`.
#
# ## Broadcasting, undone
#
# NumPy lets a bias $b$ of shape $[M]$ be added to $Y$ of shape $[N, M]$: $b$ is
# *broadcast*, as if copied into $N$ rows. Each copy affects the loss, so by the same
# sum-over-uses rule as for `a * a + a` above,
#
# $$\frac{\partial L}{\partial b_m} = \sum_n G_{nm}:$$
#
# the gradient of a broadcast input is the incoming gradient **summed over the axes it
# was broadcast along**. NumPy's rules: the shorter shape is padded with size-1 axes *on
# the left*, then every size-1 axis is stretched to match. Undoing it means summing over
# the prepended axes (dropping them) and over the stretched axes (keeping them as size 1).
# Shapes $[3]$ and $[4, 1]$ broadcast to $[4, 3]$; a $[4, 3]$ gradient goes back to $[3]$ by
# summing over axis 0 and to $[4, 1]$ by summing over axis 1 with `keepdims`.
#
# ### Exercise 11a: `sum_to`
#
# Write `sum_to(grad, shape)`: sum `grad` down to `shape`, where `shape` broadcasts to
# `grad.shape`. The engine will apply it to every gradient it hands to an input, so no op
# has to think about broadcasting (miniclip's engine does the same, `autograd.sum_to`).

# %%
def sum_to(grad, shape):
    """``grad`` summed over the axes along which ``shape`` was broadcast to ``grad.shape``."""
    # BEGIN SOLUTION 11a: sum_to
    prepended = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(prepended)))
    stretched = tuple(axis for axis, size in enumerate(shape)
                      if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=stretched, keepdims=True)
    # END SOLUTION


# %%
with exercise("11a: sum_to") as check:
    check_rng = np.random.default_rng(1)
    for big, small in [((4, 3), (3,)), ((4, 3), (4, 1)), ((2, 4, 3), (4, 1)),
                       ((2, 4, 3), (1, 1, 3)), ((4, 3), (4, 3)), ((5, 2), ())]:
        grad = check_rng.standard_normal(big)
        check.close(f"sum_to(gradient {big}, {small})", sum_to(grad, small),
                    autograd.sum_to(grad, small))

# %% [markdown]
# ## 3. The array engine
#
# `Node` is `Scalar` with arrays: `data` is a NumPy array and, in place of the local
# derivatives, `vjp` maps the gradient of the node to one gradient per input. The
# topological order is the very same function: it only looks at `.inputs`. Each
# operator's VJP, derived as above:
#
# | op | forward | VJP, given $G = \partial L/\partial\,\text{out}$ |
# |---|---|---|
# | `a + b` | $a + b$ | $G$, $G$ (then `sum_to` each input's shape) |
# | `a * b` | $a \odot b$ | $G \odot b$, $G \odot a$ (then `sum_to`) |
# | `a @ b` | $A B$ | $G B^\top$, $A^\top G$ (exercise 11b) |
# | `a.tanh()` | $t = \tanh a$ | $G \odot (1 - t^2)$ |
# | `a.sum()` | $\sum_i a_i$ | $G$ copied to the shape of $a$ |

# %%
class Node:
    """An array in a graph: ``data``, ``grad`` (after ``backward``), ``inputs``, and
    ``vjp``: gradient of this node -> (gradient of each input)."""

    def __init__(self, data, inputs=(), vjp=None):
        self.data, self.grad = np.asarray(data, dtype=np.float64), None
        self.inputs, self.vjp = inputs, vjp

    @staticmethod
    def wrap(value):
        return value if isinstance(value, Node) else Node(value)

    def __add__(self, other):
        other = Node.wrap(other)
        return Node(self.data + other.data, (self, other), lambda g: (g, g))

    def __mul__(self, other):
        other = Node.wrap(other)
        return Node(self.data * other.data, (self, other),
                    lambda g: (g * other.data, g * self.data))

    def __matmul__(self, other):
        return Node(self.data @ other.data, (self, other),
                    lambda g: matmul_vjp(self.data, other.data, g))

    def __sub__(self, other):
        return self + Node.wrap(other) * -1.0

    __radd__, __rmul__ = __add__, __mul__

    def tanh(self):
        t = np.tanh(self.data)
        return Node(t, (self,), lambda g: (g * (1 - t * t),))

    def sum(self):
        return Node(self.data.sum(), (self,), lambda g: (np.broadcast_to(g, self.data.shape),))

    def backward(self):
        """Fill ``grad`` of every node this scalar depends on."""
        order = topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            if node.vjp is None:                       # a leaf: nothing to pass on
                continue
            for parent, g in zip(node.inputs, node.vjp(node.grad)):
                parent.grad = parent.grad + sum_to(g, parent.data.shape)

# %% [markdown]
# ### Exercise 11b: the backward of a matrix product
#
# For $Y = AB$ with $A$ of shape $[N, D]$ and $B$ of shape $[D, M]$, return
# $(\partial L/\partial A, \partial L/\partial B)$ given $G = \partial L/\partial Y$. The
# derivation above gave one of the two; the other follows the same way from
# $Y_{nm} = \sum_d A_{nd} B_{dm}$. A shape check catches most mistakes: each gradient has
# its input's shape, and there is only one way to multiply $G$ $[N, M]$ with $A$ or $B$
# (transposed or not) to get it.

# %%
def matmul_vjp(a, b, g):
    """Gradients ``(dL/da [N, D], dL/db [D, M])`` of ``y = a @ b`` given ``g = dL/dy [N, M]``."""
    # BEGIN SOLUTION 11b: the backward of a matrix product
    return g @ b.T, a.T @ g
    # END SOLUTION


# %% [markdown]
# The check differentiates $L = \sum (A B) \odot R$ with a fixed random $R$ (so that
# $G = R$) by central differences, without your code, and compares:

# %%
with exercise("11b: the backward of a matrix product") as check:
    check_rng = np.random.default_rng(2)
    a, b, r = check_rng.standard_normal((3, 4)), check_rng.standard_normal((4, 2)), \
        check_rng.standard_normal((3, 2))
    grad_a, grad_b = matmul_vjp(a, b, r)
    check.close("dL/da", grad_a, numerical_gradient(lambda x: ((x @ b) * r).sum(), a))
    check.close("dL/db", grad_b, numerical_gradient(lambda x: ((a @ x) * r).sum(), b))

# %% [markdown]
# ## 4. Training a network with it
#
# Two interleaved spirals of 2-D points (one turn each), labelled $\pm 1$, and a network with one hidden
# layer of 16 tanh units, $\hat y = \tanh(\tanh(X W_1 + b_1)\, W_2 + b_2)$, trained by
# full-batch gradient descent on the mean squared error. Note the biases: $b_1$ is $[16]$,
# added to a $[200, 16]$ matrix, so its gradient goes through your `sum_to`.

# %%
def spirals(n):
    """``n`` points on each of two interleaved spirals, ``(X [2n, 2], labels [2n] of ±1)``."""
    angle = np.sqrt(rng.uniform(0, 1, n)) * 2 * np.pi
    arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / (2 * np.pi)
    points = np.concatenate([arm, -arm]) + rng.normal(0, 0.04, (2 * n, 2))
    return points, np.concatenate([np.ones(n), -np.ones(n)])


X, labels = spirals(100)
params = {"W1": rng.normal(0, 1.5, (2, 16)), "b1": np.zeros(16),
          "W2": rng.normal(0, 0.25, (16, 1)), "b2": np.zeros(1)}


def forward(nodes, points):
    hidden = (Node(points) @ nodes["W1"] + nodes["b1"]).tanh()      # [n, 16]
    return (hidden @ nodes["W2"] + nodes["b2"]).tanh()             # [n, 1]


losses = []
for step in range(1000):
    nodes = {name: Node(value) for name, value in params.items()}
    error = forward(nodes, X) - labels[:, None]
    loss = (error * error).sum() * (1 / len(X))
    loss.backward()
    for name, node in nodes.items():
        params[name] = params[name] - 0.2 * node.grad
    losses.append(float(loss.data))

nodes = {name: Node(value) for name, value in params.items()}
grid = np.stack(np.meshgrid(np.linspace(-1.2, 1.2, 120), np.linspace(-1.2, 1.2, 120)), axis=-1)
surface = forward(nodes, grid.reshape(-1, 2)).data.reshape(120, 120)
accuracy = (np.sign(forward(nodes, X).data[:, 0]) == labels).mean()

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
axes[0].plot(losses)
axes[0].set(xlabel="step", ylabel="mean squared error", yscale="log", title="training loss")
axes[1].contourf(grid[..., 0], grid[..., 1], surface, levels=20, cmap="coolwarm", alpha=0.6)
axes[1].scatter(X[:, 0], X[:, 1], c=labels, cmap="coolwarm", s=10, edgecolors="k", linewidths=0.3)
axes[1].set(title=f"the network's output, {accuracy:.0%} of points on the right side",
            aspect="equal")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. The same gradients from miniclip
#
# The same network, the same weights, built from miniclip's `Tensor` and differentiated by
# miniclip's engine. In float64 the two engines do the same arithmetic, so the gradients
# should agree to round-off:

# %%
nodes = {name: Node(value) for name, value in params.items()}
error = forward(nodes, X) - labels[:, None]
((error * error).sum() * (1 / len(X))).backward()

tensors = {name: Tensor(value, requires_grad=True) for name, value in params.items()}
hidden = F.tanh(Tensor(X) @ tensors["W1"] + tensors["b1"])
output = F.tanh(hidden @ tensors["W2"] + tensors["b2"])
((output - Tensor(labels[:, None])) ** 2).mean().backward()
for name in params:
    difference = np.abs(nodes[name].grad - tensors[name].grad).max()
    print(f"{name}: shape {nodes[name].grad.shape}, largest |ours - miniclip's| = {difference:.1e}")
    assert difference < 1e-12

# %% [markdown]
# ## What miniclip adds to this engine
#
# The engine above is the whole idea; `miniclip/autograd.py` is the same design with what a
# real model needs:
#
# * an op is a `Function` class with `forward` and `backward` methods instead of a closure,
#   so it can save exactly the arrays its backward needs and **free** them after the
#   backward (activations are most of a network's memory);
# * `no_grad()` turns recording off for inference and optimiser updates;
# * gradients accumulate into leaves across `backward()` calls (as `Scalar.grad +=` does,
#   but not reset by each call), and non-leaf gradients are not kept;
# * float32 and float16 arrays, with the gradient cast back to each input's dtype;
# * the same code on a GPU: the array module `xp` (`13_gpu_with_cupy.ipynb`).
#
# Its topological order is the iterative depth-first search you saw here, over `Function`s
# instead of nodes, and `autograd.sum_to` is exercise 11a.
#
# **Where next.** `12_evaluating_clip.ipynb` measures what a trained CLIP has learned.

"""The autograd engine: ``Tensor``, ``Function`` and reverse-mode ``backward``.

A ``Tensor`` wraps an array (NumPy or CuPy, see ``backend``). Every differentiable op is
a ``Function`` subclass with two methods written on plain arrays:

* ``forward(*arrays)`` computes the output and saves on ``self`` whatever backward needs;
* ``backward(*grad_outputs)`` receives dL/d(output) and returns dL/d(input) for each input.

Calling a Function on tensors runs ``forward`` and, when gradients are wanted, records
the call in a graph: the output remembers the Function that made it (``grad_fn``), and
the Function remembers its inputs. ``loss.backward()`` walks that graph from the loss to
the leaves in reverse topological order, calling each ``backward`` once.

Adding an op takes two methods and a one-line wrapper, the same way every op in
``miniclip.functional`` is written::

    class Cube(Function):
        def forward(self, x):
            self.x = x                         # saved for backward
            return x ** 3

        def backward(self, grad_y):            # d(x^3)/dx = 3 x^2
            return grad_y * 3 * self.x ** 2

    def cube(x):
        return Cube()(x)

Gradient facts the engine takes care of, so a Function never has to:

* **Broadcasting.** If an input of shape ``[3]`` was broadcast against ``[4, 3]``, the
  Function may return a gradient of shape ``[4, 3]``; the engine sums it back to ``[3]``.
* **Fan-out.** A tensor used twice receives the sum of both gradients.
* **Accumulation.** Leaf tensors *add* into ``.grad`` on every ``backward()`` call, as in
  PyTorch, so gradients of several mini-batches can be accumulated before an optimiser
  step. Call ``zero_grad()`` (or set ``.grad = None``) to start afresh.
* **Freeing.** After ``backward()`` the saved arrays are released, unless
  ``retain_graph=True``; a second backward through a freed graph raises an error.

**First-order gradients only.** ``backward`` methods take and return plain arrays, not
tensors, so nothing a backward computes is recorded in a graph: ``x.grad`` is an array,
and there is no ``create_graph=True`` that would let you differentiate a gradient again
(DeZero, whose ``backward`` runs on Variables, can; so can PyTorch). That is a choice:
a backward on arrays is a few array calls with no graph bookkeeping, it reads as the
derivation in its docstring, and CLIP's training needs only first derivatives. Gradients
of gradients (a gradient penalty, Hessian-vector products) would need every backward
rewritten with tensor ops.
"""
import contextlib

import numpy as np

from . import backend

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Within this block ops record no graph (inference, optimiser updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Turn graph recording back on inside a ``no_grad`` block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


def _as_array(data, dtype=None):
    """Arrays of any device pass through; Python numbers and lists become NumPy arrays."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):
        data = np.asarray(data)  # NumPy reductions return scalars; keep tensors on 0-d arrays
    try:
        backend.device_of(data)
    except TypeError:
        data = np.asarray(data)
        if dtype is None and data.dtype == np.float64:
            dtype = np.float32  # Python floats make float32 tensors, as in PyTorch
    if dtype is not None and data.dtype != dtype:
        data = data.astype(dtype)
    return data


class Tensor:
    """An array with an optional gradient and a record of the op that produced it.

    ``Tensor(data, requires_grad=False, dtype=None, device=None)``: ``data`` is an array of
    any device, a NumPy array, a list or a number (Python floats become float32).
    """

    __array_priority__ = 1000  # make `numpy_array + tensor` call Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        data = _as_array(data, dtype)
        if device is not None:
            data = backend.move(data, device)
        self.data = data
        self.requires_grad = requires_grad
        self.grad = None
        self.grad_fn = None      # the Function that made this tensor (None for leaves)
        self.output_index = 0    # which output of grad_fn this tensor is
        self.retains_grad = False

    # ---------------------------------------------------------------- properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return self.transpose(*reversed(range(self.ndim)))

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", threshold=50)
        extras = [] if self.dtype == np.float32 else [f"dtype={self.dtype}"]
        if self.device is not backend.CPU:
            extras.append(f"device='{self.device.name}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ---------------------------------------------------------------- conversions
    def numpy(self):
        """A NumPy copy of the data, from any device (never a view the graph could change)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def __float__(self):
        return float(self.item())

    def __format__(self, spec):
        """``f"{loss:.3f}"`` formats a one-element tensor's value, as PyTorch does."""
        return format(self.item(), spec) if spec and self.size == 1 else super().__format__(spec)

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data as a new leaf that is cut off from the graph."""
        return Tensor(self.data)

    def to(self, device_or_dtype):
        """A copy on another device (``"cpu"``, ``"cuda"``) or of another dtype, differentiably."""
        from . import functional as F

        if backend.is_dtype(device_or_dtype):
            return F.astype(self, device_or_dtype)
        return F.to_device(self, device_or_dtype)

    def float(self):
        return self.to(np.float32)

    def half(self):
        return self.to(np.float16)

    def double(self):
        return self.to(np.float64)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self.retains_grad = True
        return self

    # ---------------------------------------------------------------- backward
    def backward(self, grad=None, retain_graph=False):
        """Reverse-mode differentiation from this tensor to every leaf that requires grad.

        ``grad`` is dL/d(self); it may be omitted only when ``self`` has one element
        (a scalar loss), in which case it is 1. Leaf gradients accumulate into ``.grad``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of the tensors "
                "it was computed from has requires_grad=True (or it was computed under no_grad())"
            )
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar (one-element) tensor, got shape "
                    f"{self.shape}; reduce it first (e.g. loss.sum() or loss.mean()) or pass "
                    f"backward(grad) with a gradient of shape {self.shape}"
                )
            grad = self.device.xp.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype)
            if tuple(grad.shape) != self.shape:
                raise ValueError(
                    f"backward(grad): grad has shape {tuple(grad.shape)} but the tensor has "
                    f"shape {self.shape}"
                )
            if backend.device_of(grad) is not self.device:
                raise ValueError(f"backward(grad): grad is on {backend.device_of(grad).name} "
                                 f"but the tensor is on {self.device.name}")
        _run_backward(self, grad, retain_graph)

    def _receive_grad(self, grad):
        """Accumulate a gradient arriving from a consumer of this tensor.

        The engine hands one array to several tensors (``Add`` returns ``gy`` for both
        inputs) and some are read-only broadcast views (``Sum``), so ``.grad`` starts as
        a copy: the tensor's own array, safe to edit in place (``p.grad *= 0.5``).
        """
        if self.grad_fn is not None:
            slots = self.grad_fn.grad_outputs
            i = self.output_index
            slots[i] = grad if slots[i] is None else slots[i] + grad
        if self.grad_fn is None or self.retains_grad:
            self.grad = grad.copy() if self.grad is None else self.grad + grad

    # ---------------------------------------------------------------- operators
    # Each operator is one line calling miniclip.functional, where the op and its
    # backward live. (Imported lazily: functional imports this module.)
    def __add__(self, other): return _F().add(self, other)
    def __radd__(self, other): return _F().add(other, self)
    def __sub__(self, other): return _F().sub(self, other)
    def __rsub__(self, other): return _F().sub(other, self)
    def __mul__(self, other): return _F().mul(self, other)
    def __rmul__(self, other): return _F().mul(other, self)
    def __truediv__(self, other): return _F().div(self, other)
    def __rtruediv__(self, other): return _F().div(other, self)
    def __neg__(self): return _F().neg(self)
    def __pow__(self, exponent): return _F().pow(self, exponent)
    def __rpow__(self, base): return _F().pow(base, self)
    def __matmul__(self, other): return _F().matmul(self, other)
    def __rmatmul__(self, other): return _F().matmul(other, self)
    def __getitem__(self, index): return _F().getitem(self, index)

    # Comparisons are not differentiable: they return plain boolean tensors. A Python
    # number is compared as it is (never via a NumPy array, which a device array refuses).
    def __lt__(self, other): return Tensor(self.data < _data_of(other))
    def __le__(self, other): return Tensor(self.data <= _data_of(other))
    def __gt__(self, other): return Tensor(self.data > _data_of(other))
    def __ge__(self, other): return Tensor(self.data >= _data_of(other))
    __hash__ = object.__hash__  # tensors are identified by object (used as dict keys)

    def reshape(self, *shape): return _F().reshape(self, *shape)
    def view(self, *shape): return _F().reshape(self, *shape)
    def flatten(self, start_dim=0, end_dim=-1): return _F().flatten(self, start_dim, end_dim)
    def transpose(self, *dims): return _F().transpose(self, *dims)
    def permute(self, *dims): return _F().permute(self, *dims)
    def expand(self, *shape): return _F().broadcast_to(self, *shape)
    def unsqueeze(self, dim): return _F().unsqueeze(self, dim)
    def squeeze(self, dim=None): return _F().squeeze(self, dim)
    def sum(self, dim=None, keepdim=False): return _F().sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return _F().mean(self, dim, keepdim)
    def max(self, dim=None, keepdim=False): return _F().max(self, dim, keepdim)
    def argmax(self, dim=None): return _F().argmax(self, dim)
    def exp(self): return _F().exp(self)
    def log(self): return _F().log(self)
    def sqrt(self): return _F().sqrt(self)
    def abs(self): return _F().abs(self)
    def relu(self): return _F().relu(self)
    def sigmoid(self): return _F().sigmoid(self)
    def tanh(self): return _F().tanh(self)
    def softmax(self, dim): return _F().softmax(self, dim)
    def log_softmax(self, dim): return _F().log_softmax(self, dim)
    def clamp(self, min=None, max=None): return _F().clamp(self, min, max)
    def norm(self, dim=None, keepdim=False): return _F().norm(self, dim, keepdim)
    def masked_fill(self, mask, value): return _F().masked_fill(self, mask, value)
    def type_as(self, other): return self.to(other.dtype)


def _F():
    from . import functional

    return functional


def _data_of(value):
    """The array inside a Tensor; anything else (a number, an array) as it is."""
    return value.data if isinstance(value, Tensor) else value


class Function:
    """Base class of every differentiable op (see the module docstring for the recipe).

    Subclasses implement ``forward(*arrays)`` and ``backward(*grad_outputs)``. Non-tensor
    settings (a dimension, a stride) are passed to ``__init__``.  ``forward`` may return
    one array or a tuple of arrays; ``backward`` returns one gradient per input (``None``
    for inputs that have no gradient, such as integer indices). ``backward`` must not write
    into its ``grad_outputs`` or the saved input arrays: the engine may share them with
    other tensors.
    """

    def __call__(self, *inputs):
        tensors = _as_tensors(inputs, type(self).__name__)
        outputs = self.forward(*(t.data for t in tensors))
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        results = [Tensor(out) for out in outputs]
        if _grad_enabled and any(t.requires_grad for t in tensors):
            self.inputs = tensors
            self.grad_outputs = [None] * len(results)
            # shape, dtype and device of each output, to zero-fill the gradient of an unused one
            self.output_meta = [(r.shape, r.dtype, r.device) for r in results]
            self.released = False
            for i, result in enumerate(results):
                result.requires_grad = True
                result.grad_fn = self
                result.output_index = i
        return results[0] if single else tuple(results)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    def release(self):
        """Free what forward saved, and the links to the inputs (called after backward
        unless retain_graph=True), so that a loss tensor kept after ``backward()`` does not
        keep every activation of its graph alive."""
        kept = {"grad_outputs": self.grad_outputs, "output_meta": self.output_meta}
        vars(self).clear()  # one operation, whatever forward saved
        vars(self).update(kept, inputs=(), released=True)


def _as_tensors(inputs, op_name):
    """Wrap Python numbers as constant tensors and check that every tensor is on one device."""
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    devices = {t.device.name for t in tensors}
    if len(devices) > 1:
        shapes = ", ".join(f"{t.device.name} {t.shape}" for t in tensors)
        raise RuntimeError(
            f"{op_name}: expected all tensors on one device, got tensors on {sorted(devices)} "
            f"({shapes}); move them with .to(device) first"
        )
    like = tensors[0] if tensors else None
    wrapped = []
    for x in inputs:
        if isinstance(x, Tensor):
            wrapped.append(x)
        elif like is not None and like.dtype.kind in "fc":
            # A Python number takes the dtype of the floating tensor it meets (weak typing,
            # as in PyTorch), so `half_tensor * 2.0` stays float16.
            wrapped.append(Tensor(x, dtype=like.dtype, device=like.device))
        else:
            # Met by an integer tensor (or by none), a number keeps its own kind, so
            # `int_tensor * 0.5` is not truncated to `int_tensor * 0`.
            wrapped.append(Tensor(x, device=like.device if like is not None else None))
    return wrapped


def _topological_order(root):
    """Functions reachable from ``root`` ordered so each comes after all its consumers.

    An iterative depth-first search (a recursive one would hit Python's recursion limit
    on graphs thousands of ops deep, e.g. a long training loop over one tensor).
    """
    order, visited = [], set()
    stack = [(root.grad_fn, False)]
    while stack:
        fn, children_done = stack.pop()
        if children_done:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t.grad_fn is not None and id(t.grad_fn) not in visited:
                stack.append((t.grad_fn, False))
    return order[::-1]  # post-order reversed: consumers before producers


def _run_backward(root, grad, retain_graph):
    root._receive_grad(grad)  # a leaf keeps it; a non-leaf hands it to its grad_fn
    if root.grad_fn is None:
        return
    for fn in _topological_order(root):
        if fn.released:
            raise RuntimeError(
                f"backward through {type(fn).__name__} a second time: its saved arrays were "
                "freed by the first backward(). Pass backward(retain_graph=True) the first time "
                "if you need to go through the graph twice."
            )
        grads_out = [g if g is not None else _zeros_like_output(fn, i)
                     for i, g in enumerate(fn.grad_outputs)]
        fn.grad_outputs = [None] * len(grads_out)  # consumed: a retained graph starts clean
        grads_in = fn.backward(*grads_out)
        if not isinstance(grads_in, tuple):
            grads_in = (grads_in,)
        if len(grads_in) != len(fn.inputs):
            raise RuntimeError(f"{type(fn).__name__}.backward returned {len(grads_in)} gradients "
                               f"for {len(fn.inputs)} inputs")
        for tensor, g in zip(fn.inputs, grads_in):
            if g is None or not tensor.requires_grad:
                continue
            tensor._receive_grad(_fit_gradient(g, tensor, fn))
        if not retain_graph:
            fn.release()


def _zeros_like_output(fn, i):
    shape, dtype, device = fn.output_meta[i]
    return device.xp.zeros(shape, dtype)


def _fit_gradient(grad, tensor, fn):
    """Undo broadcasting (sum over the broadcast axes) and match the input's dtype."""
    shape = tensor.shape
    if tuple(grad.shape) != shape:
        grad = sum_to(grad, shape, type(fn).__name__)
    if grad.dtype != tensor.dtype:
        grad = grad.astype(tensor.dtype)
    return grad


def sum_to(grad, shape, op_name="sum_to"):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` up to grad.shape.

    Broadcasting prepends axes and stretches size-1 axes, so its backward sums over the
    prepended axes and over the stretched ones (keeping them as size 1).
    """
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise RuntimeError(f"{op_name}: gradient of shape {tuple(grad.shape)} cannot be summed "
                           f"to the input shape {shape}")
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(shape)
    if tuple(grad.shape) != tuple(shape):
        raise RuntimeError(f"{op_name}: gradient of shape {tuple(grad.shape)} does not match "
                           f"the input shape {shape}")
    return grad

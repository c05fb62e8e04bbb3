"""Ops that move values around without changing them: reshape, transpose, indexing,
concatenation. Their backward moves the gradient back the same way, so each one is the
"inverse rearrangement" of its forward.
"""
from .. import backend
from ..autograd import Function, Tensor
from .support import wrap_dim


class Reshape(Function):
    """Same values, new shape; the gradient is reshaped back to the input's shape."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Transpose(Function):
    """Permute axes: y = x.transpose(axes). Backward applies the inverse permutation."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis] = position
        return gy.transpose(inverse)


class BroadcastTo(Function):
    """Stretch x to a larger shape; the engine sums the gradient back (see ``sum_to``)."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return backend.get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return gy


class GetItem(Function):
    """y = x[index] for any NumPy index (ints, slices, None, Ellipsis, integer/bool arrays).

    The gradient is scattered back into a zero array of x's shape. ``add.at`` (an
    unbuffered add) matters for integer-array indices that repeat: x[[0, 0]] uses x[0]
    twice, so x[0] must receive the sum of both gradients, not the last one.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.input_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.input_shape, dtype=gy.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy  # slices and ints select each element at most once
        else:
            xp.add.at(gx, self.index, gy)
        return gx


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


class Concatenate(Function):
    """y = concatenate(xs, axis); backward slices the gradient back into the pieces."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return backend.get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        return tuple(xp.split(gy, _split_points(self.sizes), axis=self.axis))


class Split(Function):
    """Cut x along an axis into pieces of the given sizes; backward concatenates them.

    Pieces that did not reach the loss get zero gradients from the engine.
    """

    def __init__(self, sizes, axis):
        self.sizes, self.axis = sizes, axis

    def forward(self, x):
        xp = backend.get_array_module(x)
        return tuple(xp.split(x, _split_points(self.sizes), axis=self.axis))

    def backward(self, *gys):
        return backend.get_array_module(gys[0]).concatenate(gys, axis=self.axis)


def _split_points(sizes):
    """Where ``xp.split`` cuts an axis into pieces of ``sizes``: [3, 2, 4] -> [3, 5]."""
    points, total = [], 0
    for n in sizes[:-1]:
        total += n
        points.append(total)
    return points


def _shape_args(shape):
    """Accept both reshape(2, 3) and reshape((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    shape = _shape_args(shape)
    size = 1
    for n in shape:
        size *= n if n != -1 else 1
    if -1 not in shape and size != x.size or -1 in shape and (size == 0 or x.size % size):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into shape {shape}")
    return Reshape(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the axes start_dim..end_dim into one (``torch.flatten``)."""
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = wrap_dim(start_dim, x.ndim, "flatten"), wrap_dim(end_dim, x.ndim, "flatten")
    merged = 1
    for n in x.shape[start:end + 1]:
        merged *= n
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def transpose(x, *dims):
    """``transpose(x, d0, d1)`` swaps two axes as in PyTorch; with no dims or a full
    permutation it permutes like NumPy (``x.T`` reverses all axes)."""
    if len(dims) == 2:
        axes = list(range(x.ndim))
        a, b = wrap_dim(dims[0], x.ndim, "transpose"), wrap_dim(dims[1], x.ndim, "transpose")
        axes[a], axes[b] = axes[b], axes[a]
        return Transpose(tuple(axes))(x)
    return permute(x, *(dims or reversed(range(x.ndim))))


def permute(x, *dims):
    dims = tuple(wrap_dim(d, x.ndim, "permute") for d in _shape_args(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} axes of a "
                         f"tensor of shape {x.shape}")
    return Transpose(dims)(x)


def broadcast_to(x, *shape):
    shape = _shape_args(shape)
    shape = tuple(old if new == -1 else new
                  for old, new in zip((None,) * (len(shape) - x.ndim) + x.shape, shape))
    return BroadcastTo(shape)(x)


def unsqueeze(x, dim):
    """Insert a size-1 axis at ``dim`` (-ndim - 1 <= dim <= ndim, as in PyTorch)."""
    dim = wrap_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dim = wrap_dim(dim, x.ndim, "squeeze")
    if x.shape[dim] != 1:
        return x
    return reshape(x, x.shape[:dim] + x.shape[dim + 1:])


def getitem(x, index):
    """``x[index]`` with gradients; tensors used as indices are replaced by their arrays."""
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data
    return GetItem(index)(x)


def cat(tensors, dim=0):
    """Concatenate along an existing axis (``torch.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ndim = tensors[0].ndim
    axis = wrap_dim(dim, ndim, "cat")
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != \
                tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            shapes = [t.shape for t in tensors]
            raise ValueError(f"cat: tensors must match in every dim but {dim}, got {shapes}")
    return Concatenate(axis)(*tensors)


def stack(tensors, dim=0):
    """Join along a new axis (``torch.stack``): unsqueeze each, then concatenate."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors must have one shape, got "
                         f"{[t.shape for t in tensors]}")
    axis = wrap_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, axis) for t in tensors], axis)


def split(x, split_size_or_sections, dim=0):
    """``torch.split``: pieces of ``split_size`` each (the last may be smaller), or of the
    listed sizes. Returns a tuple of tensors."""
    axis = wrap_dim(dim, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [min(step, length - start) for start in range(0, length, step)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {dim} of "
                             f"shape {x.shape} has length {length}")
    return Split(sizes, axis)(x)  # a tuple even for one piece: forward returns a tuple

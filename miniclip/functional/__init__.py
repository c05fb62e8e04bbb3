"""``miniclip.functional``: every differentiable op, each a ``Function`` with a hand-written
backward whose docstring derives it. Names and argument order follow
``torch.nn.functional`` where PyTorch has the op.

Where to find an op's backward:

* ``math.py``          add, sub, mul, div, neg, pow, exp, log, sqrt, abs, matmul, clamp, where
* ``shape.py``         reshape, transpose/permute, indexing, cat/stack/split
* ``reduce.py``        sum, mean, max, norm
"""
from .math import (abs, add, astype, clamp, div, exp, log, masked_fill, matmul, mul, neg, pow,
                   sqrt, sub, to_device, where)
from .reduce import argmax, max, mean, norm, sum
from .shape import (broadcast_to, cat, flatten, getitem, permute, reshape, split, squeeze, stack,
                    transpose, unsqueeze)

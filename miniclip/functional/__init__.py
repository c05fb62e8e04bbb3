"""``miniclip.functional``: every differentiable op, each a ``Function`` with a hand-written
backward whose docstring derives it. Names and argument order follow
``torch.nn.functional`` where PyTorch has the op.

Where to find an op's backward:

* ``math.py``           add, sub, mul, div, neg, pow, exp, log, sqrt, abs, matmul, clamp, where,
                        masked_fill, astype, to_device
* ``shape.py``          reshape, transpose/permute, broadcast_to, indexing, cat/stack/split
* ``reduce.py``         sum, mean, max, norm (and argmax, which has no gradient)
* ``activation.py``     relu, gelu, quick_gelu, sigmoid, log_sigmoid, tanh, softmax,
                        log_softmax
* ``layers.py``         linear, embedding, dropout
* ``normalization.py``  layer_norm, batch_norm, normalize
* ``conv.py``           conv2d, avg_pool2d, max_pool2d, adaptive_avg_pool2d
* ``cross_entropy.py``  cross_entropy
* ``special.py``        erf, on arrays, for the exact GELU
* ``gradcheck.py``      finite-difference checks of every backward (not imported here)
* ``support.py``        what several ops share: argument checks, the stable log-softmax
"""
from .activation import (
    gelu,
    log_sigmoid,
    log_softmax,
    quick_gelu,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from .conv import adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d
from .cross_entropy import cross_entropy
from .layers import dropout, embedding, linear
from .math import (
                   abs,
                   add,
                   astype,
                   clamp,
                   div,
                   exp,
                   log,
                   masked_fill,
                   matmul,
                   mul,
                   neg,
                   pow,
                   sqrt,
                   sub,
                   to_device,
                   where,
)
from .normalization import batch_norm, layer_norm, normalize
from .reduce import argmax, max, mean, norm, sum
from .shape import (
                   broadcast_to,
                   cat,
                   flatten,
                   getitem,
                   permute,
                   reshape,
                   split,
                   squeeze,
                   stack,
                   transpose,
                   unsqueeze,
)

"""``miniclip.nn``: modules with named, trainable parameters (PyTorch's ``torch.nn`` API).

* ``module.py``     Module, Parameter, Sequential, ModuleList, Identity
* ``layers.py``     Linear, LayerNorm, Conv2d, BatchNorm2d, Embedding, Dropout
* ``activation.py`` ReLU, GELU, QuickGELU
* ``attention.py``  MultiheadAttention and the shared attention functions
* ``init.py``       initialisers (normal_, uniform_, xavier_uniform_, ...) and manual_seed
"""
from . import init
from .activation import GELU, QuickGELU, ReLU
from .attention import (
                        MultiheadAttention,
                        merge_heads,
                        multi_head_attention,
                        scaled_dot_product_attention,
                        split_heads,
)
from .init import manual_seed
from .layers import BatchNorm2d, Conv2d, Dropout, Embedding, LayerNorm, Linear
from .module import Identity, IncompatibleKeys, Module, ModuleList, Parameter, Sequential

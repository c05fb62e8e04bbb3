"""miniclip: OpenAI's CLIP rebuilt from scratch on NumPy (CPU) and CuPy (GPU) arrays.

The package is layered; each layer only uses the ones above it:

* ``backend``        NumPy / CuPy array modules and devices
* ``autograd``       ``Tensor``, ``Function`` and reverse-mode ``backward``
* ``functional``     every differentiable op with its hand-derived backward
* ``gradcheck``      finite-difference checks of those backwards
* ``nn``             ``Module``, layers and multi-head attention
* ``models``         the text Transformer, ViT, modified ResNet and ``CLIP``
* ``tokenizer``      CLIP's byte-level BPE
* ``loss``, ``optim``, ``amp``   the paper's objective, AdamW, mixed precision
* ``checkpoint``, ``hub``, ``api``   reading weights and ``miniclip.load``
* ``data``, ``train``, ``zeroshot``   the tiny training run and zero-shot evaluation
"""
from . import functional, nn
from .data.preprocess import Preprocess
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .models import CLIP, available_configs, build_model, create_model, load
from .nn.init import manual_seed
from .tokenizer import BPETokenizer, load_tokenizer, tokenize
from .weights import available_models, load_state_dict

__version__ = "0.1.0"

__all__ = [
    "BPETokenizer", "CLIP", "Function", "Preprocess", "Tensor", "available_configs",
    "available_models", "build_model", "create_model", "enable_grad", "functional",
    "is_grad_enabled", "load", "load_state_dict", "load_tokenizer", "manual_seed", "nn",
    "no_grad", "tokenize",
]

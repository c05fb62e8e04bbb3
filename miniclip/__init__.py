"""miniclip: OpenAI's CLIP rebuilt from scratch on NumPy (CPU) and CuPy (GPU) arrays.

A numeric stack, each layer using only the layers below it:

* ``backend``                          NumPy / CuPy array modules and devices
* ``autograd``                         ``Tensor``, ``Function`` and reverse-mode ``backward``
* ``functional``                       every differentiable op with its hand-derived
                                       backward; finite-difference checks of them (``gradcheck``)
* ``nn``                               ``Module``, layers and multi-head attention
* ``models``                           the text Transformer, ViT, modified ResNet, ``CLIP``
                                       and ``load``
* ``training.loss``, ``optim``          the paper's loss, AdamW, clipping, schedules, flat
                                       buckets, mixed precision (``optim.amp``)
* ``training``, ``train``, ``evaluation``, ``distributed``  the paper's recipe, the one
                                       training step, run state, the training program
                                       (``python -m miniclip.train``), zero-shot evaluation
                                       and ``python -m miniclip.evaluation``, data parallelism
* ``grading``, ``grade``               the assignments' grader

and independent leaves, which import nothing of the stack:

* ``tokenizer``   CLIP's byte-level BPE
* ``weights``     the released models; checkpoint formats, Hugging Face names, downloads
* ``data``        datasets, CLIP's image preprocessing, the loader
* ``system``      process set-up: BLAS threads, memory reuse, atomic file writes, the
                  programs' error and exit-code policy

(``autograd`` runs the ops of ``functional`` for ``Tensor``'s operators, importing them at
call time.) ``tests/test_layout.py`` checks these layers against the imports.
"""
from . import functional, nn, optim
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .data.preprocess import Preprocess
from .models import CLIP, available_configs, build_model, create_model, load
from .nn.init import manual_seed
from .tokenizer import BPETokenizer, load_tokenizer, tokenize
from .weights import available_models, load_state_dict

__version__ = "0.1.0"

__all__ = [
    "BPETokenizer", "CLIP", "Function", "Preprocess", "Tensor", "available_configs",
    "available_models", "build_model", "create_model", "enable_grad", "functional",
    "is_grad_enabled", "load", "load_state_dict", "load_tokenizer", "manual_seed", "nn",
    "no_grad", "optim", "tokenize",
]

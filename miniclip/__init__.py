"""miniclip: OpenAI's CLIP rebuilt from scratch on NumPy (CPU) and CuPy (GPU) arrays."""
from . import functional
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad

__version__ = "0.1.0"

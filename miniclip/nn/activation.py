"""Activation functions as modules, for use inside ``Sequential`` (they have no weights)."""
from .. import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """The exact (erf) Gaussian Error Linear Unit, x·Phi(x)."""

    def forward(self, x):
        return F.gelu(x)


class QuickGELU(Module):
    """x·sigmoid(1.702·x): the GELU approximation OpenAI's CLIP transformers use."""

    def forward(self, x):
        return F.quick_gelu(x)

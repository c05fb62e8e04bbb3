"""Locking a tower of a CLIP: its weights stay as they are while the rest trains.

LiT (Zhai et al., 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning") locks a
pretrained image tower and trains only the text side to read its features. Locking a
tower here means three things:

* every parameter of the tower gets ``requires_grad = False`` (and loses any ``.grad``),
  so the optimiser, built over the trainable parameters (``recipe.paper_param_groups``),
  never holds it;
* no op of the tower records a graph: ``Function.__call__`` links an output to its inputs
  only when one of them requires a gradient, and the tower's inputs (pixels, token ids)
  and weights require none. ``loss.backward()`` therefore never reaches the tower's ops:
  the step saves the tower's whole backward pass, not just its update;
* a locked ResNet's batch norms stay in evaluation mode (running statistics, which are
  not updated) even inside ``model.train()``: a batch's own statistics would make the
  locked tower's features drift with every batch.

The two towers follow OpenAI's names: the image tower is ``visual.*``; the text tower is
every other parameter except ``logit_scale``, the temperature, which belongs to neither
and keeps training (locking both towers leaves only it).
"""
from .. import nn

TOWERS = ("image", "text")

#: The temperature: shared by the two towers, locked by neither.
TEMPERATURE = "logit_scale"


def tower_of(name):
    """``"image"``, ``"text"`` or None (the temperature) for a parameter name of a CLIP."""
    if name == TEMPERATURE:
        return None
    return "image" if name.startswith("visual.") else "text"


def tower_parameters(model, tower):
    """``[(name, parameter)]`` of one tower of ``model``, in ``named_parameters`` order."""
    if tower not in TOWERS:
        raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}")
    return [(name, p) for name, p in model.named_parameters() if tower_of(name) == tower]


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """A ``BatchNorm2d`` pinned to evaluation mode: ``train()`` leaves it normalising with
    its running statistics, which therefore never change. It keeps the names, buffers and
    state dict of the module it was, so a checkpoint of a locked model loads anywhere."""

    @property
    def training(self):
        return False

    @training.setter
    def training(self, mode):
        pass  # Module.train() sets every module's mode; this one stays in eval mode


def lock_tower(model, tower):
    """Lock ``tower`` (``"image"`` or ``"text"``) of the CLIP ``model`` in place (see the
    module docstring); returns the names of the parameters locked. Build the optimiser
    afterwards, so that it holds only what trains."""
    locked = tower_parameters(model, tower)
    for _, param in locked:
        param.requires_grad = False
        param.grad = None
    if tower == "image":
        for module in model.visual.modules():
            if type(module) is nn.BatchNorm2d:
                # the same object, with its mode pinned: nothing that refers to it changes
                module.__class__ = FrozenBatchNorm2d
    return [name for name, _ in locked]


def locked_towers(model):
    """The towers of ``model`` whose parameters all have ``requires_grad`` False."""
    return [tower for tower in TOWERS
            if all(not p.requires_grad for _, p in tower_parameters(model, tower))]

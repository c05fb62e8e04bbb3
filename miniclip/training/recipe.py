"""The CLIP paper's training recipe: which parameters decay, Adam's β and ε per image tower,
and the paper's settings for each released model.

These are choices about training CLIP, not about optimisers, so they live here rather than
in ``optim/``; they are named ``paper_*`` (not ``clip_*``, which in ``optim/`` means
clipping, as in ``clip_grad_norm_``):

* ``paper_param_groups`` — the "decay" and "no decay" groups of a model's parameters;
* ``TOWER_ADAM``, ``PAPER_TRAINING`` — β/ε per image tower, and the settings all share;
* ``paper_hyperparameters`` — everything for one released model;
* ``paper_optimizer`` — ``AdamW`` set up that way.
"""
from ..models.clip import vision_kind
from ..optim import AdamW
from ..weights.releases import RELEASES


def paper_param_groups(model, weight_decay):
    """Two parameter groups for CLIP training: weights that decay and the rest, which don't.

    The paper applies weight decay "to all weights that are not gains or biases". We
    decide by shape, which draws that line for every CLIP model:

    * **decay** (``ndim >= 2``): the matrices of linear layers, attention projections,
      convolutions, the token and positional embedding tables and ``text_projection``/
      ``visual.proj`` — the weights whose size decay is meant to keep in check;
    * **no decay** (``ndim < 2``): biases, LayerNorm/BatchNorm gains, ``logit_scale``
      (shrinking the log-temperature towards 0 would pull the logit scale towards 1)
      and the ViT's ``class_embedding`` vector.

    The paper does not say how it treated embeddings and the temperature. Decaying the
    embedding tables and not the 1-D ``class_embedding`` is our choice; it is the same
    split as open_clip's (which tests ``ndim < 2`` and names containing ``bn``, ``ln``,
    ``bias`` or ``logit_scale``). Frozen parameters (``requires_grad=False``) are left
    out. Each group carries ``"names"`` so it can be inspected.
    """
    decay, no_decay = ([], []), ([], [])
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        params, names = decay if p.ndim >= 2 else no_decay
        params.append(p)
        names.append(name)
    return [{"params": decay[0], "names": decay[1], "weight_decay": weight_decay},
            {"params": no_decay[0], "names": no_decay[1], "weight_decay": 0.0}]


# Adam's β2 and ε differ by image tower (paper, section 2.5 and appendix tables 19-20;
# docs/reference.md, "Training facts"), keyed by ``CLIP.vision_kind``:
# the ViTs were trained with a shorter second-moment memory and a larger ε.
TOWER_ADAM = {
    "vit": dict(betas=(0.9, 0.98), eps=1e-6),
    "resnet": dict(betas=(0.9, 0.999), eps=1e-8),
}

PAPER_TRAINING = dict(weight_decay=0.2, warmup_steps=2000, batch_size=32768, epochs=32)


def paper_hyperparameters(model_name):
    """The paper's optimisation settings for one of the released models.

    Returns a dict with ``lr`` (peak, from ``weights.releases.RELEASES``), ``betas``, ``eps``, ``weight_decay`` (0.2),
    ``warmup_steps`` (2000), ``batch_size`` (32,768) and ``epochs`` (32). β2 and ε
    depend on the image tower (``TOWER_ADAM``). A new small model can start from
    ``{**TOWER_ADAM["vit"], **PAPER_TRAINING}`` with its own ``lr``.
    """
    if model_name not in RELEASES:
        raise ValueError(f"no paper hyperparameters for {model_name!r}; "
                         f"known models: {list(RELEASES)}")
    release = RELEASES[model_name]
    tower = vision_kind(release.config["vision_layers"])
    return dict(lr=release.peak_lr, **TOWER_ADAM[tower], **PAPER_TRAINING)


def paper_optimizer(model, lr, tower, weight_decay=PAPER_TRAINING["weight_decay"]):
    """``AdamW`` over ``paper_param_groups(model)`` with the paper's β and ε for ``tower``
    (a ``CLIP.vision_kind``: ``"vit"`` or ``"resnet"``) and weight decay 0.2 by default."""
    if tower not in TOWER_ADAM:
        raise ValueError(f"tower must be one of {list(TOWER_ADAM)}, got {tower!r}")
    return AdamW(paper_param_groups(model, weight_decay), lr=lr, weight_decay=weight_decay,
                 **TOWER_ADAM[tower])

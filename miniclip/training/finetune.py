"""Fine-tuning: training that starts from weights rather than from random ones.

``load_trainable(source)`` builds a CLIP in training mode from anything ``miniclip.load``
reads — a released name (``"ViT-B/32"``), a TorchScript or ``torch.save`` ``.pt``, an
``.npz``, a ``.safetensors``, a Hugging Face folder, or a run's ``checkpoint.npz`` (its
model weights; its optimiser state belongs to that run, not to this one). The
architecture comes from the weights (``models.infer_config``), so no configuration name
is needed; ``check_model_options`` refuses one that disagrees with them.

The tokenizer must be the one the weights were trained with, and the vocabulary size
tells which (``evaluation.features.tokenizer_for``): OpenAI's 49,408 ids for the released
models and for Hugging Face conversions of them, miniclip's own 4,096 ids for the tiny
presets and the runs trained from them.

A pretrained model needs gentler settings than a random one (``FINE_TUNING``): a peak
learning rate a tenth of the from-scratch one, a warm-up of a twentieth of the steps
(the pretrained features need no long ramp, only the optimiser's moments do), the
weight decay of the WiSE-FT paper's fine-tuning (0.1) and the CLIP paper's Adam β and ε
for the image tower (``recipe.TOWER_ADAM``).
"""
import hashlib
import os
from typing import NamedTuple

from ..evaluation.features import OPENAI_VOCAB_SIZE, tokenizer_for
from ..models import build_model, get_config
from ..models.configs import MINICLIP_VOCAB_SIZE, RELEASED_CONFIGS, TINY_CONFIGS
from ..models.pretrained import model_weights, weights_path
from ..weights import load_state_dict

#: The fine-tuning defaults of ``python -m miniclip.train --init-from``: peak rate, warm-up
#: as a fraction of the steps, weight decay of the weight matrices, and steps.
FINE_TUNING = dict(lr=1e-4, warmup_fraction=0.05, weight_decay=0.1, steps=200)


class InitialWeights(NamedTuple):
    """What a fine-tuning run starts from."""

    model: object       # the CLIP, float32, in training mode, on the CPU
    source: str         # as given: a released name or a path
    path: str           # the file or folder read
    sha256: str         # of that file (of a folder: of its files' names and contents)
    name: str           # the named configuration the weights have, or "custom"


def load_trainable(source, download_root=None):
    """The :class:`InitialWeights` of ``source`` (a released name or a path)."""
    try:
        path = weights_path(source, download_root)
    except RuntimeError as error:  # a released model's download that failed
        raise ValueError(f"--init-from {source}: {error}. Offline? Download the file "
                         "elsewhere and pass its path to --init-from") from None
    model = build_model(model_weights(load_state_dict(path))).train()
    return InitialWeights(model, os.fspath(source), path, weights_sha256(path),
                          config_name(model.config) or "custom")


def weights_sha256(path):
    """The SHA-256 of a weights file; of a folder (Hugging Face), of each of its files'
    relative names and contents in sorted order, so that the digest names its contents."""
    if not os.path.isdir(path):
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    digest = hashlib.sha256()
    for root, folders, files in os.walk(path):
        folders.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def config_name(config):
    """The name of the released or teaching configuration equal to ``config``, or None."""
    for name, named in {**RELEASED_CONFIGS, **TINY_CONFIGS}.items():
        if _comparable(named) == _comparable(config):
            return name
    return None


def _comparable(config):
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in config.items()}


def check_model_options(initial, model_name=None, tower=None):
    """Raise ``ValueError`` (one line naming the fix) if ``--model`` or ``--tower``
    disagree with the architecture of the weights ``initial`` (an :class:`InitialWeights`)."""
    config = _comparable(initial.model.config)
    fix = "leave it out: --init-from takes the architecture from the weights"
    if model_name is not None:
        try:
            wanted = _comparable(get_config(model_name))
        except ValueError as error:
            raise ValueError(f"--model {model_name}: {error}; {fix}") from None
        differing = [key for key in wanted if wanted[key] != config.get(key)]
        if differing:
            key = differing[0]
            raise ValueError(f"--model {model_name} has {key}={wanted[key]!r} but the weights "
                             f"{initial.source} have {key}={config[key]!r}; {fix}")
    kind = initial.model.vision_kind
    if tower is not None and {"vit": "vit", "rn": "resnet"}[tower] != kind:
        raise ValueError(f"--tower {tower}, but the weights {initial.source} have a "
                         f"{'ResNet' if kind == 'resnet' else 'ViT'} image tower; {fix}")


def vocabulary_name(vocab_size):
    """Which tokenizer a vocabulary of ``vocab_size`` ids is, in words."""
    if vocab_size == OPENAI_VOCAB_SIZE:
        return f"OpenAI's byte-level BPE ({OPENAI_VOCAB_SIZE:,} ids)"
    if vocab_size == MINICLIP_VOCAB_SIZE:
        return f"miniclip's own byte-level BPE ({MINICLIP_VOCAB_SIZE:,} ids)"
    return f"an unknown vocabulary of {vocab_size:,} ids"


def training_tokenizer(initial, merges=None):
    """``(tokenize, description)`` for the weights ``initial``: ``tokenize`` turns captions
    into ``int64 [N, C]`` ids of the model's context length (cut if longer), and
    ``description`` says which vocabulary it is. ``merges`` is a merges file or Hugging
    Face folder (``--tokenizer``), needed for OpenAI's vocabulary when no installed
    clip/open_clip package provides it. A tokenizer that does not fit the weights raises
    ``ValueError``, one line naming the fix."""
    model = initial.model
    try:
        tokenize = tokenizer_for(model, merges)
    except ValueError as error:
        if merges is None:  # a vocabulary that is neither miniclip's nor OpenAI's
            raise ValueError(f"--init-from {initial.source}: its vocabulary has "
                             f"{model.vocab_size:,} ids, neither miniclip's "
                             f"({MINICLIP_VOCAB_SIZE:,}) nor OpenAI's ({OPENAI_VOCAB_SIZE:,}); "
                             "pass the merges file it was trained with as --tokenizer FILE"
                             ) from None
        fix = ("leave --tokenizer out: miniclip's own vocabulary is the tiny presets'"
               if model.vocab_size == MINICLIP_VOCAB_SIZE else
               "pass the merges file the weights were trained with")
        raise ValueError(f"--tokenizer {merges} does not fit --init-from {initial.source} "
                         f"({error}); {fix}") from None
    return tokenize, vocabulary_name(model.vocab_size)

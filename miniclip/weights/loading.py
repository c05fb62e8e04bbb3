"""``load_state_dict``: CLIP weights from any supported checkpoint, under OpenAI's names.

A *state dict* here is a ``dict[str, numpy.ndarray]`` that uses the parameter
names of OpenAI's reference code, e.g. ``visual.conv1.weight``,
``transformer.resblocks.0.attn.in_proj_weight`` or ``logit_scale``. The file formats are
``formats.py``'s; Hugging Face folders and names are ``huggingface.py``'s.

Floating-point tensors are converted to float32 on load (the released files
store most weights as float16).  Integer tensors, such as BatchNorm's
``num_batches_tracked`` counter, keep their integer type.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import CheckpointError
from .formats import read_weights_file
from .huggingface import convert_hf_state_dict, is_hf_state_dict, load_hf_folder

__all__ = ["load_state_dict"]


def load_state_dict(path) -> dict[str, np.ndarray]:
    """Load CLIP weights from any supported checkpoint into an OpenAI-named state dict.

    ``path`` is a file (TorchScript ``.pt``, ``torch.save`` zip, ``.npz``,
    ``.safetensors``) or a Hugging Face folder.  The format is detected from
    the contents.  Floating-point arrays come back as float32, integer ones
    unchanged, 0-d tensors (like ``logit_scale``) as 0-d arrays.

    Raises ``FileNotFoundError`` for a missing file and a
    :class:`~miniclip.weights.errors.CheckpointError` (a ``ValueError``) naming the file,
    the part that is wrong and the fix for a damaged or unsupported one; a pickle that
    names anything beyond tensors and containers raises its subclass
    ``ForbiddenGlobalError``, which is also a ``pickle.UnpicklingError``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        state_dict = load_hf_folder(path)
    else:
        state_dict = read_weights_file(path)
    if is_hf_state_dict(state_dict):
        try:
            state_dict = convert_hf_state_dict(state_dict)
        except ValueError as error:  # names or shapes that are not transformers' CLIPModel
            raise CheckpointError(path, None, str(error), "expected the tensors of "
                                  "transformers' CLIPModel, under its names") from error
    return _to_float32(state_dict)


def _to_float32(state_dict: dict) -> dict[str, np.ndarray]:
    """Convert every floating-point array to float32; leave integer ones alone."""
    return {
        name: value.astype(np.float32, copy=False)
        if np.issubdtype(value.dtype, np.floating)
        else value
        for name, value in state_dict.items()
    }

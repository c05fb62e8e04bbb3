"""Hugging Face ``transformers`` CLIP checkpoints: their folders and their parameter names.

transformers' ``CLIPModel`` holds the same numbers as OpenAI's CLIP under different names;
:func:`convert_hf_state_dict` translates them to OpenAI's, which are the only names
miniclip's models use.
"""

from __future__ import annotations

import collections
import json
import os
import re

import numpy as np

from .errors import DAMAGED, CheckpointError, parsing, short_repr
from .formats import read_weights_file

__all__ = ["convert_hf_state_dict", "is_hf_state_dict", "load_hf_folder"]

# transformers' CLIPModel holds the same numbers as OpenAI's CLIP under
# different names.  Three differences are more than a rename:
# * attention: HF has separate q_proj/k_proj/v_proj; OpenAI (PyTorch's
#   nn.MultiheadAttention) stacks them as rows [q; k; v] of in_proj_weight.
# * projections: HF stores them as nn.Linear weights [out, in], applied as
#   x @ W.T; OpenAI stores the matrix [in, out] itself, applied as x @ P.
# * position_ids: a buffer holding 0, 1, 2, ... that OpenAI's model doesn't need.

# Names outside the transformer blocks.
_HF_NAMES = {
    "logit_scale": "logit_scale",
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",  # "layrnorm" is HF's spelling
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
}

# The two projections, which are transposed as well as renamed.
_HF_PROJECTIONS = {
    "text_projection.weight": "text_projection",
    "visual_projection.weight": "visual.proj",
}

# Names inside a block: "<tower>.encoder.layers.<i>.<part>.<weight|bias>".
_HF_BLOCK_NAME = re.compile(r"(text_model|vision_model)\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)")
_HF_TOWERS = {"text_model": "transformer.resblocks", "vision_model": "visual.transformer.resblocks"}
_HF_BLOCK_PARTS = {
    "layer_norm1": "ln_1",
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
_HF_QKV_PARTS = {"self_attn.q_proj": "q", "self_attn.k_proj": "k", "self_attn.v_proj": "v"}


def is_hf_state_dict(state_dict: dict) -> bool:
    """HF CLIP checkpoints are recognised by the prefixes of their tower names."""
    return any(name.startswith(("text_model.", "vision_model.")) for name in state_dict)


def convert_hf_state_dict(hf_state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Translate a Hugging Face ``CLIPModel`` state dict to OpenAI's names.

    Only ViT models exist in transformers' CLIP format.  Raises ``ValueError``
    for a name it does not know, or for attention without all of q, k and v.
    """
    state_dict = {}
    qkv = collections.defaultdict(dict)  # (block, "weight" | "bias") -> {"q": ..., "k": ..., "v": ...}
    for name, value in hf_state_dict.items():
        if name.endswith(".position_ids"):
            continue
        if name in _HF_NAMES:
            state_dict[_HF_NAMES[name]] = value
            continue
        if name in _HF_PROJECTIONS:
            state_dict[_HF_PROJECTIONS[name]] = np.ascontiguousarray(value.T)  # [E, W] -> [W, E]
            continue
        match = _HF_BLOCK_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"unrecognised name in a Hugging Face CLIP checkpoint: {short_repr(name)}")
        tower, index, part, kind = match.groups()
        block = f"{_HF_TOWERS[tower]}.{index}"
        if part in _HF_QKV_PARTS:
            qkv[block, kind][_HF_QKV_PARTS[part]] = value
        elif part in _HF_BLOCK_PARTS:
            state_dict[f"{block}.{_HF_BLOCK_PARTS[part]}.{kind}"] = value
        else:
            raise ValueError(f"unrecognised name in a Hugging Face CLIP checkpoint: {short_repr(name)}")

    for (block, kind), parts in qkv.items():
        missing = [letter for letter in "qkv" if letter not in parts]
        if missing:
            raise ValueError(f"{block}: attention {kind} has no {', '.join(missing)} projection")
        # weights: 3 x [d, d] -> [3d, d]; biases: 3 x [d] -> [3d]
        state_dict[f"{block}.attn.in_proj_{kind}"] = np.concatenate([parts["q"], parts["k"], parts["v"]])
    return state_dict


# transformers' config.json of a CLIP is about 5 KB; more is not a configuration.
_MAX_CONFIG_SIZE = 1 << 20

# The weight files a transformers folder may hold, in order of preference.
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# transformers' defaults for the config entries we check; config.json may
# leave out entries that have their default value.
_HF_CONFIG_DEFAULTS = {
    "text_config": {"hidden_size": 512, "num_attention_heads": 8, "hidden_act": "quick_gelu"},
    "vision_config": {"hidden_size": 768, "num_attention_heads": 12, "hidden_act": "quick_gelu"},
}


def _check_hf_config(config: dict, path: str) -> None:
    """Refuse models that OpenAI's architecture cannot run.

    The weights don't say which activation or how many attention heads a
    model uses.  OpenAI's models use QuickGELU and 64-wide heads, and so does
    miniclip, so other HF models (many LAION ones use GELU) would load
    without complaint and then compute wrong features.
    """
    if not isinstance(config, dict):
        raise CheckpointError(path, None, f"holds a JSON {type(config).__name__}, not an "
                              "object", DAMAGED)
    for tower, defaults in _HF_CONFIG_DEFAULTS.items():
        given = config.get(tower, {})
        if not isinstance(given, dict):
            raise CheckpointError(path, f"field {tower!r}", f"is a {type(given).__name__}, "
                                  "not an object", DAMAGED)
        settings = {**defaults, **given}
        sizes = settings["hidden_size"], settings["num_attention_heads"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise CheckpointError(path, f"field {tower!r}", f"gives hidden_size "
                                  f"{short_repr(sizes[0])} and num_attention_heads "
                                  f"{short_repr(sizes[1])}, not positive integers", DAMAGED)
        if settings["hidden_act"] != "quick_gelu":
            raise CheckpointError(path, f"field '{tower}.hidden_act'", f"{tower} uses activation "
                                  f"{short_repr(settings['hidden_act'])}",
                                  "miniclip implements only 'quick_gelu'")
        head_width = sizes[0] / sizes[1]
        if head_width != 64:
            raise CheckpointError(path, f"field {tower!r}", f"{tower} has attention heads of "
                                  f"width {head_width:g}", "miniclip assumes 64")


def load_hf_folder(folder: str) -> dict[str, np.ndarray]:
    """Read a folder written by transformers' ``CLIPModel.save_pretrained``."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{folder} is a folder but has no config.json, so it is not a Hugging Face checkpoint")
    with open(config_path, "rb") as file:
        raw = file.read(_MAX_CONFIG_SIZE + 1)
    if len(raw) > _MAX_CONFIG_SIZE:
        raise CheckpointError(config_path, None, f"is over {_MAX_CONFIG_SIZE} bytes, not a "
                              "configuration")
    with parsing(config_path, None, "is not a valid JSON configuration"):
        config = json.loads(raw.decode("utf-8"))
    _check_hf_config(config, config_path)
    for weight_file in _HF_WEIGHT_FILES:
        weight_path = os.path.join(folder, weight_file)
        if os.path.isfile(weight_path):
            return read_weights_file(weight_path)
    raise FileNotFoundError(f"{folder} has a config.json but no weights: looked for {' and '.join(_HF_WEIGHT_FILES)}")

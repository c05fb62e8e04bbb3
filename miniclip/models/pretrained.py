"""``load``: a ready-to-use CLIP and its preprocessing in one call, like ``clip.load``."""
import os

from ..data.preprocess import Preprocess
from ..weights import CheckpointError, hub, load_state_dict
from ..weights.errors import summary
from .clip import build_model

#: The prefix of the model's arrays in a training state (``training/state.py``).
TRAINING_PREFIX = "model/"


def load(name_or_path, device="cpu", download_root=None):
    """``(model, preprocess)`` for a released model name or a checkpoint file.

    * ``name_or_path``: a name from ``miniclip.available_models()`` (e.g. ``"ViT-B/32"``,
      downloaded once into ``download_root`` or the cache folder and checked against its
      SHA-256), or the path of a checkpoint in any format ``miniclip.weights.load_state_dict`` reads
      (OpenAI's TorchScript ``.pt``, ``torch.save`` files, ``.npz``, ``.safetensors``, a
      Hugging Face folder).
      A training run's ``checkpoint.npz`` (``python -m miniclip.train``) loads too: its
      model weights are read, its optimiser state ignored.
    * ``device``: ``"cpu"`` or ``"cuda"``.

    A damaged or unsupported file, or one whose tensors do not make a CLIP, raises a
    ``miniclip.weights.CheckpointError`` (a ``ValueError``) naming the file and the fix.

    The model is float32 and in eval mode; ``preprocess`` turns a PIL image (or an image
    file's path) into the float32 array ``[3, R, R]`` the model expects.
    """
    path = weights_path(name_or_path, download_root)
    state_dict = model_weights(load_state_dict(path))
    try:
        model = build_model(state_dict)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as error:
        raise CheckpointError(path, None, f"its tensors do not make a CLIP ({summary(error)})",
                              "expected the weights of a CLIP model, under OpenAI's or "
                              "transformers' names") from error
    return model.to(device), Preprocess(model.input_resolution)


def weights_path(name_or_path, download_root=None):
    """The local file or folder ``load`` reads for ``name_or_path``: a released model's
    file (downloaded once into ``download_root`` or the cache folder, hash-checked), or
    the path itself if it exists; ``FileNotFoundError`` otherwise."""
    name_or_path = os.fspath(name_or_path)
    if name_or_path in hub.available_models():
        return hub.download(name_or_path, root=download_root)
    if os.path.exists(name_or_path):
        return name_or_path
    raise FileNotFoundError(
        f"{name_or_path!r} is neither a released model ({', '.join(hub.available_models())}) "
        "nor an existing checkpoint file or folder")


def model_weights(state_dict):
    """The model's own weights of a state dict: itself, or for a training state (the
    ``.npz`` of ``training.state.save_training_state``: the model's arrays under
    ``model/<name>``, the optimiser's under ``optimizer/...``, and a JSON ``meta`` entry)
    the ``model/`` arrays without their prefix."""
    if "meta" not in state_dict or not any(key.startswith(TRAINING_PREFIX) for key in state_dict):
        return state_dict
    return {key[len(TRAINING_PREFIX):]: value for key, value in state_dict.items()
            if key.startswith(TRAINING_PREFIX)}


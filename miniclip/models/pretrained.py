"""``load``: a ready-to-use CLIP and its preprocessing in one call, like ``clip.load``."""
import os

from ..data.preprocess import Preprocess
from ..weights import hub, load_state_dict
from .clip import build_model


def load(name_or_path, device="cpu", download_root=None):
    """``(model, preprocess)`` for a released model name or a checkpoint file.

    * ``name_or_path``: a name from ``miniclip.available_models()`` (e.g. ``"ViT-B/32"``,
      downloaded once into ``download_root`` or the cache folder and checked against its
      SHA-256), or the path of a checkpoint in any format ``miniclip.weights.load_state_dict`` reads
      (OpenAI's TorchScript ``.pt``, ``torch.save`` files, ``.npz``, ``.safetensors``, a
      Hugging Face folder).
    * ``device``: ``"cpu"`` or ``"cuda"``.

    The model is float32 and in eval mode; ``preprocess`` turns a PIL image (or an image
    file's path) into the float32 array ``[3, R, R]`` the model expects.
    """
    name_or_path = os.fspath(name_or_path)
    if name_or_path in hub.available_models():
        path = hub.download(name_or_path, root=download_root)
    elif os.path.exists(name_or_path):
        path = name_or_path
    else:
        raise FileNotFoundError(
            f"{name_or_path!r} is neither a released model ({', '.join(hub.available_models())}) "
            "nor an existing checkpoint file or folder")
    model = build_model(load_state_dict(path)).to(device)
    return model, Preprocess(model.input_resolution)

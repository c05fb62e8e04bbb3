"""CLIP weights in and out of files, without PyTorch; a leaf: it imports nothing of the
numeric stack, only NumPy.

* ``releases.py``     OpenAI's released models: file, SHA-256, configuration, peak lr
* ``hub.py``          downloading a release once into a cache, hash-checked
* ``formats.py``      TorchScript ``.pt``, ``torch.save``, ``.npz`` and ``.safetensors``
* ``huggingface.py``  Hugging Face folders and their names -> OpenAI's names
* ``loading.py``      ``load_state_dict``: any of those -> an OpenAI-named state dict
"""
from .formats import load_safetensors, save_npz, save_safetensors
from .hub import download, model_url
from .huggingface import convert_hf_state_dict
from .loading import load_state_dict
from .releases import RELEASES, available_models

__all__ = ["RELEASES", "available_models", "convert_hf_state_dict", "download",
           "load_safetensors", "load_state_dict", "model_url", "save_npz", "save_safetensors"]

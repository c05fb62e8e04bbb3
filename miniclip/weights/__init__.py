"""CLIP weights in and out of files, without PyTorch; a leaf: it imports nothing of the
numeric stack, only NumPy.

* ``releases.py``     OpenAI's released models: file, SHA-256, configuration, peak lr
* ``hub.py``          downloading a release once into a cache, hash-checked
* ``formats.py``      ``read_weights_file``: any format, by its contents; TorchScript ``.pt``
  and ``torch.save`` pickles, read without running them
* ``npz.py``, ``safetensors.py``  the other two formats
* ``zips.py``         zip archives, their declared sizes checked before a member is read
* ``dtypes.py``       element types and declared shapes
* ``errors.py``       ``CheckpointError``: what every reader raises for a damaged or
  unsupported file (naming the file, the part and the fix)
* ``huggingface.py``  Hugging Face folders and their names -> OpenAI's names
* ``loading.py``      ``load_state_dict``: any of those -> an OpenAI-named state dict
"""
from .errors import CheckpointError, CheckpointPickleError, ForbiddenGlobalError
from .formats import read_weights_file
from .hub import download, model_url
from .huggingface import convert_hf_state_dict
from .loading import load_state_dict
from .npz import read_npz, save_npz
from .releases import RELEASES, available_models
from .safetensors import load_safetensors, save_safetensors

__all__ = ["CheckpointError", "CheckpointPickleError", "ForbiddenGlobalError", "RELEASES",
           "available_models", "convert_hf_state_dict", "download", "load_safetensors",
           "load_state_dict", "model_url", "read_npz", "read_weights_file", "save_npz",
           "save_safetensors"]

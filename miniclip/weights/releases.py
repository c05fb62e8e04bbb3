"""OpenAI's nine released CLIP models: the one table that the download cache
(``hub.py``), the model configurations (``models/configs.py``) and the training recipe
(``training/recipe.py``) all read.

Each release records its checkpoint file and that file's SHA-256 (both part of the
download address), its architecture as the keyword arguments of ``CLIP`` and its peak
learning rate in the paper's training (``docs/reference.md``, "Released models" and
"Training facts"). Adam's β and ε are not listed per release: the paper sets them per
image tower (``training/recipe.py``), which follows from ``config["vision_layers"]``.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Release:
    """One released model: checkpoint file, its SHA-256, ``CLIP`` arguments, peak lr."""

    file_name: str
    sha256: str
    config: dict
    peak_lr: float


def _config(embed_dim, resolution, layers, width, text_width, patch=None):
    """The ``CLIP`` arguments of a release from its image tower, joint size and text width;
    every released text tower has 12 layers, a 77-token context and OpenAI's 49,408-id
    vocabulary, and every attention head 64 features."""
    return dict(embed_dim=embed_dim, image_resolution=resolution, vision_layers=layers,
                vision_width=width, vision_patch_size=patch, context_length=77,
                vocab_size=49408, transformer_width=text_width,
                transformer_heads=text_width // 64, transformer_layers=12)


#: The released models, by the names ``clip.available_models()`` uses.
RELEASES = {
    "RN50": Release(
        "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
        _config(1024, 224, (3, 4, 6, 3), 64, 512), peak_lr=5e-4),
    "RN101": Release(
        "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599",
        _config(512, 224, (3, 4, 23, 3), 64, 512), peak_lr=5e-4),
    "RN50x4": Release(
        "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd",
        _config(640, 288, (4, 6, 10, 6), 80, 640), peak_lr=5e-4),
    "RN50x16": Release(
        "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa",
        _config(768, 384, (6, 8, 18, 8), 96, 768), peak_lr=4e-4),
    "RN50x64": Release(
        "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c",
        _config(1024, 448, (3, 15, 36, 10), 128, 1024), peak_lr=3.6e-4),
    "ViT-B/32": Release(
        "ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        _config(512, 224, 12, 768, 512, patch=32), peak_lr=5e-4),
    "ViT-B/16": Release(
        "ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
        _config(512, 224, 12, 768, 512, patch=16), peak_lr=5e-4),
    "ViT-L/14": Release(
        "ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        _config(768, 224, 24, 1024, 768, patch=14), peak_lr=4e-4),
    "ViT-L/14@336px": Release(
        "ViT-L-14-336px.pt", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        _config(768, 336, 24, 1024, 768, patch=14), peak_lr=2e-5),
}


def available_models():
    """The names of the released CLIP models, e.g. ``"ViT-B/32"``."""
    return list(RELEASES)

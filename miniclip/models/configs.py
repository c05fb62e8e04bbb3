"""Named model configurations and ``create_model``, which builds one with random weights.

The nine released CLIP models (spec section 1.2) and small teaching presets. Every
configuration holds the keyword arguments of ``CLIP``:

* ``embed_dim`` E: size of the joint image-text embedding;
* ``image_resolution`` R; ``vision_layers``: a tuple of four block counts for a modified
  ResNet, an int (number of transformer layers) for a Vision Transformer;
  ``vision_width``: the ResNet's base width or the ViT's width; ``vision_patch_size``
  (ViT only);
* ``context_length`` C, ``vocab_size`` V, and the text transformer's ``transformer_width``,
  ``transformer_heads`` (width / 64) and ``transformer_layers``.
"""
from ..tokenizer.pretrained import default_tokenizer
from .clip import CLIP


def _released(embed_dim, resolution, layers, width, text_width, patch=None):
    """One released model: its image tower, joint size and text width; every released text
    tower has 12 layers, a 77-token context and OpenAI's 49,408-id vocabulary."""
    return dict(embed_dim=embed_dim, image_resolution=resolution, vision_layers=layers,
                vision_width=width, vision_patch_size=patch, context_length=77,
                vocab_size=49408, transformer_width=text_width,
                transformer_heads=text_width // 64, transformer_layers=12)


#: OpenAI's released models, by the names ``clip.available_models()`` uses.
RELEASED_CONFIGS = {
    "RN50": _released(1024, 224, (3, 4, 6, 3), 64, 512),
    "RN101": _released(512, 224, (3, 4, 23, 3), 64, 512),
    "RN50x4": _released(640, 288, (4, 6, 10, 6), 80, 640),
    "RN50x16": _released(768, 384, (6, 8, 18, 8), 96, 768),
    "RN50x64": _released(1024, 448, (3, 15, 36, 10), 128, 1024),
    "ViT-B/32": _released(512, 224, 12, 768, 512, patch=32),
    "ViT-B/16": _released(512, 224, 12, 768, 512, patch=16),
    "ViT-L/14": _released(768, 224, 24, 1024, 768, patch=14),
    "ViT-L/14@336px": _released(768, 336, 24, 1024, 768, patch=14),
}

#: Small models for teaching and for training on a CPU in minutes (e.g. on
#: ``miniclip.data.SyntheticShapes``). They use miniclip's default tokenizer (``vocab_size``
#: is filled in from it by ``get_config``) and a 32-token context, enough for short captions.
TINY_CONFIGS = {
    # 32x32 images in 8x8 patches (16 patch tokens + the class token); 2 layers of width
    # 128 (2 heads) in each tower.
    "tiny-vit": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=128,
                     vision_patch_size=8, context_length=32, vocab_size=None,
                     transformer_width=128, transformer_heads=2, transformer_layers=2),
    # 64x64 images; one block per stage, base width 8: a 2x2 map of 256 channels, pooled
    # by attention with 4 heads.
    "tiny-rn": dict(embed_dim=64, image_resolution=64, vision_layers=(1, 1, 1, 1),
                    vision_width=8, vision_patch_size=None, context_length=32, vocab_size=None,
                    transformer_width=128, transformer_heads=2, transformer_layers=2),
}


def available_configs():
    """Names ``create_model`` accepts: the released models, then the teaching presets."""
    return list(RELEASED_CONFIGS) + list(TINY_CONFIGS)


def get_config(name, **overrides):
    """The ``CLIP`` keyword arguments of a named configuration, with ``overrides`` applied."""
    if name in RELEASED_CONFIGS:
        config = dict(RELEASED_CONFIGS[name])
    elif name in TINY_CONFIGS:
        config = dict(TINY_CONFIGS[name], vocab_size=default_tokenizer().vocab_size)
    else:
        raise ValueError(f"unknown model configuration {name!r}; available: "
                         f"{', '.join(available_configs())}")
    unknown = set(overrides) - set(config)
    if unknown:
        raise TypeError(f"get_config: unknown option(s) {sorted(unknown)}; a configuration has "
                        f"{sorted(config)}")
    config.update(overrides)
    return config


def create_model(name, **overrides):
    """A new ``CLIP`` with the named configuration and random weights drawn as OpenAI
    initialises them, in training mode.

    The weights come from NumPy's global generator: ``np.random.seed(s)`` (or
    ``miniclip.nn.manual_seed(s)``) first makes the model reproducible. ``overrides``
    replace entries of the configuration, e.g. ``create_model("tiny-vit",
    transformer_layers=4)``.
    """
    return CLIP(**get_config(name, **overrides))

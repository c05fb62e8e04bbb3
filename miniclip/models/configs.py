"""Named model configurations and ``create_model``, which builds one with random weights.

The nine released CLIP models (``docs/reference.md``, "Released models") and small teaching
presets. Every configuration holds the keyword arguments of ``CLIP``:

* ``embed_dim`` E: size of the joint image-text embedding;
* ``image_resolution`` R; ``vision_layers``: a tuple of four block counts for a modified
  ResNet, an int (number of transformer layers) for a Vision Transformer;
  ``vision_width``: the ResNet's base width or the ViT's width; ``vision_patch_size``
  (ViT only);
* ``context_length`` C, ``vocab_size`` V, and the text transformer's ``transformer_width``,
  ``transformer_heads`` (width / 64) and ``transformer_layers``.
"""
from ..weights.releases import RELEASES
from .clip import CLIP

#: OpenAI's released models, by the names ``clip.available_models()`` uses (a view of
#: ``weights.releases.RELEASES``, which also holds their files and training rates).
RELEASED_CONFIGS = {name: release.config for name, release in RELEASES.items()}

#: The size of miniclip's own vocabulary (``miniclip/tokenizer/assets/``), which the teaching
#: presets are trained with. A number rather than a call to the tokenizer, so that the models
#: do not depend on it; ``tests/test_layout.py`` checks that they agree.
MINICLIP_VOCAB_SIZE = 4096

#: Small models for teaching and for training on a CPU in minutes (e.g. on
#: ``miniclip.data.SyntheticShapes``). They use miniclip's default tokenizer
#: (``MINICLIP_VOCAB_SIZE`` ids) and a 32-token context, enough for short captions.
TINY_CONFIGS = {
    # 32x32 images in 8x8 patches (16 patch tokens + the class token); 2 layers of width
    # 128 (2 heads) in each tower.
    "tiny-vit": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=128,
                     vision_patch_size=8, context_length=32, vocab_size=MINICLIP_VOCAB_SIZE,
                     transformer_width=128, transformer_heads=2, transformer_layers=2),
    # 64x64 images; one block per stage, base width 8: a 2x2 map of 256 channels, pooled
    # by attention with 4 heads.
    "tiny-rn": dict(embed_dim=64, image_resolution=64, vision_layers=(1, 1, 1, 1),
                    vision_width=8, vision_patch_size=None, context_length=32,
                    vocab_size=MINICLIP_VOCAB_SIZE,
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
        config = dict(TINY_CONFIGS[name])
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

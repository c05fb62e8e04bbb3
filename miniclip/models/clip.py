"""``CLIP``: an image tower and a text tower that embed into one space, and
``build_model``, which rebuilds a CLIP from the weights of an OpenAI checkpoint.

CLIP scores every (image, caption) pair of a batch by the cosine similarity of their
embeddings, multiplied by a learned temperature::

    I = normalise(encode_image(images))          # [N_img, E], unit rows
    T = normalise(encode_text(tokens))           # [N_txt, E], unit rows
    logits_per_image = exp(logit_scale) · I Tᵀ   # [N_img, N_txt]
    logits_per_text  = logits_per_imageᵀ         # [N_txt, N_img]

Training pushes the matching pairs (the diagonal) above the others in every row and
every column. The scale is learned on a log scale (so it stays positive) and starts at
1/0.07 ≈ 14.3; released models end at 100.
"""
import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor
from .resnet import ModifiedResNet
from .text_transformer import TextTransformer
from .vit import VisionTransformer


def vision_kind(vision_layers):
    """The kind of image tower a configuration builds: ``"resnet"`` for a tuple (or list) of
    four stage depths, ``"vit"`` for a number of transformer layers.

    This is the one place that rule is written: ``CLIP`` builds its tower by it,
    ``CLIP.vision_kind`` reports it, and the training recipe picks Adam's β and ε by it.
    """
    return "resnet" if isinstance(vision_layers, (tuple, list)) else "vit"


class CLIP(TextTransformer):
    """OpenAI's CLIP with the reference's constructor arguments and parameter names.

    ``vision_layers`` chooses the image tower: a tuple of four block counts builds a
    ``ModifiedResNet`` of base width ``vision_width`` (``vision_patch_size`` None); an int
    builds a ``VisionTransformer`` of that many layers. Head counts follow from the widths
    (every head has 64 features): ``transformer_width // 64`` for the text, ``vision_width
    // 64`` for a ViT and ``32 * vision_width // 64`` for the ResNet's attention pool.

    Why CLIP *is* its text tower but *has* its image tower: the two towers are symmetric in
    the model, but not in OpenAI's checkpoints, whose names this model must reproduce
    exactly so that released weights load. The image tower's parameters live under
    ``visual.``, the text tower's at the top level (``token_embedding.weight``,
    ``positional_embedding``, ``transformer.resblocks.*``, ``ln_final.*``,
    ``text_projection``), beside ``logit_scale``. Holding the text tower as an attribute
    would prefix those names, so CLIP subclasses ``TextTransformer`` instead, which puts its
    parameters at the top level; the image tower is the attribute ``visual``.
    """

    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width,
                 vision_patch_size, context_length, vocab_size, transformer_width,
                 transformer_heads, transformer_layers):
        super().__init__(embed_dim, context_length, vocab_size, transformer_width,
                         transformer_heads, transformer_layers)
        if isinstance(vision_layers, list):  # a list of block counts means a ResNet too
            vision_layers = tuple(vision_layers)
        self.config = dict(
            embed_dim=embed_dim, image_resolution=image_resolution, vision_layers=vision_layers,
            vision_width=vision_width, vision_patch_size=vision_patch_size,
            context_length=context_length, vocab_size=vocab_size,
            transformer_width=transformer_width, transformer_heads=transformer_heads,
            transformer_layers=transformer_layers)
        if self.vision_kind == "resnet":
            heads = vision_width * 32 // 64
            _check_heads(heads, f"the ResNet's attention pool (32 * vision_width = "
                                f"{32 * vision_width})")
            self.visual = ModifiedResNet(layers=vision_layers, output_dim=embed_dim,
                                         heads=heads, input_resolution=image_resolution,
                                         width=vision_width)
        else:
            heads = vision_width // 64
            _check_heads(heads, f"the vision transformer (vision_width = {vision_width})")
            self.visual = VisionTransformer(input_resolution=image_resolution,
                                            patch_size=vision_patch_size, width=vision_width,
                                            layers=vision_layers, heads=heads,
                                            output_dim=embed_dim)
        # log(1 / 0.07): the temperature 0.07 of the paper, learned as a log so it stays > 0.
        self.logit_scale = nn.Parameter(np.array(np.log(1 / 0.07), dtype=np.float32))

    @property
    def vision_kind(self):
        """``"vit"`` or ``"resnet"``: which image tower ``visual`` is (see ``vision_kind``)."""
        return vision_kind(self.config["vision_layers"])

    @property
    def dtype(self):
        """The dtype the model computes in (that of its weights)."""
        return self.visual.conv1.weight.dtype

    @property
    def input_resolution(self):
        return self.visual.input_resolution

    def encode_image(self, images):
        """Features ``[N, E]`` of images ``[N, 3, R, R]`` (preprocessed as ``preprocess.py``
        does; a Tensor or an array of any device, moved and cast to the model's)."""
        return self.visual(self._image_tensor(images))

    def forward(self, image, text):
        """``(logits_per_image [N_img, N_txt], logits_per_text [N_txt, N_img])``.

        The rows are normalised to unit length (``F.normalize`` divides by
        max(norm, 1e-12); the reference divides by the norm itself, which differs only for
        an all-zero feature vector).
        """
        image_features = F.normalize(self.encode_image(image), dim=-1)      # [N_img, E]
        text_features = F.normalize(self.encode_text(text), dim=-1)         # [N_txt, E]
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.T
        return logits_per_image, logits_per_image.T

    def _image_tensor(self, images):
        """The images as a Tensor of the model's dtype on its device, after checking
        their shape (a wrong size would otherwise fail deep inside a convolution, or, for
        the positional embeddings, with a confusing broadcasting error)."""
        weight = self.visual.conv1.weight
        if not isinstance(images, Tensor):
            images = Tensor(images)  # device arrays stay where they are; lists become NumPy
        resolution = self.input_resolution
        expected = f"[N, 3, {resolution}, {resolution}]"
        if images.ndim != 4:
            raise ValueError(f"encode_image: images must be 4-D {expected}, got shape "
                             f"{images.shape} (stack single images into a batch)")
        if images.shape[1] != 3:
            raise ValueError(f"encode_image: images must have 3 (RGB) channels, shape {expected}, "
                             f"got {images.shape[1]} channels (shape {images.shape})")
        if images.shape[2:] != (resolution, resolution):
            raise ValueError(f"encode_image: this model takes {resolution}x{resolution} images, "
                             f"shape {expected}, got {images.shape[2]}x{images.shape[3]}; "
                             "preprocess them with the model's preprocess")
        if images.dtype.kind != "f":
            raise TypeError(f"encode_image: images must be floating point (normalised pixel "
                            f"values), got dtype {images.dtype}")
        if images.device is not weight.device:
            images = images.to(weight.device)
        if images.dtype != weight.dtype:
            images = images.to(weight.dtype)
        return images


def _check_heads(heads, where):
    if heads < 1:
        raise ValueError(f"CLIP: {where} has no attention head; every head has 64 features, "
                         "so the width must be at least 64")


# ---------------------------------------------------------------------------- build_model
#: Entries of released checkpoints that are not model state (scalars the TorchScript
#: model kept as attributes); ``build_model`` drops them.
NON_STATE_KEYS = ("input_resolution", "context_length", "vocab_size")


def infer_config(state_dict):
    """The constructor arguments of ``CLIP`` for a state dict, read off key names and
    shapes exactly as OpenAI's ``build_model`` does (``docs/reference.md``, "Configuration
    from a state dict")."""
    def shape(key):
        if key not in state_dict:
            raise KeyError(f"build_model: the state dict has no {key!r} entry, which is needed "
                           "to infer the model's configuration (is this a CLIP checkpoint in "
                           "OpenAI's format?)")
        return tuple(np.shape(state_dict[key]))

    if "visual.proj" not in state_dict and "visual.layer1.0.conv1.weight" not in state_dict:
        some = ", ".join(repr(key) for key in list(state_dict)[:3])
        raise KeyError(f"build_model: the state dict has neither a Vision Transformer's "
                       f"'visual.proj' nor a ResNet's 'visual.layer1.0.conv1.weight'; its keys "
                       f"begin {some}, ... (is this a CLIP checkpoint in OpenAI's format? a "
                       "prefix such as 'module.' or 'model/' must be stripped)")
    if "visual.proj" in state_dict:  # Vision Transformer
        vision_width, _, _, vision_patch_size = shape("visual.conv1.weight")
        vision_layers = len([k for k in state_dict
                             if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
        grid = round((shape("visual.positional_embedding")[0] - 1) ** 0.5)
        image_resolution = vision_patch_size * grid
    else:  # modified ResNet
        vision_layers = tuple(
            len({k.split(".")[2] for k in state_dict if k.startswith(f"visual.layer{stage}")})
            for stage in (1, 2, 3, 4))
        vision_width = shape("visual.layer1.0.conv1.weight")[0]
        rows = shape("visual.attnpool.positional_embedding")[0]
        side = round((rows - 1) ** 0.5)
        if side ** 2 + 1 != rows:
            raise ValueError(f"build_model: visual.attnpool.positional_embedding has {rows} rows, "
                             "but it must have S² + 1 (an S x S feature map plus the mean token)")
        vision_patch_size = None
        image_resolution = 32 * side
    transformer_width = shape("ln_final.weight")[0]
    return dict(
        embed_dim=shape("text_projection")[1],
        image_resolution=image_resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=shape("positional_embedding")[0],
        vocab_size=shape("token_embedding.weight")[0],
        transformer_width=transformer_width,
        transformer_heads=transformer_width // 64,
        transformer_layers=len({k.split(".")[2] for k in state_dict
                                if k.startswith("transformer.resblocks")}),
    )


def build_model(state_dict):
    """A ``CLIP`` in eval mode, float32, on the CPU, holding the weights of ``state_dict``.

    ``state_dict`` maps OpenAI's names to arrays (NumPy, any device, or Tensors), e.g.
    from ``miniclip.weights.load_state_dict``. The configuration is inferred from the
    names and shapes (``infer_config``); the scalar entries ``input_resolution``,
    ``context_length`` and ``vocab_size`` of released files are ignored, and BatchNorm's
    ``num_batches_tracked`` may be absent. Every other key must match the model exactly:
    missing, unexpected and mis-shaped keys raise one error naming all of them. The
    caller's dict is not modified.
    """
    state_dict = {key: _to_host(value) for key, value in state_dict.items()
                  if key not in NON_STATE_KEYS}
    with nn.init.skip_random_init():  # every weight is overwritten just below
        model = CLIP(**infer_config(state_dict))
    # load_state_dict casts every value to the dtype of the parameter it fills: float32
    # (released files store most weights as float16); num_batches_tracked stays int64.
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def _to_host(value):
    """A NumPy array of ``value``; NumPy arrays pass through uncopied (they are only read)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return value.numpy()
    try:
        return backend.to_numpy(value)
    except TypeError:
        return np.asarray(value)

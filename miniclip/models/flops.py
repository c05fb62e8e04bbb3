"""How many floating-point operations a CLIP model does, counted from its configuration.

Model FLOP utilisation (MFU) compares what a program achieves with what the machine could:
``MFU = (model FLOPs per second) / (the machine's peak FLOP/s)``. The count follows the
usual convention (PaLM, appendix B; llm.c): only the matrix products are counted, since
they are nearly all of the arithmetic, and a multiply-add is 2 FLOPs, so an
``[M, K] @ [K, N]`` product is ``2 M K N``. The products are those of the convolutions, the
linear layers and attention's two (``Q K^T`` and ``weights V``; the causal text tower's
masked half is counted, as the dense product computes it). Elementwise work (norms,
activations, softmax) is left out.

A training step is 3 forwards' worth: the backward of every product ``Y = A B`` makes two
products of the same size, ``dA = dY B^T`` and ``dB = A^T dY``.
"""
from .clip import vision_kind

#: Training FLOPs per forward FLOP: the forward, and the two products of each backward.
TRAINING_FACTOR = 3


def _transformer_flops(tokens, width, layers):
    """A pre-LN transformer over ``tokens`` positions: per layer the q, k, v and output
    projections (4 W² per token) and the 4x MLP (8 W² per token), both twice for
    multiply-adds, plus the two attention products (2 T² W each)."""
    return layers * (24 * tokens * width ** 2 + 4 * tokens ** 2 * width)


def text_flops(config, length=None):
    """Forward FLOPs of ``encode_text`` for one caption run over ``length`` positions (the
    batch's last end-of-text position + 1, as ``encode_text`` trims; default the whole
    context)."""
    length = config["context_length"] if length is None else length
    width = config["transformer_width"]
    return (_transformer_flops(length, width, config["transformer_layers"])
            + 2 * width * config["embed_dim"])                     # text_projection at the EOT


def _vit_image_flops(config):
    patch, width = config["vision_patch_size"], config["vision_width"]
    grid = config["image_resolution"] // patch
    return (2 * grid ** 2 * 3 * patch ** 2 * width                # the patch convolution
            + _transformer_flops(grid ** 2 + 1, width, config["vision_layers"])
            + 2 * width * config["embed_dim"])                      # proj of the class token


def _conv_flops(side, in_ch, out_ch, kernel=1):
    """A convolution producing a ``side x side`` map: one ``2 k² C`` dot product per output."""
    return 2 * side ** 2 * out_ch * in_ch * kernel ** 2


def _resnet_image_flops(config):
    """``ModifiedResNet``: the 3-convolution stem at R/2, the bottleneck stages (the 3x3 at
    the input resolution, the pool before the expanding 1x1 and the shortcut's 1x1), and the
    attention pool, whose only query is the mean token."""
    width, side = config["vision_width"], config["image_resolution"] // 2
    total = (_conv_flops(side, 3, width // 2, 3) + _conv_flops(side, width // 2, width // 2, 3)
             + _conv_flops(side, width // 2, width, 3))
    side //= 2
    inplanes = width
    for stage, blocks in enumerate(config["vision_layers"]):
        planes, out_ch = width * 2 ** stage, width * 2 ** stage * 4
        for block in range(blocks):
            stride = 2 if stage and not block else 1
            total += _conv_flops(side, inplanes, planes) + _conv_flops(side, planes, planes, 3)
            side //= stride
            total += _conv_flops(side, planes, out_ch)
            if stride > 1 or inplanes != out_ch:
                total += _conv_flops(side, inplanes, out_ch)        # the shortcut's 1x1
            inplanes = out_ch
    dim, tokens = width * 32, side ** 2 + 1
    return total + (2 * 2 * tokens * dim ** 2 + 2 * dim ** 2       # k, v of all tokens; q of one
            + 2 * 2 * tokens * dim                                 # scores and weighted values
            + 2 * dim * config["embed_dim"])                       # c_proj


def image_flops(config):
    """Forward FLOPs of ``encode_image`` for one image."""
    if vision_kind(config["vision_layers"]) == "resnet":
        return _resnet_image_flops(config)
    return _vit_image_flops(config)


def text_positions(tokens):
    """The positions ``encode_text`` runs for token ids ``[N, C]`` (host or device): up to
    the batch's last end-of-text token, the largest id of a row."""
    return int(tokens.argmax(axis=-1).max()) + 1


def training_step_flops(config, batch_size, text_length=None):
    """FLOPs of one training step on ``batch_size`` (image, caption) pairs whose captions
    run over ``text_length`` positions: 3 forwards (``TRAINING_FACTOR``) of both towers.
    The loss's ``[B, E] @ [E, B]`` logits are counted too, though they are small."""
    forward = batch_size * (image_flops(config) + text_flops(config, text_length))
    forward += 2 * batch_size ** 2 * config["embed_dim"]
    return TRAINING_FACTOR * forward

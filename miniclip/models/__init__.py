"""CLIP's networks, built from ``miniclip.nn``. Read in this order:

* ``transformer.py``       the pre-LN residual attention block and the transformer (both towers)
* ``text_transformer.py``  the text encoder: embeddings, causal transformer, pooling at EOT
* ``vit.py``               the Vision Transformer image tower
* ``resnet.py``            the modified ResNet image tower and its attention pooling
* ``clip.py``              ``CLIP`` (both towers and the temperature) and ``build_model``
* ``configs.py``           the released configurations, teaching presets and ``create_model``
* ``pretrained.py``        ``load``: a released or saved CLIP and its preprocessing
* ``flops.py``             the FLOPs of a forward and a training step, for MFU

The paper's Figure 2 objectives put other text sides beside the same image tower:

* ``image_tower.py``       CLIP's image tower on its own, started as CLIP's would be
* ``bag_of_words.py``      bag-of-words prediction, and CLIP with a bag-of-words text encoder
* ``captioner.py``         the captioning language model (image features as a prefix)
"""
from . import flops
from .clip import CLIP, build_model, infer_config, vision_kind
from .configs import (
                      MINICLIP_VOCAB_SIZE,
                      RELEASED_CONFIGS,
                      TINY_CONFIGS,
                      available_configs,
                      create_model,
                      get_config,
)
from .pretrained import load
from .resnet import AttentionPool2d, Bottleneck, ModifiedResNet
from .text_transformer import TextTransformer, causal_mask, trim_padding
from .transformer import ResidualAttentionBlock, Transformer
from .vit import VisionTransformer

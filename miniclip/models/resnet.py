"""CLIP's modified ResNet image tower (``ModifiedResNet``).

A ResNet-50-style network (He et al., 2016) with three changes OpenAI made:

* **Stem**: three 3x3 convolutions (the first with stride 2) and an average pool,
  instead of one 7x7 convolution and a max pool.
* **Anti-aliased downsampling** (Zhang, 2019): a strided convolution looks at only every
  other pixel, so fine patterns alias into the result. Here every convolution has stride
  1 and the downsampling is an average pool (which low-pass filters first): in the main
  branch after the 3x3 convolution, in the shortcut before the 1x1 convolution.
* **Attention pooling** (``AttentionPool2d``) instead of global average pooling: the
  mean of the final feature map queries, through multi-head attention, every position
  of the map, and the answer is the image's feature vector.

With base width ``w`` the four stages have ``w, 2w, 4w, 8w`` planes and output
``4w, 8w, 16w, 32w`` channels (expansion 4), and each halves the resolution except the
first, so a ``R x R`` image ends as a ``32w``-channel map of ``R/32 x R/32``. Parameters
live under ``visual.``; ``docs/reference.md``, "Parameter names and shapes", has the full list.
"""
import collections

import numpy as np

from .. import functional as F
from .. import nn
from ..nn.attention import multi_head_attention


class Bottleneck(nn.Module):
    """1x1 conv (squeeze to ``planes``) -> 3x3 conv -> [avg pool] -> 1x1 conv (expand to
    ``4 * planes``), each followed by batch norm, plus a shortcut, then ReLU.

    When the block changes the shape (``stride > 1`` or ``inplanes != 4 * planes``) the
    shortcut is avg pool (stride) -> 1x1 conv -> batch norm, kept in ``downsample`` as
    ``downsample.0`` (conv) and ``downsample.1`` (batch norm), OpenAI's key names; the pool
    has no parameters and is applied in ``forward``. Otherwise the shortcut is the input.
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.stride = stride
        width_out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, width_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width_out)
        self.downsample = None
        if stride > 1 or inplanes != width_out:
            self.downsample = nn.Sequential(collections.OrderedDict([
                ("0", nn.Conv2d(inplanes, width_out, 1, bias=False)),
                ("1", nn.BatchNorm2d(width_out)),
            ]))

    def _pool(self, x):
        return F.avg_pool2d(x, self.stride) if self.stride > 1 else x

    def forward(self, x):                                       # x: [N, inplanes, H, W]
        out = self.bn1(self.conv1(x), relu=True)                # [N, planes, H, W]
        out = self.bn2(self.conv2(out), relu=True)              # [N, planes, H, W]
        out = self.bn3(self.conv3(self._pool(out)))             # [N, 4 planes, H/s, W/s]
        identity = x if self.downsample is None else self.downsample(self._pool(x))
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Pool a feature map ``[N, D, S, S]`` into one vector ``[N, output_dim]`` by attention.

    The S² positions plus their mean become S²+1 tokens (with a learned positional
    embedding). The mean token alone is the query; keys and values come from all S²+1
    tokens; ``num_heads`` heads of D / num_heads features; ``c_proj`` maps the result to
    ``output_dim``. Unlike the transformer blocks, q, k and v have separate projections
    (``q_proj``, ``k_proj``, ``v_proj``, each ``[D, D]`` with a bias); the attention
    itself is the shared ``multi_head_attention`` of ``miniclip.nn.attention``.
    """

    def __init__(self, spacial_dim, embed_dim, num_heads, output_dim=None):
        super().__init__()
        self.num_heads = num_heads
        self.positional_embedding = nn.Parameter(
            np.zeros((spacial_dim ** 2 + 1, embed_dim), np.float32))
        # Registered in OpenAI's order (k, q, v), so state dicts list them the same way.
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        # OpenAI's initialisation: N(0, 1/D) for the positional embedding and the weights
        # (the biases keep Linear's default).
        std = embed_dim ** -0.5
        nn.init.normal_(self.positional_embedding, std=std)
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(layer.weight, std=std)

    def forward(self, x):                                       # x: [N, D, S, S]
        n, d = x.shape[:2]
        x = x.reshape(n, d, -1).transpose(1, 2)                 # [N, S², D], row-major
        x = F.cat([x.mean(dim=1, keepdim=True), x], dim=1)      # [N, S²+1, D]
        x = x + self.positional_embedding                       # [N, S²+1, D]
        q = self.q_proj(x[:, :1])                               # [N, 1, D]: the mean token
        out = multi_head_attention(q, self.k_proj(x), self.v_proj(x), self.num_heads)  # [N, 1, D]
        return self.c_proj(out[:, 0])                           # [N, output_dim]


class ModifiedResNet(nn.Module):
    """Images ``[N, 3, R, R]`` -> features ``[N, output_dim]`` (R a multiple of 32).

    ``layers`` = blocks per stage ``(n1, n2, n3, n4)``; ``width`` = base width w; ``heads``
    = attention-pool heads (OpenAI uses 32 w / 64). Initialisation as OpenAI's: layers'
    defaults, except the attention pool (see ``AttentionPool2d``) and the last batch norm
    of every block, whose gain starts at 0, so that each residual block starts as the
    identity (Goyal et al., 2017) and the deep network starts out effectively shallow.
    """

    def __init__(self, layers, output_dim, heads, input_resolution=224, width=64):
        super().__init__()
        if input_resolution % 32:
            raise ValueError(f"ModifiedResNet: input_resolution {input_resolution} is not a "
                             "multiple of 32 (the network downsamples by 32)")
        self.output_dim, self.input_resolution = output_dim, input_resolution
        # The three-convolution stem: R -> R/2 (conv1) -> R/4 (avg pool).
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        # Residual stages: block 0 of each changes the shape, the others keep it.
        inplanes = width
        for stage, (blocks, stride) in enumerate(zip(layers, (1, 2, 2, 2)), start=1):
            planes = width * 2 ** (stage - 1)
            stage_blocks = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage_blocks += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            setattr(self, f"layer{stage}", nn.Sequential(*stage_blocks))
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                nn.init.zeros_(block.bn3.weight)

    def stem(self, x):                                          # x: [N, 3, R, R]
        x = self.bn1(self.conv1(x), relu=True)                  # [N, w/2, R/2, R/2]
        x = self.bn2(self.conv2(x), relu=True)                  # [N, w/2, R/2, R/2]
        x = self.bn3(self.conv3(x), relu=True)                  # [N, w, R/2, R/2]
        return F.avg_pool2d(x, 2)                               # [N, w, R/4, R/4]

    def forward(self, x):                                       # x: [N, 3, R, R]
        x = self.stem(x)
        x = self.layer1(x)                                      # [N, 4w, R/4, R/4]
        x = self.layer2(x)                                      # [N, 8w, R/8, R/8]
        x = self.layer3(x)                                      # [N, 16w, R/16, R/16]
        x = self.layer4(x)                                      # [N, 32w, R/32, R/32]
        return self.attnpool(x)                                 # [N, output_dim]

"""The Vision Transformer image tower (Dosovitskiy et al., 2020) as CLIP uses it.

An image is cut into a grid of G x G square patches of P x P pixels (G = R / P) and each
patch becomes one token, so an image is read like a G²-word sentence:

1. ``conv1`` with kernel = stride = P and no bias maps every patch to a ``width``-vector:
   a convolution whose windows do not overlap is exactly "flatten each patch and apply
   one shared linear layer".
2. A learned ``class_embedding`` token is put in front of the patch tokens; after the
   transformer, its output is the summary of the image (it attended to every patch).
3. A learned ``positional_embedding`` (one row per token) tells the otherwise
   order-blind attention where each patch was.
4. ``ln_pre``, the transformer (no mask: every token sees every other), then ``ln_post``
   on the class token and the projection ``proj`` ``[width, E]`` into the joint space.

Parameters live under ``visual.`` in a CLIP checkpoint: ``conv1.weight [W, 3, P, P]``,
``class_embedding [W]``, ``positional_embedding [G²+1, W]``, ``ln_pre``,
``transformer.resblocks.{i}``, ``ln_post``, ``proj [W, E]``.
"""

from .. import functional as F
from .. import nn
from .transformer import Transformer


class VisionTransformer(nn.Module):
    """Images ``[N, 3, R, R]`` -> features ``[N, output_dim]``.

    Initialisation as OpenAI's: the embeddings and ``proj`` ~ N(0, 1/width); the conv and
    the transformer blocks keep PyTorch's default initialisation (the layers' own).
    """

    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"VisionTransformer: input_resolution {input_resolution} is not a "
                             f"multiple of patch_size {patch_size}")
        self.input_resolution, self.patch_size = input_resolution, patch_size
        self.output_dim = output_dim
        grid = input_resolution // patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.init.normal_(nn.init.empty(width), std=scale)
        self.positional_embedding = nn.init.normal_(nn.init.empty(grid * grid + 1, width), std=scale)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.init.normal_(nn.init.empty(width, output_dim), std=scale)

    def forward(self, x):                                     # x: [N, 3, R, R]
        x = self.conv1(x)                                     # [N, W, G, G]
        n, width = x.shape[:2]
        # Row-major flattening of the grid (token index = row * G + col), channels last.
        x = x.reshape(n, width, -1).transpose(1, 2)           # [N, G², W]
        cls = self.class_embedding.reshape(1, 1, width).expand(n, 1, width)  # [N, 1, W]
        x = F.cat([cls, x], dim=1)                            # [N, G²+1, W]
        x = x + self.positional_embedding                     # [N, G²+1, W]
        x = self.ln_pre(x)
        x = self.transformer(x)                               # [N, G²+1, W]
        x = self.ln_post(x[:, 0, :])                          # [N, W]: the class token
        return x @ self.proj                                  # [N, E]


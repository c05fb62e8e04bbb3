"""The cost model of ``tutorials/distributed.md``: communication and compute per step of
data-parallel CLIP training, for ViT-B/32 and RN50 on 8 to 256 workers.

``python scripts/scaling_table.py`` prints the tutorial's Markdown table. Nothing is
measured: the model is arithmetic on the released configurations.

* Compute: multiply-accumulates (MACs) of one image and one 77-token caption, counted
  layer by layer from the configuration; a training step costs about 3 forward passes
  (the backward pass is about twice the forward), 2 FLOPs per MAC, at ``GPU_FLOPS``.
* Gradient all-reduce (ring): each worker sends and receives 2 (p - 1) / p times the
  parameters' bytes (float32 gradients), whatever the number of workers.
* Feature gathers, as miniclip does them (``miniclip/distributed/gather.py``): forward, an
  all-gather of the image and the text features, ``[N, E]`` each, (p - 1) / p of them
  received; backward, an all-reduce of both gradients, 2 (p - 1) / p.
"""
from miniclip.models.configs import RELEASED_CONFIGS

GLOBAL_BATCH = 32768           # the paper's
GPU_FLOPS = 40e12              # sustained: a V100 at a third of its tensor-core peak
LINKS_GBIT = (25, 100)         # network bandwidth per worker, Gbit/s
WORKERS = (8, 32, 128, 256)
PARAMETERS = {"ViT-B/32": 151_277_313, "RN50": 102_007_137}  # asserted in tests/test_models.py


def transformer_macs(tokens, width, layers):
    """Per sequence: 12 w² per token and layer (q, k, v, out: 4 w²; MLP 4x: 8 w²), plus the
    attention scores and their weighted sum, 2 T² w per layer."""
    return layers * (tokens * 12 * width ** 2 + 2 * tokens ** 2 * width)


def resnet_macs(resolution, layers, width, embed_dim):
    """CLIP's ModifiedResNet: 3-conv stem, bottlenecks (expansion 4), attention pool."""
    size = resolution // 2
    macs = size ** 2 * 9 * (3 * width // 2 + width // 2 * width // 2 + width // 2 * width)
    size //= 2                                       # stem's average pool
    inplanes = width
    for stage, blocks in enumerate(layers):
        planes = width * 2 ** stage
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            out = size // stride
            macs += size ** 2 * (inplanes * planes + 9 * planes * planes)  # 1x1, 3x3
            macs += out ** 2 * planes * 4 * planes                         # 1x1 after the pool
            if stride > 1 or inplanes != 4 * planes:
                macs += out ** 2 * inplanes * 4 * planes                   # downsample
            inplanes, size = 4 * planes, out
    tokens = size ** 2 + 1                           # the pooled map and its mean
    return macs + tokens * (3 * inplanes ** 2 + inplanes * embed_dim) + 2 * tokens ** 2 * inplanes


def macs_per_pair(config):
    """MACs of one image and one caption through the towers (embeddings and the logit matrix,
    small beside them, are left out)."""
    text = transformer_macs(config["context_length"], config["transformer_width"],
                            config["transformer_layers"])
    resolution, layers, width = (config["image_resolution"], config["vision_layers"],
                                 config["vision_width"])
    if isinstance(layers, tuple):
        return text + resnet_macs(resolution, layers, width, config["embed_dim"])
    patch = config["vision_patch_size"]
    patches = (resolution // patch) ** 2
    return text + patches * 3 * patch ** 2 * width + transformer_macs(patches + 1, width, layers)


def rows():
    for name, parameters in PARAMETERS.items():
        config = RELEASED_CONFIGS[name]
        step_flops = 3 * 2 * macs_per_pair(config) * GLOBAL_BATCH
        for p in WORKERS:
            compute = step_flops / p / GPU_FLOPS
            gradients = 2 * (p - 1) / p * parameters * 4
            features = 2 * GLOBAL_BATCH * config["embed_dim"] * 4 * 3 * (p - 1) / p
            seconds = [(gradients + features) * 8 / (gbit * 1e9) for gbit in LINKS_GBIT]
            yield (name, p, GLOBAL_BATCH // p, compute, gradients / 1e9, features / 1e6,
                   *seconds, *(s / compute for s in seconds))


def main():
    print(f"| model | workers | batch per worker | compute per step | gradient all-reduce "
          f"| feature gathers | communication at {LINKS_GBIT[0]} / {LINKS_GBIT[1]} Gbit/s "
          "| communication / compute |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p, b, compute, grad_gb, feat_mb, slow, fast, slow_share, fast_share in rows():
        print(f"| {name} | {p} | {b} | {compute:.2f} s | {grad_gb:.2f} GB | {feat_mb:.0f} MB "
              f"| {slow:.2f} / {fast:.2f} s | {slow_share:.0%} / {fast_share:.0%} |")
    for name in PARAMETERS:
        print(f"{name}: {macs_per_pair(RELEASED_CONFIGS[name]) / 1e9:.2f} GMACs per pair")


if __name__ == "__main__":
    main()

# %% [markdown]
# # 4. The towers: from pixels and tokens to one vector each
#
# CLIP has two encoders ("towers") that end in the same space:
#
# * an **image tower**: either a Vision Transformer (`miniclip/models/vit.py`,
#   `VisionTransformer`) or a modified ResNet (`miniclip/models/resnet.py`,
#   `ModifiedResNet`);
# * a **text tower**: a causal transformer over token ids (`miniclip/models/text_transformer.py`,
#   `TextTransformer`), covered in `02_attention.ipynb` and `03_tokenizer.ipynb`.
#
# This notebook follows an image through both image towers with real shapes, counts the
# parameters of the nine released models, and shows what CLIP's image preprocessing does to
# a picture. All models here are small enough to build on a laptop in a fraction of a second.
# Exercise 4a asks you to cut images into patch vectors without a loop (a function with a
# `raise NotImplementedError` line to replace, followed by a `with exercise(...)` cell
# that checks it).

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from PIL import Image, ImageDraw

import miniclip
import miniclip.functional as F
from miniclip import CLIP, Preprocess, Tensor, create_model, nn, no_grad
from miniclip.data import SyntheticShapes
from miniclip.models import RELEASED_CONFIGS, ModifiedResNet
from miniclip.data.preprocess import MEAN, STD, center_crop, resize_shorter_side, to_normalized_array
from miniclip.grading import exercise
from miniclip.system.threads import limit_blas_threads

miniclip.manual_seed(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## The Vision Transformer reads an image as a sentence of patches
#
# A ViT cuts an $R \times R$ image into a $G \times G$ grid of $P \times P$ patches
# ($G = R/P$) and treats each patch as one token. miniclip's teaching preset `tiny-vit` uses
# 32×32 images and 8×8 patches: a 4×4 grid, 16 tokens. (ViT-B/32: 224×224 images, 32×32
# patches, 49 tokens.) Here is one picture from miniclip's synthetic dataset
# (`miniclip.data.SyntheticShapes`, the one `06_train_tiny_clip.ipynb` trains on), cut
# into its patches, numbered as tokens of the sequence the transformer reads: token 0 is
# the class token (below), so the patch in row $r$ and column $c$ is token $1 + rG + c$
# (row-major order).

# %%
R, P = 32, 8
G = R // P
image, caption = SyntheticShapes(8, image_size=R, seed=3)[5]
pixels = np.asarray(image)                                      # [R, R, 3] uint8

fig = plt.figure(figsize=(12, 3.4))
ax = fig.add_subplot(1, 3, 1)
ax.imshow(pixels)
for line in range(1, G):
    ax.axhline(line * P - 0.5, color="white", lw=1)
    ax.axvline(line * P - 0.5, color="white", lw=1)
ax.set_title(f"{caption}\n{R}x{R} pixels, {G}x{G} patches of {P}x{P}", fontsize=9)
ax.axis("off")
ax = fig.add_subplot(1, 3, (2, 3))
strip = np.ones((P, G * G * (P + 2), 3), np.uint8) * 255       # the patches side by side
for token in range(G * G):
    r, c = divmod(token, G)
    strip[:, token * (P + 2):token * (P + 2) + P] = pixels[r * P:(r + 1) * P, c * P:(c + 1) * P]
ax.imshow(strip)
ax.set_xticks([t * (P + 2) + P / 2 - 0.5 for t in range(G * G)], range(1, G * G + 1))
ax.set_yticks([])
ax.set_title("the same image as a sequence of 16 patch tokens (token 0 is the class token)",
             fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# Each patch, $3 \cdot P \cdot P = 192$ numbers, is mapped to a `width`-vector by one shared
# linear layer. CLIP writes that layer as a **convolution** with kernel size = stride = $P$
# and no bias (`VisionTransformer.conv1`): since the windows do not overlap, sliding the
# kernel over the image is exactly "flatten every patch and multiply by the same matrix".
# Let us check that on the picture above.

#
# ### Exercise 4a: patches without a loop
#
# Write `patchify(images, P)`: images `[N, C, R, R]` (a NumPy array) to patch vectors
# `[N, G², C·P·P]`, patches in row-major order, each flattened in (channel, row, column)
# order as the convolution's weight `[W, C, P, P]` is. No loop is needed: `reshape` the
# two image axes into (grid row, pixel row) and (grid column, pixel column),
# `transpose` so that the grid axes come before the channel and pixel axes, and
# `reshape` again. The check multiplies your patches by the flattened kernel and compares
# the result with the convolution.

# %%
def patchify(images, P):
    """[N, C, R, R] -> [N, (R/P)², C·P·P]: the P x P patches in row-major order, flattened."""
    # BEGIN SOLUTION 4a: patches without a loop
    n, c, r, _ = images.shape
    g = r // P
    grid = images.reshape(n, c, g, P, g, P)             # [N, C, grid row, y, grid col, x]
    return grid.transpose(0, 2, 4, 1, 3, 5).reshape(n, g * g, c * P * P)
    # END SOLUTION


# %%
vit = create_model("tiny-vit").visual.eval()
image_array = Preprocess(R)(image)[None]                       # [1, 3, R, R], normalised
x = Tensor(image_array)
weight = vit.conv1.weight.numpy().reshape(vit.conv1.weight.shape[0], -1)   # [W, 3·P·P]
with no_grad():
    by_conv = vit.conv1(x)                                      # [1, W, G, G]
    by_conv = by_conv.reshape(1, by_conv.shape[1], -1).transpose(1, 2)   # [1, G², W]

with exercise("4a: patches without a loop") as check:
    patches = patchify(image_array, P)
    check.close("the first patch (row 0, column 0)", patches[0, 0], image_array[0, :, :P, :P].ravel())
    check.close("the second patch (row 0, column 1)", patches[0, 1],
                image_array[0, :, :P, P:2 * P].ravel())
    check.close("patches @ flattened kernel", patches @ weight.T, by_conv, atol=1e-5)
print("patch vectors", patches.shape, "| weight", weight.shape, "| tokens", by_conv.shape)

# %% [markdown]
# The rest of `VisionTransformer.forward`, with the shape after each step: a learned
# **class token** is put in front of the patches (after the transformer its output is the
# summary of the image), a learned **positional embedding** is added (attention itself is
# blind to order; this is how a token knows where its patch was), then LayerNorm, the
# transformer, LayerNorm on the class token only, and the projection `proj` into the joint
# embedding space.

# %%
with no_grad():
    steps = [("input", x)]
    t = vit.conv1(x)
    steps.append(("conv1 (patch embedding)", t))
    t = t.reshape(1, t.shape[1], -1).transpose(1, 2)
    steps.append(("grid -> sequence", t))
    cls = vit.class_embedding.reshape(1, 1, -1)
    t = F.cat([cls, t], dim=1)
    steps.append(("class token in front", t))
    t = vit.ln_pre(t + vit.positional_embedding)
    steps.append(("+ positional embedding, ln_pre", t))
    t = vit.transformer(t)
    steps.append((f"transformer ({vit.transformer.layers} blocks)", t))
    t = vit.ln_post(t[:, 0, :])
    steps.append(("ln_post on the class token", t))
    t = t @ vit.proj
    steps.append(("@ proj", t))
    print("the same as vit(x):", np.allclose(t.numpy(), vit(x).numpy(), atol=1e-5))
for name, value in steps:
    print(f"  {name:34s} {value.shape}")

# %% [markdown]
# ## The modified ResNet
#
# OpenAI's ResNet tower is a ResNet-50-style network with three changes (see the module
# docstring of `miniclip/models/resnet.py`):
#
# 1. a **stem** of three 3×3 convolutions and an average pool instead of one 7×7
#    convolution and a max pool;
# 2. **anti-aliased downsampling**: every convolution has stride 1, and the resolution is
#    halved by an average pool instead;
# 3. **attention pooling** instead of global average pooling at the end.
#
# Why average-pool instead of a strided convolution? A stride-$s$ operation looks at only
# every $s$-th pixel, so patterns finer than the new pixel grid do not disappear: they
# *alias* into false coarse patterns. Averaging first removes the fine detail the coarse
# grid cannot represent. A ring pattern whose rings get finer towards the edges shows it:

# %%
side = 128
yy, xx = np.mgrid[-1:1:side * 1j, -1:1:side * 1j]
rings = 0.5 + 0.5 * np.cos(60 * (xx ** 2 + yy ** 2))         # rings finer towards the edges
rings_tensor = Tensor(rings[None, None])                        # [1, 1, 128, 128]

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(rings, cmap="gray")
axes[0].set_title("original, 128x128")
axes[1].imshow(rings[::4, ::4], cmap="gray")
axes[1].set_title("every 4th pixel (stride 4)")
axes[2].imshow(F.avg_pool2d(rings_tensor, 4).numpy()[0, 0], cmap="gray")
axes[2].set_title("F.avg_pool2d(x, 4)")
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The strided copy shows ring patterns near the edges that are not in the image; the pooled
# one fades the unrepresentable detail to grey.
#
# Now the shapes. `tiny-rn` is a ResNet with one bottleneck block per stage and base width
# $w = 8$ on 64×64 images. The stem halves the resolution twice; stages 2–4 halve it once
# each, so the network downsamples by 32 and ends with a $2 \times 2$ map of $32w = 256$
# channels.

# %%
resnet = ModifiedResNet(layers=(1, 1, 1, 1), output_dim=64, heads=4, input_resolution=64,
                        width=8).eval()
images = Tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
with no_grad():
    t = images
    print(f"  {'input':30s} {t.shape}")
    t = F.relu(resnet.bn1(resnet.conv1(t)))
    print(f"  {'stem conv1 (stride 2)':30s} {t.shape}")
    t = resnet.stem(images)
    print(f"  {'stem (3 convs + avg pool)':30s} {t.shape}")
    for stage in (1, 2, 3, 4):
        t = getattr(resnet, f"layer{stage}")(t)
        print(f"  {f'layer{stage}':30s} {t.shape}")
    pooled = resnet.attnpool(t)
    print(f"  {'attnpool':30s} {pooled.shape}")
print()
print(resnet.layer2[0])

# %% [markdown]
# `layer2[0]` is a `Bottleneck`: a 1×1 convolution squeezes to `planes` channels, a 3×3
# convolution works at that width, an average pool downsamples, a 1×1 convolution expands to
# `4 · planes`. The shortcut must change shape too: `downsample` is an average pool, a 1×1
# convolution and a batch norm (kept under OpenAI's names `downsample.0` and `downsample.1`).
# The pools have no parameters, so they do not appear in the printout: `Bottleneck.forward`
# applies them.
#
# ### Attention pooling
#
# A global average pool would give every position of the final map equal say.
# `AttentionPool2d` instead lets the image decide: the $S^2$ positions and their mean become
# $S^2 + 1$ tokens (plus a positional embedding), and the **mean token alone is the query**
# of one multi-head attention over all of them. Its output, projected by `c_proj`, is the
# image's feature vector. The attention is the same `multi_head_attention` function as in
# the transformers (`miniclip/nn/attention.py`), called with a single query.

# %%
pool = resnet.attnpool
with no_grad():
    n, d = t.shape[:2]
    tokens = t.reshape(n, d, -1).transpose(1, 2)                      # [N, S², D]
    tokens = F.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # [N, S²+1, D]
    tokens = tokens + pool.positional_embedding
    query = pool.q_proj(tokens[:, :1])                                # [N, 1, D]
    attended, weights = nn.multi_head_attention(query, pool.k_proj(tokens), pool.v_proj(tokens),
                                                pool.num_heads, need_weights=True)
    features = pool.c_proj(attended[:, 0])
print("tokens", tokens.shape, "| query", query.shape, "| weights [N, heads, 1, S²+1]", weights.shape)
print("features", features.shape, "| same as attnpool:", np.allclose(features.numpy(), pooled.numpy(), atol=1e-5))

# %% [markdown]
# ## How big are the released models?
#
# We can count parameters without building a 400-million-parameter model, because every
# piece has a closed form ($d$ = width; convolutions and the ResNet's layers have no bias):
#
# * a residual attention block: $12d^2 + 13d$ (`02_attention.ipynb` derives it);
# * **text tower**: token embedding $V W_t$, positional embedding $C W_t$, $L_t$ blocks,
#   `ln_final` $2W_t$, `text_projection` $W_t E$;
# * **ViT**: patch convolution $3P^2 W$, class token $W$, positional embedding $(G^2+1)W$,
#   `ln_pre` and `ln_post` $2W$ each, $L$ blocks, `proj` $W E$;
# * **ResNet**: a $k\times k$ convolution from $c_{in}$ to $c_{out}$ channels has
#   $c_{in} c_{out} k^2$ weights, a batch norm $2c$ (its running statistics are buffers, not
#   parameters); the attention pool has a positional embedding $(S^2+1)D$, three $D \times D$
#   projections with bias and `c_proj` $D E + E$, where $D = 32w$, $S = R/32$;
# * plus 1 for `logit_scale`.

# %%
def block_params(d):
    return 12 * d * d + 13 * d


def text_params(c):
    w = c["transformer_width"]
    return (c["vocab_size"] * w + c["context_length"] * w + c["transformer_layers"] * block_params(w)
            + 2 * w + w * c["embed_dim"])


def vit_params(c):
    w, p = c["vision_width"], c["vision_patch_size"]
    grid = c["image_resolution"] // p
    return (3 * p * p * w + w + (grid * grid + 1) * w + 2 * w + c["vision_layers"] * block_params(w)
            + 2 * w + w * c["embed_dim"])


def conv(c_in, c_out, k):
    return c_in * c_out * k * k


def bottleneck_params(inplanes, planes):
    out = 4 * planes
    n = conv(inplanes, planes, 1) + 2 * planes + conv(planes, planes, 3) + 2 * planes
    n += conv(planes, out, 1) + 2 * out
    if inplanes != out:                      # the shortcut changes shape: downsample.0 and .1
        n += conv(inplanes, out, 1) + 2 * out
    return n


def resnet_params(c):
    w = c["vision_width"]
    n = conv(3, w // 2, 3) + w + conv(w // 2, w // 2, 3) + w + conv(w // 2, w, 3) + 2 * w  # stem
    inplanes = w
    for stage, blocks in enumerate(c["vision_layers"]):
        planes = w * 2 ** stage
        n += bottleneck_params(inplanes, planes) + (blocks - 1) * bottleneck_params(4 * planes, planes)
        inplanes = 4 * planes
    d, s, e = 32 * w, c["image_resolution"] // 32, c["embed_dim"]
    return n + (s * s + 1) * d + 3 * (d * d + d) + d * e + e


def count(c):
    is_resnet = isinstance(c["vision_layers"], tuple)
    visual = resnet_params(c) if is_resnet else vit_params(c)
    return visual, text_params(c), visual + text_params(c) + 1

# %% [markdown]
# Before trusting the formulas, check them against models that *are* built: every released
# architecture with the same depths and resolutions but narrow widths (ViT and text width
# 64, ResNet base width 2, a 100-token vocabulary), counted with `Module.num_parameters()`.

# %%
for name, config in RELEASED_CONFIGS.items():
    narrow = dict(config, transformer_width=64, transformer_heads=1, vocab_size=100,
                  vision_width=2 if isinstance(config["vision_layers"], tuple) else 64)
    built = CLIP(**narrow).num_parameters()
    formula = count(narrow)[2]
    print(f"{name:15s} built {built:>9,}  formula {formula:>9,}  {'ok' if built == formula else 'MISMATCH'}")
    assert built == formula, name

# %%
rows = ["| model | image tower | text tower | total | share of text in token embedding |",
        "|---|---:|---:|---:|---:|"]
counts = {}
for name, config in RELEASED_CONFIGS.items():
    visual, text, total = count(config)
    counts[name] = (visual, text)
    embedding = config["vocab_size"] * config["transformer_width"]
    rows.append(f"| {name} | {visual / 1e6:.1f} M | {text / 1e6:.1f} M | {total:,} | {embedding / text:.0%} |")
display(Markdown("\n".join(rows)))

fig, ax = plt.subplots(figsize=(9, 3.5))
names = list(counts)
ax.bar(names, [v / 1e6 for v, _ in counts.values()], label="image tower")
ax.bar(names, [t / 1e6 for _, t in counts.values()], bottom=[v / 1e6 for v, _ in counts.values()],
       label="text tower")
ax.set_ylabel("parameters (millions)")
ax.legend()
plt.xticks(rotation=30)
plt.tight_layout()
plt.show()

# %% [markdown]
# A few things the table shows: the ViT-B/32 and ViT-B/16 image towers differ only in the
# patch embedding and positional embedding (smaller patches mean *more tokens*, not more
# weights, so B/16 costs about 4× the compute with fewer parameters); the 336-pixel
# ViT-L/14 differs from ViT-L/14 only in its longer positional embedding; and in the smaller
# models about 40% of the text tower is the token embedding table (49,408 rows).
#
# ## What `preprocess` does to a picture
#
# A model only works on images prepared exactly the way its training images were.
# `miniclip/data/preprocess.py` reproduces OpenAI's pipeline (`Preprocess`):
#
# 1. **resize** so the *shorter* side is $n_{px}$, keeping the aspect ratio (bicubic);
# 2. **centre crop** to $n_{px} \times n_{px}$: whatever sticks out on the long side is lost;
# 3. convert to RGB, then to floats in $[0, 1]$, channels first: `[3, n_px, n_px]`;
# 4. **normalise** each channel with the mean and standard deviation of CLIP's training
#    images (`MEAN`, `STD`), so the inputs are roughly zero-mean and unit-variance.
#
# Here a wide 300×180 drawing goes through the steps at $n_{px} = 224$, the resolution of
# most released models.

# %%
sky = np.linspace([90, 140, 215], [170, 205, 240], 180)              # a gradient, top to bottom
photo = Image.fromarray(np.repeat(sky[:, None], 300, axis=1).astype(np.uint8))
draw = ImageDraw.Draw(photo)
draw.rectangle([0, 130, 300, 180], fill=(70, 140, 60))             # grass
draw.ellipse([20, 60, 90, 130], fill=(220, 40, 40))                # red ball (left edge)
draw.rectangle([120, 50, 190, 130], fill=(240, 210, 60))           # yellow box (centre)
draw.polygon([(230, 130), (265, 60), (298, 130)], fill=(60, 60, 200))   # blue tent (right)
noise = np.random.default_rng(0).integers(-15, 16, size=(180, 300, 3))   # a little sensor noise
photo = Image.fromarray(np.clip(np.asarray(photo) + noise, 0, 255).astype(np.uint8))

n_px = 224
resized = resize_shorter_side(photo, n_px)
cropped = center_crop(resized, n_px)
array = to_normalized_array(cropped.convert("RGB"))                 # [3, 224, 224]
print("sizes:", photo.size, "->", resized.size, "->", cropped.size, "-> array", array.shape, array.dtype)
print("same as Preprocess(224)(photo):", np.array_equal(array, Preprocess(n_px)(photo)))
assert array.shape == (3, 224, 224) and np.array_equal(array, Preprocess(n_px)(photo))

fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), gridspec_kw={"width_ratios": [1.67, 1.67, 1, 1.3]})
axes[0].imshow(photo)
axes[0].set_title(f"original {photo.size[0]}x{photo.size[1]}")
axes[1].imshow(resized)
left = (resized.size[0] - n_px) / 2
axes[1].add_patch(plt.Rectangle((left, 0), n_px, n_px, fill=False, ec="white", lw=2, ls="--"))
axes[1].set_title(f"resized {resized.size[0]}x{resized.size[1]}, crop box")
axes[2].imshow(cropped)
axes[2].set_title(f"cropped {n_px}x{n_px}")
for channel, colour in enumerate("rgb"):
    axes[3].hist(array[channel].ravel(), bins=40, histtype="step", color=colour, label=colour.upper())
axes[3].set_title("normalised values per channel")
axes[3].legend()
for ax in axes[:3]:
    ax.axis("off")
plt.tight_layout()
plt.show()
print("channel mean/std used:", MEAN.round(3), STD.round(3))

# %% [markdown]
# The centre crop cut off most of the ball and the tent: CLIP never sees the edges of a
# wide picture. After normalisation a pixel value $v$ becomes $(v/255 - \mu_c)/\sigma_c$,
# which is why the histograms sit around zero and span a few units.
#
# **Where next.** `05_contrastive_loss.ipynb` ties the two towers' outputs together with the
# contrastive loss.

# %% [markdown]
# # 12. Evaluating CLIP
#
# A contrastive loss going down says the model matches the pairs of its own batches. The
# CLIP paper measures what that is worth with three tests, all on frozen embeddings, and
# this notebook runs each on a small CLIP that it trains for half a minute:
#
# 1. **zero-shot classification**, with one prompt and with an ensemble of prompts;
# 2. **retrieval**: find the caption of a picture, and the picture of a caption, scored
#    by Recall@K (exercise 12a: Recall@K from a similarity matrix);
# 3. a **linear probe**: logistic regression on the image features alone;
#
# and then looks inside: a **PCA** of the image and text embeddings before and after
# training (exercise 12b: PCA by SVD), and where the image tower's **class token attends**.
# The code is `miniclip/evaluation/` (`python -m miniclip.evaluation` runs the same three
# tests on folders of real images).

# %%
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np

import miniclip
from miniclip import create_model
from miniclip.data import COLOURS, ArrayDataset, CLIPCollate, DataLoader, SyntheticShapes, stack_fields
from miniclip.evaluation import linear_probe, retrieval_recall
from miniclip.evaluation.zeroshot import accuracy, encode_images, encode_texts, zero_shot_classifier
from miniclip.grading import exercise
from miniclip.models import trim_padding
from miniclip.optim import GradScaler, WarmupCosine
from miniclip.training.step import train_step
from miniclip.training.recipe import paper_optimizer
from miniclip.system.memory import reuse_freed_memory
from miniclip.system.threads import limit_blas_threads

STEPS, BATCH_SIZE, PEAK_LR, SEED = 300, 64, 2e-3, 0
SMALLER = dict(vision_width=64, transformer_width=64)   # tiny-vit at half its width

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too
print(reuse_freed_memory())  # recycle big temporary arrays: a third off each step

# %% [markdown]
# ## A model, before and after
#
# The `tiny-vit` preset at half its width (0.49M parameters instead of 1.37M: each step is
# about twice as cheap), trained as in `06_train_tiny_clip.ipynb` but shorter, with
# `train_step` from `miniclip/training/step.py` (forward, loss, backward, clipping, AdamW,
# the temperature cap). Seeding twice gives an untrained twin with the very weights the
# training starts from, for the "before" pictures.

# %%
train_set = SyntheticShapes(2048, image_size=32, split="train", seed=SEED)
test_set = SyntheticShapes(600, image_size=32, split="test", seed=SEED)
miniclip.manual_seed(SEED)
untrained = create_model("tiny-vit", **SMALLER).eval()
miniclip.manual_seed(SEED)
model = create_model("tiny-vit", **SMALLER).train()
collate = CLIPCollate.for_model(model.input_resolution, model.context_length)
train_images, train_tokens = ArrayDataset.prepare(train_set, collate).arrays
test_images, test_tokens = ArrayDataset.prepare(test_set, collate).arrays
train_labels, test_labels = train_set.labels(), test_set.labels()
captions = [test_set[i][1] for i in range(len(test_set))]

loader = DataLoader(ArrayDataset(train_images, trim_padding(train_tokens)), BATCH_SIZE,
                    shuffle=True, seed=SEED, drop_last=True, collate=stack_fields)
optimizer = paper_optimizer(model, PEAK_LR, tower="vit")
schedule = WarmupCosine(optimizer, STEPS // 10, STEPS)
no_scaling = GradScaler(enabled=False)                    # float32: no loss scaling
batches, losses = loader.batches(), []
start = time.perf_counter()
for step in range(STEPS):
    schedule(step)
    images, tokens = next(batches)
    losses.append(train_step(model, optimizer, no_scaling, images, tokens, step + 1, "cpu", 1.0))
model.eval()
print(f"{model.num_parameters():,} parameters; {STEPS} steps in {time.perf_counter() - start:.0f} s, "
      f"loss {np.mean(losses[:10]):.2f} -> {np.mean(losses[-10:]):.2f} (ln {BATCH_SIZE} = "
      f"{np.log(BATCH_SIZE):.2f} is chance)")

# %% [markdown]
# ## 1. Zero-shot classification and prompt ensembles
#
# A zero-shot classifier is a matrix of text embeddings, one unit column per class
# (`zero_shot_classifier`). With one template, class $k$'s column is the embedding of,
# say, "a photo of a red circle."; with an **ensemble**, it is the normalised mean of the
# embeddings of every template filled with the class name. Each phrasing's embedding is
# the class plus something of the wording; averaging keeps what the phrasings share. The
# paper gained about 3.5 points on ImageNet from 80 templates. Here each template alone
# and the three together, before and after training:

# %%
def zero_shot_top1(clip_model, templates, image_features):
    classifier = zero_shot_classifier(clip_model, test_set.classnames, templates,
                                      collate.tokenize)                 # [E, 30]
    return accuracy(image_features @ classifier, test_labels)


features = {"before": encode_images(untrained, test_images),            # [600, E] unit rows
            "after": encode_images(model, test_images)}
prompts = [[template] for template in test_set.templates] + [list(test_set.templates)]
names = [template.format("…") for template in test_set.templates] + ["ensemble of all three"]
scores = {when: [zero_shot_top1(clip_model, templates, features[when]) for templates in prompts]
          for when, clip_model in (("before", untrained), ("after", model))}

fig, ax = plt.subplots(figsize=(9, 3))
for offset, when in ((-0.2, "before"), (0.2, "after")):
    ax.barh(np.arange(len(names)) + offset, scores[when], height=0.4, label=f"{when} training")
ax.axvline(1 / 30, color="grey", ls=":", label="chance (1/30)")
ax.set_yticks(range(len(names)), names)
ax.set_xlabel("zero-shot top-1 accuracy, 600 test pictures, 30 classes")
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()
for name, score in zip(names, scores["after"]):
    print(f"{name:28s} {score:.1%}")

# %% [markdown]
# The captions the model was trained on are written like the templates ("a photo of a
# small red circle ..."), so here the ensemble does no better than the best single
# phrasing: prompt engineering matters most when the
# class names are unlike the training captions (the paper's "a photo of a {}, a type of
# pet." for Oxford Pets).
#
# ## 2. Retrieval and Recall@K
#
# Retrieval ranks *all* captions for each picture (image → text) and all pictures for each
# caption (text → image) by cosine similarity. A query scores a hit at $K$ when its own
# answer is among the top $K$; **Recall@K** is the fraction of queries that hit. With
# $S$ the similarity matrix $[N_\text{img}, N_\text{txt}]$ and one caption per picture
# (caption $i$ describes picture $i$), the rank of query $i$ is the number of wrong
# candidates scoring **at least** as high as the right one,
#
# $$\text{rank}^{i\to t}_i = \#\{j \ne i : S_{ij} \ge S_{ii}\}, \qquad
# \text{rank}^{t\to i}_j = \#\{i \ne j : S_{ij} \ge S_{jj}\},$$
#
# and a hit at $K$ is $\text{rank} < K$. Counting ties against the query (the $\ge$) means
# a model whose embeddings are all equal scores no hits, not perfect ones.
#
# ### Exercise 12a: Recall@K from a similarity matrix
#
# Return `{"i2t_R@K": ..., "t2i_R@K": ...}` for every `K` in `ks`, as fractions in
# $[0, 1]$, for a square `similarity` whose diagonal holds the right pairs. One way:
# compare every entry with the diagonal of its row (image → text) or its column
# (text → image), count, and subtract the diagonal itself. No loop over queries is needed.

# %%
def recall_at_k(similarity, ks=(1, 5, 10)):
    """Recall@K both ways for a square ``similarity [N, N]`` whose pair i is (image i, text i)."""
    # BEGIN SOLUTION 12a: Recall@K
    right = np.diag(similarity)
    image_to_text = (similarity >= right[:, None]).sum(axis=1) - 1   # row i against S[i, i]
    text_to_image = (similarity >= right[None, :]).sum(axis=0) - 1   # column j against S[j, j]
    recalls = {}
    for direction, ranks in (("i2t", image_to_text), ("t2i", text_to_image)):
        for k in ks:
            recalls[f"{direction}_R@{k}"] = float((ranks < k).mean())
    return recalls
    # END SOLUTION


# %% [markdown]
# The check compares with `miniclip.evaluation.retrieval_recall`, which also handles
# several captions per picture (COCO has five), on random matrices and on one full of ties:

# %%
with exercise("12a: Recall@K") as check:
    check_rng = np.random.default_rng(1)
    cases = {"random 8 x 8": check_rng.standard_normal((8, 8)),
             "random 50 x 50": check_rng.standard_normal((50, 50)),
             "ties (rounded to one digit)": check_rng.standard_normal((30, 30)).round(1),
             "all equal": np.ones((6, 6))}
    for case, similarity in cases.items():
        ks = (1, 2, 5)
        check.equal(case, recall_at_k(similarity, ks),
                    retrieval_recall(similarity, np.arange(len(similarity)), ks))

# %% [markdown]
# On the 600 test pictures and their own captions, Recall@K for every $K$ up to 100,
# before and after training. A random ranking hits at $K$ with probability $K/N$.

# %%
text_features = {"before": encode_texts(untrained, test_tokens),
                 "after": encode_texts(model, test_tokens)}
ks = np.arange(1, 101)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
for when in ("before", "after"):
    recalls = recall_at_k(features[when] @ text_features[when].T, ks)
    for ax, direction in zip(axes, ("i2t", "t2i")):
        ax.plot(ks, [recalls[f"{direction}_R@{k}"] for k in ks], label=f"{when} training")
    print(f"{when:6s} " + "  ".join(f"{key} {recalls[key]:.1%}" for key in
                                    ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@10")))
for ax, title in zip(axes, ("image -> text", "text -> image")):
    ax.plot(ks, ks / len(captions), color="grey", ls=":", label="random ranking (K/N)")
    ax.set(xlabel="K", title=title)
axes[0].set_ylabel("Recall@K")
axes[0].legend()
plt.tight_layout()
plt.show()
print(f"{len(set(captions))} distinct captions among {len(captions)}")

# %% [markdown]
# Even a perfect model could not reach Recall@1 = 1 here: many pictures share a caption
# ("a red circle." is the caption of every red circle whose size and position go
# unmentioned), and identical captions have identical embeddings, which tie, and ties
# count against the query. Real benchmarks have the same problem more mildly (COCO's
# "a man riding a wave on a surfboard" fits many pictures), which is why papers report
# R@5 and R@10 beside R@1.
#
# ## 3. The linear probe
#
# Zero-shot asks whether the text tower can *name* the classes. The linear probe asks
# only whether the image features *separate* them: freeze the image tower, fit a
# multinomial logistic regression on labelled training features, and test it.
# `linear_probe` chooses the L2 strength on a validation split
# (`miniclip/evaluation/linear_probe.py` derives the objective and its gradient).

# %%
probe_images, probe_labels = train_images[:1024], train_labels[:1024]
for when, clip_model in (("before", untrained), ("after", model)):
    result = linear_probe(encode_images(clip_model, probe_images), probe_labels,
                          features[when], test_labels, num_classes=30)
    print(f"{when:6s} training: linear probe {result['top1']:.1%} (L2 {result['l2']:g}), "
          f"zero-shot {scores[when][-1]:.1%}")

# %% [markdown]
# Even *random* image features support a probe well above chance: a random projection of
# the pixels still carries the colour, and the colour alone narrows 30 classes to 5.
# Training raises the probe and the zero-shot score together; the gap between them is what
# the image features separate but the text tower has not yet learned to name.
#
# ## 4. The embedding space, before and after: PCA
#
# The embeddings have 64 dimensions. **Principal component analysis** finds the
# directions along which a cloud of points varies most. Centre the rows of $X$
# $[N, D]$, $X_c = X - \bar x$, and take its singular value decomposition
# $X_c = U \Sigma V^\top$ (singular values in decreasing order). The covariance is
#
# $$C = \tfrac{1}{N} X_c^\top X_c = V\, \tfrac{\Sigma^2}{N}\, V^\top,$$
#
# so the rows of $V^\top$ are the eigenvectors of $C$, the *principal directions*, with
# variances $\sigma_i^2/N$. The coordinates of the points along the first $k$ are
# $X_c V_{:, :k} = U_{:, :k} \Sigma_{:k}$. The SVD gives all of it without forming $C$
# (which would square the condition number).
#
# ### Exercise 12b: PCA by SVD
#
# Return `(coordinates [N, k], directions [k, D])`: the centred rows of `x` projected on
# the first `k` principal directions, and those directions as unit rows. Use
# `np.linalg.svd(..., full_matrices=False)`. (Each direction is defined up to its sign; the
# check accepts either.)

# %%
def pca(x, k):
    """The first ``k`` principal components of the rows of ``x [N, D]``: coordinates
    ``[N, k]`` of the centred rows, and the directions ``[k, D]`` (orthonormal rows)."""
    # BEGIN SOLUTION 12b: PCA by SVD
    centred = x - x.mean(axis=0)
    u, sigma, vt = np.linalg.svd(centred, full_matrices=False)
    return u[:, :k] * sigma[:k], vt[:k]
    # END SOLUTION


# %% [markdown]
# The check computes the eigenvectors of the covariance matrix instead (`np.linalg.eigh`)
# and compares, after matching each direction's sign:

# %%
with exercise("12b: PCA by SVD") as check:
    check_rng = np.random.default_rng(2)
    x = check_rng.standard_normal((40, 5)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1]) + 7.0
    coordinates, directions = pca(x, 3)
    check.close("directions @ directions.T", directions @ directions.T, np.eye(3))
    centred = x - x.mean(axis=0)
    variances, vectors = np.linalg.eigh(centred.T @ centred / len(x))
    expected = vectors[:, ::-1][:, :3].T                            # largest variance first
    signs = np.sign((directions * expected).sum(axis=1, keepdims=True))
    check.close("directions (up to sign)", directions * signs, expected)
    check.close("coordinates (up to sign)", coordinates * signs.T, centred @ expected.T)
    check.close("variance along each direction", coordinates.var(axis=0), variances[::-1][:3])

# %% [markdown]
# One PCA of the test pictures' embeddings and the 30 class embeddings (prompt ensembles)
# together, before and after training. Dots are pictures, coloured by their shape's
# colour; large crosses are the class embeddings, in the colour their name says.

# %%
colour_names = list(COLOURS)
picture_colour = np.array([colour_names.index(test_set.classnames[y].split()[0]) for y in test_labels])
class_colour = np.array([colour_names.index(name.split()[0]) for name in test_set.classnames])
palette = np.array(list(COLOURS.values())) / 255

fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
for ax, (when, clip_model) in zip(axes, (("before", untrained), ("after", model))):
    classes = zero_shot_classifier(clip_model, test_set.classnames, test_set.templates,
                                   collate.tokenize).T                        # [30, E]
    coordinates, _ = pca(np.concatenate([features[when], classes]), 2)
    pictures, texts = coordinates[:len(test_labels)], coordinates[len(test_labels):]
    ax.scatter(*pictures.T, c=palette[picture_colour], s=12, edgecolors="grey", linewidths=0.3)
    ax.scatter(*texts.T, c=palette[class_colour], marker="X", s=150, edgecolors="black")
    gap = np.linalg.norm(features[when].mean(0) - classes.mean(0))
    ax.set(title=f"{when} training (distance between the two means: {gap:.2f})",
           xlabel="principal component 1", ylabel="principal component 2")
plt.tight_layout()
plt.show()

# %% [markdown]
# Before training, pictures and texts sit in two separate clumps: each tower maps its
# inputs into its own narrow cone of the sphere, and nothing lines the two up. After
# training, the pictures spread into groups by colour, and each colour's class embeddings
# sit on the side of their pictures: the contrastive loss has aligned the two towers along
# the attribute that is easiest to see. The two clouds still do not coincide (the
# *modality gap* of Liang et al., 2022): the loss only ranks similarities within each
# row and column, and a constant offset between all images and all texts changes no
# ranking.
#
# ## 5. Where the class token looks
#
# The ViT's image embedding is the output of its **class token**, which reads the patches
# by attention in every block (`02_attention.ipynb`; `miniclip/models/vit.py`). Its row of
# the attention matrix, $[\text{heads}, 1 + G^2]$, says how much of each patch it takes.
# `MultiheadAttention` returns its weights when asked (`need_weights=True`); the blocks do
# not ask, so we replace each block's `attention` method on the instance for the length
# of one forward pass with one that keeps the class token's row, and check that the
# features are unchanged.

# %%
def class_token_attention(clip_model, images):
    """Per block, the class token's attention over the patches, ``[blocks, N, heads, G, G]``,
    recorded during an ordinary ``encode_image``; and the image features ``[N, E]``."""
    kept = []

    def recording(block):
        def attention(x):                        # what block.attention does, plus the weights
            out, weights = block.attn(x, x, x, need_weights=True)     # [N, heads, L, L]
            kept.append(weights.numpy()[:, :, 0, 1:])                 # query 0: the class token
            return out
        return attention

    blocks = clip_model.visual.transformer.resblocks
    for block in blocks:
        block.attention = recording(block)       # an instance attribute hides the method
    try:
        with miniclip.no_grad():
            features = clip_model.encode_image(miniclip.Tensor(images)).numpy()
    finally:
        for block in blocks:
            del block.attention
    grid = clip_model.input_resolution // clip_model.visual.patch_size
    return np.stack(kept).reshape(len(blocks), len(images), -1, grid, grid), features


shown = np.arange(8)
attention, recorded_features = class_token_attention(model, test_images[shown])
with miniclip.no_grad():
    plain = model.encode_image(miniclip.Tensor(test_images[shown])).numpy()
assert np.array_equal(recorded_features, plain)
print(f"attention {attention.shape} (blocks, pictures, heads, grid rows, grid columns); the "
      f"features are unchanged by the recording")

# %% [markdown]
# The images are 32 × 32 pixels in 8 × 8 patches, so a map is a 4 × 4 grid: coarse, but
# enough to see whether the class token finds the shape. This ViT has one head per block
# (CLIP gives its image tower width/64 heads). Shown on top of each picture, on one colour
# scale from 0 to 1: the last block's map before training, and both blocks' maps after.

# %%
untrained_attention, _ = class_token_attention(untrained, test_images[shown])
rows = [("before, block 2", untrained_attention[-1]), ("after, block 1", attention[0]),
        ("after, block 2", attention[-1])]
fig, axes = plt.subplots(1 + len(rows), len(shown), figsize=(15, 8))
for column, index in enumerate(shown):
    picture = test_set[index][0]
    axes[0, column].imshow(picture)
    axes[0, column].set_title(textwrap.fill(captions[index][len("a photo of a "):-1], 20),
                              fontsize=8)
    for row, (label, maps) in enumerate(rows, start=1):
        axes[row, column].imshow(picture)
        heat = axes[row, column].imshow(maps[column].mean(axis=0), cmap="magma", alpha=0.6,
                                        vmin=0, vmax=1, extent=(-0.5, 31.5, 31.5, -0.5))
        axes[row, 0].set_ylabel(label)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(heat, ax=axes[1:], fraction=0.02, label="class token's attention weight")
plt.show()

# %% [markdown]
# Before training the class token spreads its attention thinly over all 16 patches: a
# random network has no reason to prefer one. After training, the first block puts almost
# all of its weight on one patch that the shape covers: the class token has learned to
# find the object, the only part of the picture a caption speaks of. The last block also
# picks a single patch, but often a neighbour of the shape rather than the shape itself.
# That is no contradiction: by then every token has mixed in what the others held (block 1
# did that), so a patch's position is only a rough guide to what its token carries. This
# is why a map of one block is not a full account of what a model uses, and why methods
# such as attention rollout (Abnar and Zuidema, 2020) combine the blocks' maps.
#
# **Where next.** `13_gpu_with_cupy.ipynb`: the same code on a GPU.

# %% [markdown]
# # 6. Training a tiny CLIP
#
# Everything so far comes together here: we train a small CLIP from scratch on pictures of
# coloured shapes and their captions, then use it as a **zero-shot classifier**: it sorts
# held-out pictures into classes it was never trained to recognise, given only the class
# names in words, including six colour–shape combinations it has never seen at all.
#
# The run is kept short so the notebook finishes in about a minute on a laptop CPU. The
# command-line trainer, `python -m miniclip.train --tiny` (`miniclip/training/`), runs the
# same recipe for longer and reaches a higher accuracy; `--help` lists its options.

# %%
import math
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np

import miniclip
from miniclip import Tensor, create_model, no_grad
from miniclip.models import trim_padding
from miniclip.data import (COLOURS, POSITIONS, SHAPES, SIZES, ArrayDataset, CLIPCollate, DataLoader,
                           SyntheticShapes, stack_fields)
from miniclip.training.loss import clamp_logit_scale_, clip_loss
from miniclip.optim import WarmupCosine, clip_grad_norm_
from miniclip.training.recipe import paper_optimizer
from miniclip.data.synthetic import HELD_OUT
from miniclip.evaluation.zeroshot import (accuracy, encode_images, encode_texts, similarity_matrix,
                               zero_shot_classifier, zero_shot_predict)
from miniclip.grading import exercise
from miniclip.system.memory import reuse_freed_memory
from miniclip.system.threads import limit_blas_threads

# The knobs of this run. More steps give a better model (the CLI trains for 800).
STEPS, BATCH_SIZE, PEAK_LR, WARMUP = 300, 64, 1e-3, 30
SEED = 0
miniclip.manual_seed(SEED)
print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too
print(reuse_freed_memory())  # recycle big temporary arrays: a third off each step

# %% [markdown]
# ## The data
#
# `SyntheticShapes` (`miniclip/data/synthetic.py`) draws each picture on the fly from a seed: one
# shape (circle, square, triangle, cross, diamond) in one of six colours, small or large, at
# one of four positions, on a noisy background. The caption always names the colour and the
# shape and, each half of the time, the size and the position, in varied phrasings ("a photo
# of a red circle", "there is a circle that is red"). Nothing is downloaded, and item $i$ is
# the same picture every time.
#
# Six colour–shape pairs (`HELD_OUT`, one per colour) never appear in the training split,
# neither pictured nor named: the model sees blue squares and green circles, never a blue
# circle. The test split draws all 30 pairs.

# %%
train_set = SyntheticShapes(2048, image_size=32, split="train", seed=SEED, captions="varied")
test_set = SyntheticShapes(600, image_size=32, split="test", seed=SEED)

fig, axes = plt.subplots(3, 6, figsize=(13, 7))
for index, ax in enumerate(axes.flat):
    image, caption = train_set[index]
    ax.imshow(image)
    ax.set_title("\n".join(textwrap.wrap(caption, 22)), fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# For the zero-shot test the classes are the 30 colour–shape combinations, and
# `templates` are the prompts each class name is written into:

# %%
print(len(test_set.classnames), "classes:", test_set.classnames[:6], "...")
print("templates:", test_set.templates)
print("never in training:", [f"{c} {s}" for c, s in HELD_OUT])
assert not any((a["colour"], a["shape"]) in HELD_OUT
               for a in map(train_set.attributes, range(len(train_set))))

# %% [markdown]
# `CLIPCollate` turns (picture, caption) pairs into the model's two inputs: preprocessed
# images `[N, 3, 32, 32]` (the same `Preprocess` as for released models) and token ids
# `[N, 32]` (miniclip's tokenizer, context length 32). The set is small, so we prepare all of
# it once (`ArrayDataset.prepare`) instead of drawing and tokenising every epoch.
#
# `trim_padding` drops the token columns that hold only padding in every row. Our captions
# use at most 13 of the 32 positions, and the padding after the end token cannot change the
# text features (the causal mask, `02_attention.ipynb`), so this halves the text tower's
# work for free.

# %%
model = create_model("tiny-vit")
collate = CLIPCollate.for_model(model.input_resolution, model.context_length)
start = time.perf_counter()
train_images, train_tokens = ArrayDataset.prepare(train_set, collate).arrays
test_images, _ = ArrayDataset.prepare(test_set, collate).arrays
test_labels = test_set.labels()
print(f"prepared in {time.perf_counter() - start:.1f} s: images {train_images.shape}, "
      f"tokens {train_tokens.shape} -> trimmed {trim_padding(train_tokens).shape}")
assert train_images.shape == (2048, 3, 32, 32) and train_tokens.shape == (2048, 32)

loader = DataLoader(ArrayDataset(train_images, trim_padding(train_tokens)), BATCH_SIZE,
                    shuffle=True, seed=SEED, drop_last=True, collate=stack_fields)

# %% [markdown]
# ## The model
#
# The `tiny-vit` preset (`miniclip/models/configs.py`): a Vision Transformer on 32×32
# images in 8×8 patches and a text transformer, each 2 blocks of width 128, meeting in a
# 64-dimensional embedding space. It is OpenAI's `CLIP` class with small numbers: the same
# code would build ViT-B/32.

# %%
print({key: value for key, value in model.config.items()})
print(f"{model.num_parameters():,} parameters "
      f"(image tower {model.visual.num_parameters():,})")

# %% [markdown]
# Before training, zero-shot classification should be at chance, 1 in 30. A zero-shot
# classifier is built from text alone (`miniclip/evaluation/zeroshot.py`): every class name is written
# into every template, the sentences are embedded and normalised, and each class's
# embeddings are averaged into one unit vector. An image gets the class whose vector is most
# similar to its own embedding.

# %%
unseen = np.isin(test_labels, test_set.held_out_classes())   # [600] pictures of held-out pairs


def zero_shot_accuracy(model):
    """Top-1 over all 30 classes on the pictures of trained pairs, on those of held-out
    pairs, and the probabilities [600, 30]."""
    classifier = zero_shot_classifier(model, test_set.classnames, test_set.templates, collate.tokenize)
    probabilities = zero_shot_predict(model, test_images, classifier)
    return (accuracy(probabilities[~unseen], test_labels[~unseen]),
            accuracy(probabilities[unseen], test_labels[unseen]), probabilities)


before, before_unseen, _ = zero_shot_accuracy(model)
print(f"zero-shot accuracy before training: {before:.1%} (chance {1 / 30:.1%})")
assert before < 0.15, "an untrained model should be near chance"

# %% [markdown]
# ## Training
#
# The paper's recipe at a small scale (see `05_contrastive_loss.ipynb` for each piece):
# the symmetric contrastive loss on the $64 \times 64$ logit matrix of each batch; AdamW
# with the ViT's β and ε and weight decay 0.2 on weight matrices and embedding tables (not
# on biases and gains); a linear warm-up, then cosine decay of the learning rate;
# gradient-norm clipping at 1; and the temperature clipped after every step. This loop is
# `train_step` in `miniclip/training/step.py` without its loss scaler (for mixed precision)
# and the checks for inf/NaN.
#
# **Exercise 6a: one training step.** Write the step the loop below runs on a batch
# (NumPy `images [64, 3, 32, 32]` and `tokens [64, L]`): the model's two logit matrices,
# the paper's loss, the backward pass, gradient-norm clipping at 1, the optimiser's update,
# and clearing the gradients for the next batch (`backward()` *adds* into `.grad`). Return
# the loss tensor. The check runs your step on a fresh model and looks at what a step must
# leave behind: the batch's loss as it was before the update, every weight moved, and no
# gradient left over.

# %%
def training_step(model, optimizer, images, tokens):
    """One optimiser step on a batch; returns the loss (a one-element Tensor)."""
    # BEGIN SOLUTION 6a: one training step
    logits_per_image, logits_per_text = model(Tensor(images), Tensor(tokens))   # [64, 64] each
    loss = clip_loss(logits_per_image, logits_per_text)
    loss.backward()
    clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss
    # END SOLUTION


# %%
with exercise("6a: one training step") as check:
    trial = create_model("tiny-vit").train()
    trial_images, trial_tokens = next(loader.batches())
    with no_grad():
        expected = clip_loss(*trial(Tensor(trial_images), Tensor(trial_tokens))).item()
    trial_weights = {name: p.numpy() for name, p in trial.named_parameters()}
    trial_loss = training_step(trial, paper_optimizer(trial, PEAK_LR, tower="vit"), trial_images,
                               trial_tokens)
    check.close("the returned loss (the batch's, before the update)", trial_loss.item(), expected)
    unchanged = [name for name, p in trial.named_parameters()
                 if np.array_equal(p.numpy(), trial_weights[name])]
    check.true("every weight updated", not unchanged, f"unchanged after the step: {unchanged[:3]}")
    left = [name for name, p in trial.named_parameters() if p.grad is not None]
    check.true("no gradient left for the next batch", not left,
               f"{len(left)} parameters still hold a gradient, e.g. {left[:2]}")

# %%
model.train()
optimizer = paper_optimizer(model, PEAK_LR, tower="vit")
schedule = WarmupCosine(optimizer, WARMUP, STEPS)
batches = loader.batches()
log = {"loss": [], "scale": []}

start = time.perf_counter()
for step in range(STEPS):
    schedule(step)
    images, tokens = next(batches)
    loss = training_step(model, optimizer, images, tokens)
    log["scale"].append(math.exp(clamp_logit_scale_(model).item()))
    log["loss"].append(loss.item())
seconds = time.perf_counter() - start
model.eval()
print(f"{STEPS} steps in {seconds:.0f} s ({seconds / STEPS * 1000:.0f} ms per step)")
fall = np.mean(log["loss"][:10]) - np.mean(log["loss"][-10:])
print(f"the loss fell by {fall:.2f} from ln {BATCH_SIZE} = {np.log(BATCH_SIZE):.2f}")
assert fall > 1.5, "the loss should fall well below chance level"

# %%
smooth = np.convolve(log["loss"], np.ones(10) / 10, mode="valid")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
axes[0].plot(log["loss"], alpha=0.35, label="per batch")
axes[0].plot(np.arange(9, STEPS), smooth, label="mean of 10")
axes[0].axhline(np.log(BATCH_SIZE), color="grey", ls=":", label=f"ln {BATCH_SIZE} (chance)")
axes[0].set(xlabel="step", ylabel="loss", title="contrastive loss")
axes[0].legend()
axes[1].plot(log["scale"])
axes[1].set(xlabel="step", title="logit scale exp(t) (starts at 14.3)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Zero-shot classification
#
# The model was trained only to match pictures with captions. Now we ask it to classify the
# 600 held-out pictures into the 30 classes using nothing but the class names, and score
# separately the pictures of the 24 pairs it was trained on and of the 6 it never saw. (A
# held-out picture must beat the seen names it resembles: a blue circle is not a "blue
# square".) A short run learns the seen pairs well; the held-out ones need the text tower to
# compose "blue" and "circle", which comes with longer training: the command-line run gets
# most of them right.

# %%
after, after_unseen, probabilities = zero_shot_accuracy(model)
predicted = probabilities.argmax(axis=1)
names = test_set.classnames
colour_of = np.array([name.split()[0] for name in names])
shape_of = np.array([name.split()[1] for name in names])
print(f"zero-shot accuracy, trained pairs: {after:.1%}, held-out pairs: {after_unseen:.1%} "
      f"(before training {before:.1%} and {before_unseen:.1%}, chance {1 / 30:.1%})")
assert after > 10 / 30, "zero-shot accuracy should beat chance (1/30) many times over"
print(f"top-5 accuracy:     {accuracy(probabilities, test_labels, k=5):.1%}")
print(f"colour right: {(colour_of[predicted] == colour_of[test_labels]).mean():.1%}   "
      f"shape right: {(shape_of[predicted] == shape_of[test_labels]).mean():.1%}")

# %% [markdown]
# The confusion matrix counts, for each true class (row), the predicted classes (columns).
# Classes are ordered colour by colour, so the 5×5 blocks on the diagonal are "right colour";
# within a block, the diagonal is "right shape too".

# %%
confusion = np.zeros((30, 30), int)
np.add.at(confusion, (test_labels, predicted), 1)
fig, ax = plt.subplots(figsize=(9, 8))
ax.imshow(confusion, cmap="Blues")
ax.set_xticks(range(30), names, rotation=90, fontsize=7)
ax.set_yticks(range(30), names, fontsize=7)
for edge in range(5, 30, 5):
    ax.axhline(edge - 0.5, color="grey", lw=0.5)
    ax.axvline(edge - 0.5, color="grey", lw=0.5)
ax.set_xlabel("predicted class")
ax.set_ylabel("true class")
ax.set_title(f"zero-shot confusion matrix, {len(test_labels)} test pictures")
plt.tight_layout()
plt.show()

# %% [markdown]
# Colour is learned first: it is one statistic of a few pixels, visible in any single
# patch. Shape needs the model to relate several patches to one another, so shape mistakes
# within the right colour dominate after a short run. Train longer (raise `STEPS`) and the
# diagonal inside the blocks fills in.
#
# ## Images against captions
#
# `similarity_matrix` gives the cosine similarity of every image with every caption. For
# ten test pictures and their own captions, the matching pairs (the diagonal) should stand
# out, at least when the captions differ in colour or shape.

# %%
count = 10
pairs = [test_set[i] for i in range(count)]
captions = [caption for _, caption in pairs]
similarity = similarity_matrix(model, test_images[:count], collate.tokenize(captions))

fig, ax = plt.subplots(figsize=(10, 8))
im = ax.imshow(similarity.T, cmap="viridis")                 # row = caption, column = image
for j, (image, _) in enumerate(pairs):                       # each picture above its column
    ax.imshow(image, extent=(j - 0.45, j + 0.45, -0.6, -1.5))
ax.set_xlim(-0.5, count - 0.5)
ax.set_ylim(count - 0.5, -1.6)
ax.set_yticks(range(count), captions, fontsize=8)
ax.set_xticks([])
plt.colorbar(im, ax=ax, fraction=0.03, label="cosine similarity")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Nearest captions
#
# Finally, retrieval: for a few test pictures, the three captions (out of all 240 full
# descriptions: 2 sizes × 6 colours × 5 shapes × 4 positions) whose embeddings are closest to
# the picture's.

# %%
candidates = [f"a photo of a {size} {colour} {shape} {where}."
              for size in SIZES for colour in COLOURS for shape in SHAPES
              for _, where in POSITIONS.values()]
caption_features = encode_texts(model, collate.tokenize(candidates))        # [240, 64]
shown = [10, 11, 12, 13, 14, 15]
image_features = encode_images(model, test_images[shown])                   # [6, 64]
scores = image_features @ caption_features.T

fig, axes = plt.subplots(1, len(shown), figsize=(15, 3.6))
for ax, index, row in zip(axes, shown, scores):
    ax.imshow(test_set[index][0])
    ax.axis("off")
    best = np.argsort(-row)[:3]
    lines = [f"{row[j]:.2f} " + candidates[j][len("a photo of a "):-1] for j in best]
    ax.set_title("\n".join(lines), fontsize=7.5, loc="left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Colour and shape are usually right among the top captions; size and position, which the
# captions mention only half of the time, are learned last.
#
# **Try it yourself**
#
# * Raise `STEPS` to 600 (about twice the time) and compare the confusion matrices.
# * Train the ResNet tower: `create_model("tiny-rn")` and `tower="resnet"` in
#   `paper_optimizer` (64×64 images: set `image_size=64` in both datasets).
# * Remove the temperature clip or freeze it (`model.logit_scale.requires_grad = False`
#   before building the optimiser) and watch the loss curve.

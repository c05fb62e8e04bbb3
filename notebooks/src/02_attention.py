# %% [markdown]
# # 2. Attention, step by step
#
# Both of CLIP's towers are transformers, and the one operation that makes a transformer is
# **attention**: every token looks at every other token and takes a weighted average of
# what it finds. This notebook builds it up in the order the code does:
#
# 1. scaled dot-product attention for one head, which you write (exercise 2a);
# 2. why the scores are divided by $\sqrt{d_h}$;
# 3. splitting the width into several heads and merging them again;
# 4. the causal mask of the text tower (exercise 2b);
# 5. a tiny hand-built example whose attention weights we can read off a heatmap;
# 6. the residual attention block that CLIP stacks 12 or 24 times.
#
# The code lives in `miniclip/nn/attention.py` (`scaled_dot_product_attention`,
# `split_heads`, `merge_heads`, `multi_head_attention`, `MultiheadAttention`) and
# `miniclip/models/transformer.py` (`ResidualAttentionBlock`, `Transformer`).
# An exercise is a function with a `raise NotImplementedError` line for you to replace,
# followed by a cell starting `with exercise(...)` that checks it.
# Shapes are **batch-first** everywhere in miniclip: a batch of sequences is `[N, L, D]`
# (batch, length, width).

# %%
import matplotlib.pyplot as plt
import numpy as np

import miniclip
import miniclip.functional as F
from miniclip import Tensor, create_model, nn, no_grad, tokenize
from miniclip.functional.gradcheck import gradcheck
from miniclip.grading import exercise
from miniclip.models import ResidualAttentionBlock
from miniclip.system.threads import limit_blas_threads

miniclip.manual_seed(0)
rng = np.random.default_rng(0)

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## One head
#
# Each of the $L$ tokens carries three vectors of width $d_h$: a **query** (what am I looking
# for?), a **key** (what do I contain?) and a **value** (what do I pass on?). For one head,
#
# $$\text{scores} = \frac{Q K^\top}{\sqrt{d_h}} \;[L_q, L_k], \qquad
# \text{weights} = \operatorname{softmax}_{\text{rows}}(\text{scores}) \;[L_q, L_k], \qquad
# \text{out} = \text{weights}\; V \;[L_q, d_h].$$
#
# Row $i$ of `weights` is a probability distribution over the keys: how much query $i$
# takes from each token. Each output row is therefore a weighted average of the value rows.

# %% [markdown]
# ### Exercise 2a: one attention head
#
# Write the three formulas for one head, on miniclip tensors (so autograd can follow them):
# `q @ k.T` is the product $QK^\top$ and `F.softmax(x, dim=-1)` the softmax along rows.
# An optional additive `mask` `[L_q, L_k]` (a NumPy array) is added to the scores before
# the softmax; the causal mask below is one.

# %%
def attention(q, k, v, mask=None):
    """One head: returns (out [L_q, d_h], weights [L_q, L_k]) for q [L_q, d_h], k and v
    [L_k, d_h]: weights = softmax(q kᵀ / sqrt(d_h) + mask) along rows, out = weights v.
    (The order of miniclip's nn.scaled_dot_product_attention and of assignment A4.)"""
    # BEGIN SOLUTION 2a: one attention head
    scores = q @ k.T / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + Tensor(mask)
    weights = F.softmax(scores, dim=-1)
    return weights @ v, weights
    # END SOLUTION


# %% [markdown]
# The check compares your head with miniclip's `nn.scaled_dot_product_attention`, without
# a mask and with one that hides key 0 from every query:

# %%
L, dh = 4, 8
q = Tensor(rng.standard_normal((L, dh)))
k = Tensor(rng.standard_normal((L, dh)))
v = Tensor(rng.standard_normal((L, dh)))
hide_first_key = np.zeros((L, L))
hide_first_key[:, 0] = -np.inf

with exercise("2a: one attention head") as check:
    out, weights = attention(q, k, v)
    check.close("row sums of the weights", weights.numpy().sum(axis=1), np.ones(L))
    check.close("output", out, nn.scaled_dot_product_attention(q, k, v))
    masked_out, masked_weights = attention(q, k, v, hide_first_key)
    check.close("weights on the masked key", masked_weights.numpy()[:, 0], np.zeros(L))
    check.close("output with the mask", masked_out,
                nn.scaled_dot_product_attention(q, k, v, attn_mask=hide_first_key))
print("q, k, v  ", q.shape, k.shape, v.shape)
print("weights  ", weights.shape, "| row sums", weights.numpy().sum(axis=1).round(6))
print("out      ", out.shape)

# %% [markdown]
# ## Why divide by $\sqrt{d_h}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, the dot product
# $q \cdot k = \sum_{j=1}^{d_h} q_j k_j$ is a sum of $d_h$ terms of variance 1, so its
# variance is $d_h$ and its standard deviation $\sqrt{d_h}$. CLIP's heads are 64 wide: raw
# scores would spread over roughly ±8, and a softmax over such numbers is nearly one-hot.
# A nearly one-hot softmax has nearly zero gradient (its Jacobian
# $\operatorname{diag}(p) - p p^\top$ vanishes when $p$ is one-hot), so attention would
# barely learn. Dividing by $\sqrt{d_h}$ brings the spread back to about 1 whatever the width.

# %%
widths = [4, 16, 64, 256, 1024]
raw_std, scaled_std, top_raw, top_scaled = [], [], [], []
for width in widths:
    queries = rng.standard_normal((500, width))
    keys = rng.standard_normal((16, width))
    dots = queries @ keys.T                          # [500 queries, 16 keys]
    raw_std.append(dots.std())
    scaled_std.append((dots / np.sqrt(width)).std())
    # average over the queries of the largest weight each one gives a key
    top_raw.append(F.softmax(Tensor(dots), dim=-1).numpy().max(axis=1).mean())
    top_scaled.append(F.softmax(Tensor(dots / np.sqrt(width)), dim=-1).numpy().max(axis=1).mean())

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(widths, raw_std, "o-", label="std of q·k")
axes[0].plot(widths, scaled_std, "o-", label="std of q·k / sqrt(d_h)")
axes[0].plot(widths, np.sqrt(widths), "k--", lw=0.8, label="sqrt(d_h)")
axes[0].set(xscale="log", yscale="log", xlabel="head width d_h", title="spread of the scores")
axes[0].legend()
axes[1].plot(widths, top_raw, "o-", label="softmax(q·k)")
axes[1].plot(widths, top_scaled, "o-", label="softmax(q·k / sqrt(d_h))")
axes[1].axhline(1 / 16, color="grey", ls=":", label="uniform (1/16)")
axes[1].set(xscale="log", ylim=(0, 1.05), xlabel="head width d_h",
            title="mean largest weight, 16 keys per query")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# In the code (`scaled_dot_product_attention`) the factor is applied to `q` *before* the
# product, `(q * scale) @ k.T`: the same numbers, but smaller intermediates, which matters
# in float16.
#
# ## Several heads
#
# One softmax can only express one way of mixing. **Multi-head** attention cuts the width
# $D$ into $h$ contiguous chunks of $d_h = D/h$ features and runs the formula above on every
# chunk independently: head $j$ uses features $j\,d_h \ldots (j+1)\,d_h - 1$ of the queries,
# keys and values. No loop is needed: `split_heads` reshapes `[N, L, D]` to
# `[N, L, h, d_h]` and swaps two axes to get `[N, h, L, d_h]`; the matrix products then
# treat `N` and `h` as batch axes. `merge_heads` undoes it.

# %%
N, L, D, heads = 2, 6, 16, 2
x = Tensor(rng.standard_normal((N, L, D)))
split = nn.split_heads(x, heads)
print("x", x.shape, "-> split_heads ->", split.shape, "-> merge_heads ->", nn.merge_heads(split).shape)
print("head 1 is features 8..15:", np.array_equal(split.numpy()[:, 1], x.numpy()[:, :, 8:16]))

# Multi-head attention equals a loop over heads whose results are concatenated.
together = nn.multi_head_attention(x, x, x, num_heads=heads)
one_by_one = [nn.scaled_dot_product_attention(*(t[:, :, j * 8:(j + 1) * 8] for t in (x, x, x)))
              for j in range(heads)]
print("same as one head at a time:", np.allclose(together.numpy(), F.cat(one_by_one, dim=-1).numpy()))
assert np.array_equal(split.numpy()[:, 1], x.numpy()[:, :, 8:16])
assert np.allclose(together.numpy(), F.cat(one_by_one, dim=-1).numpy())

# %% [markdown]
# ## The causal mask
#
# The text tower reads a caption like a language model: token $i$ may attend only to tokens
# $0 \ldots i$. An **additive mask** does this: 0 where attending is allowed and $-\infty$
# where it is not, added to the scores before the softmax. Since $e^{-\infty} = 0$, the
# masked keys get weight exactly 0 and the remaining weights still sum to 1.
#
# ### Exercise 2b: the causal mask
#
# Write `causal_mask(length)`: a float array `[length, length]` whose row $i$ (the query)
# is 0 at columns $j \le i$ and $-\infty$ at columns $j > i$. (`np.triu` or `np.tril` with
# an offset, or a comparison of `np.arange`s, does it in one line.) The rest of the
# notebook uses your mask.

# %%
def causal_mask(length):
    """The additive causal mask [length, length]: 0 where key j <= query i, -inf above."""
    # BEGIN SOLUTION 2b: the causal mask
    return np.triu(np.full((length, length), -np.inf), k=1)
    # END SOLUTION


# %%
with exercise("2b: the causal mask") as check:
    from miniclip.models import causal_mask as reference_mask   # the one the text tower uses
    for length in (1, 2, 5):
        check.close(f"causal_mask({length})", causal_mask(length), reference_mask(length))
print(causal_mask(5))

# %% [markdown]
# A direct consequence: with the mask, changing a token can only change the outputs at its
# own and later positions. That is what lets CLIP read its text features at the
# end-of-text token: it is the only position that has seen the whole caption, and the
# padding after it cannot influence it. A quick experiment, changing the last token:

# %%
mask = causal_mask(L)
changed = Tensor(x.numpy().copy())
changed.data[:, -1] += 1.0                           # perturb the last token only
for name, m in [("no mask", None), ("causal mask", mask)]:
    a = nn.multi_head_attention(x, x, x, heads, attn_mask=m).numpy()
    b = nn.multi_head_attention(changed, changed, changed, heads, attn_mask=m).numpy()
    moved = np.abs(a - b).max(axis=(0, 2))           # per position
    print(f"{name:12s} change per position: {np.array2string(moved, precision=3)}")

# %% [markdown]
# ### Padding costs nothing: the text tower stops at the last end-of-text token
#
# The same fact makes padding free. Captions are padded with id 0 to the context length
# (77 positions in OpenAI's models), but an ordinary prompt such as "a photo of a dog."
# fills fewer than 10. Every layer of the tower acts on each position alone, except
# attention, and in attention the mask gives every position after a query a weight of
# exactly $e^{-\infty} = 0$. So the positions after a batch's last end-of-text token can
# change no feature, and `encode_text` simply does not compute them: it cuts the batch to
# the positions up to its last end-of-text token (the largest id of each row, found with
# `argmax`) before the embedding. The result is *exact*, not an approximation; it differs
# from running all the positions only by float32 rounding, because the matrix products
# sum the same terms over fewer rows. Below, the tower run by hand over all 32 positions
# of a tiny model, against `encode_text`:

# %%
text_model = create_model("tiny-vit").eval()
prompts = tokenize(["a photo of a red circle.", "a blue square."],
                   context_length=text_model.context_length)       # [2, 32], padded with 0
last = int(prompts.argmax(axis=-1).max())                          # the last end-of-text
with no_grad():
    trimmed = text_model.encode_text(prompts).numpy()              # runs positions 0..last
    ids = Tensor(prompts).data
    h = text_model.token_embedding(ids) + text_model.positional_embedding   # all 32
    h = text_model.ln_final(text_model.transformer(h))
    full = (h[np.arange(2), prompts.argmax(axis=-1)] @ text_model.text_projection).numpy()
print(f"positions run: {last + 1} of {prompts.shape[1]}; largest relative difference "
      f"{np.abs(trimmed - full).max() / np.abs(full).max():.1e}")

# %% [markdown]
# ## A hand-built example we can read
#
# With random weights attention patterns mean nothing, so let us *set* the weights of a
# `nn.MultiheadAttention` to make two heads with a recognisable job, on the six-word
# sentence "the cat sat on the mat".
#
# Each token is a 16-dimensional vector: features 0–7 one-hot encode the word (5 distinct
# words), features 8–15 one-hot encode the position (6 positions). `MultiheadAttention`
# packs the three input projections into one `in_proj_weight` of shape `[3D, D]`: rows
# 0–15 make the queries, 16–31 the keys and 32–47 the values; within each block, the first 8
# rows belong to head 0 and the next 8 to head 1.
#
# * **Head 0, "same word"**: queries and keys both copy the word one-hot, so $q_i\cdot k_j$
#   is large exactly when tokens $i$ and $j$ are the same word.
# * **Head 1, "previous token"**: keys copy the position one-hot; queries copy it *shifted
#   by one*, so $q_i \cdot k_j$ is large exactly when $j = i - 1$.
#
# The values copy the input and the output projection is the identity, so the output of
# head 0 for a token is an average of the word vectors it attends to.

# %%
words = "the cat sat on the mat".split()
vocab = sorted(set(words))
L, D, dh, strength = len(words), 16, 8, 4.0
tokens = np.zeros((1, L, D))
for i, word in enumerate(words):
    tokens[0, i, vocab.index(word)] = 1.0             # word one-hot, features 0..7
    tokens[0, i, 8 + i] = 1.0                         # position one-hot, features 8..15

W = np.zeros((3 * D, D))
W[0:8, 0:8] = strength * np.eye(8)                    # head 0 queries: the word
W[16:24, 0:8] = strength * np.eye(8)                  # head 0 keys:    the word
for p in range(1, 8):
    W[8 + p - 1, 8 + p] = strength                    # head 1 queries: position - 1
W[24:32, 8:16] = strength * np.eye(8)                 # head 1 keys:    the position
W[32:48, :] = np.eye(D)                               # values: the token itself

two_heads = nn.MultiheadAttention(D, num_heads=2).to(np.float64)
two_heads.in_proj_weight.data[...] = W
two_heads.in_proj_bias.data[...] = 0.0
two_heads.out_proj.weight.data[...] = np.eye(D)
two_heads.out_proj.bias.data[...] = 0.0

sentence = Tensor(tokens)
fig, axes = plt.subplots(2, 2, figsize=(9, 8.5))
for row, (title, m) in enumerate([("no mask", None), ("causal mask", causal_mask(L))]):
    _, att = two_heads(sentence, sentence, sentence, attn_mask=m, need_weights=True)
    print(title, "- weights shape [N, heads, L_q, L_k]:", att.shape)
    for head, name in enumerate(["head 0: same word", "head 1: previous token"]):
        ax = axes[row, head]
        ax.imshow(att.numpy()[0, head], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(L), words)
        ax.set_yticks(range(L), words)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        ax.set_title(f"{name}, {title}", fontsize=10)
        for i in range(L):
            for j in range(L):
                ax.text(j, i, f"{att.numpy()[0, head, i, j]:.2f}", ha="center", va="center",
                        fontsize=7, color="white" if att.numpy()[0, head, i, j] > 0.5 else "black")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to notice:
#
# * Head 0 without a mask: both occurrences of "the" attend to each other, about half and
#   half. With the causal mask the first "the" can only see itself, while the second
#   still finds the first.
# * Head 1: every token puts almost all its weight on its predecessor. The first token
#   has no predecessor, all its scores are equal, and the softmax spreads its weight
#   evenly; with the mask it can only attend to itself. (Real models learn to use such a
#   "nowhere to look" position as a sink.)
# * The weights come back per head, `[N, heads, L_q, L_k]`, because we asked for
#   `need_weights=True`. PyTorch would average them over the heads by default; here
#   `weights.mean(1)` gives that.
#
# ## The residual attention block
#
# CLIP's transformer is a stack of identical **pre-LayerNorm residual blocks**
# (`ResidualAttentionBlock` in `miniclip/models/transformer.py`):
#
# $$x \leftarrow x + \operatorname{Attention}(\operatorname{LN}_1(x)), \qquad
# x \leftarrow x + W_\text{proj}\,\operatorname{QuickGELU}(W_\text{fc}\,\operatorname{LN}_2(x)).$$
#
# The first line lets tokens exchange information; the second transforms each token on its
# own through a 4×-wider MLP. Each branch normalises its *input* and adds its output to an
# untouched copy, so the gradient reaches early blocks through the additions unchanged.
# The parameter names are those of OpenAI's checkpoints, which is what lets us load their
# weights directly (`07_pretrained_weights.ipynb`).

# %%
d = 16
block = ResidualAttentionBlock(d, n_head=2, attn_mask=causal_mask(L))
print(block)
for name, p in block.named_parameters():
    print(f"  {name:26s} {str(p.shape):10s}")
counted = block.num_parameters()
print(f"parameters: {counted} = 12 d² + 13 d = {12 * d * d + 13 * d}")
assert counted == 12 * d * d + 13 * d

# %% [markdown]
# Where the count comes from: the packed q, k, v projection has $3d^2 + 3d$ parameters, the
# attention's output projection $d^2 + d$, the MLP $4d^2 + 4d$ and $4d^2 + d$, and the two
# LayerNorms $2d$ each: $12d^2 + 13d$ in total. For ViT-B/32's image tower ($d = 768$,
# 12 blocks) that is 85 million of its 88 million parameters.
#
# Finally, the block's hand-written backward passes (layer norm, linear, softmax, ...) must
# fit together. A directional gradcheck in float64 checks the gradient of the input and
# of all 12 parameter tensors at once, with three forward passes:

# %%
block.to(np.float64)
sequence = Tensor(rng.standard_normal((2, L, d)), requires_grad=True)
print("output", block(sequence).shape)
print(gradcheck(block, [sequence], params=block.named_parameters(), mode="directional"))

# %% [markdown]
# **Where next.** `04_towers.ipynb` puts these blocks into the two image towers and the text
# tower.

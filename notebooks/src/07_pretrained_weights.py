# %% [markdown]
# # 7. Loading weights, without PyTorch
#
# OpenAI released nine trained CLIP models as PyTorch files. miniclip reads them with
# nothing but the Python standard library and NumPy, so a model trained on 400 million
# image–caption pairs runs in the code you have been reading. This notebook shows how,
# using small test checkpoints that ship with the repository instead of real downloads:
#
# 1. save a model as `.safetensors`, read its header and its tensors yourself (exercises 7a
#    and 7b), and load it back with `miniclip.load`: identical outputs;
# 2. open a TorchScript `.pt` file (the format of OpenAI's releases), see what is inside, and
#    check the loaded model against the outputs of OpenAI's own code;
# 3. a Hugging Face checkpoint folder;
# 4. what `load("ViT-B/32")` does to download and verify a real model (not run here);
# 5. why loading a `.pt` file with `pickle` would be dangerous, and how miniclip avoids it.
#
# The code: `miniclip/weights/` (file formats, Hugging Face names, downloads),
# `miniclip/models/clip.py` (`build_model`, which infers the architecture from the weights)
# and `miniclip/models/pretrained.py` (`load`).

# %%
import hashlib
import json
import os
import pathlib
import pickle
import pickletools
import struct
import tempfile
import zipfile
from collections import Counter

import numpy as np

import miniclip
from miniclip import CLIP, no_grad
from miniclip.grading import exercise
from miniclip.weights import hub, save_safetensors
from miniclip.models import infer_config
from miniclip.system.threads import limit_blas_threads

miniclip.manual_seed(0)
rng = np.random.default_rng(0)
here = pathlib.Path.cwd().resolve()                  # notebooks/ or notebooks/student/
FIXTURES = next(str(folder / "tests" / "fixtures") for folder in (here, *here.parents)
                if (folder / "tests" / "fixtures").is_dir())
workdir = tempfile.TemporaryDirectory()              # scratch space, deleted at the end

print(limit_blas_threads())  # one BLAS thread per free core: fast on a busy machine too

# %% [markdown]
# ## 1. Save, load, compare
#
# A state dict maps parameter names to arrays: `Module.state_dict()` gives one, with
# OpenAI's names (`visual.conv1.weight`, `transformer.resblocks.0.attn.in_proj_weight`,
# `logit_scale`, ...). `save_safetensors` writes it in the **safetensors** format:
#
# | bytes | what |
# |---|---|
# | 8 | $n$, the header's length, an unsigned little-endian integer |
# | $n$ | the header: JSON mapping each tensor's name to its `dtype` (`"F32"`, `"F16"`, `"I64"`, ...), `shape` and `data_offsets` `[begin, end]`, plus an optional `"__metadata__"` entry of strings |
# | the rest | every tensor's raw little-endian bytes, one after another; `begin` and `end` count from the start of this part, byte $8 + n$ of the file |
#
# No code is stored, so reading it can run none. You will read one with the standard
# library and NumPy alone (exercises 7a and 7b), then let `miniclip.load` do it.

# %%
model = CLIP(embed_dim=16, image_resolution=16, vision_layers=1, vision_width=64,
             vision_patch_size=8, context_length=8, vocab_size=60, transformer_width=64,
             transformer_heads=1, transformer_layers=1).eval()
path = os.path.join(workdir.name, "micro.safetensors")
save_safetensors(path, model.state_dict())

# %% [markdown]
# ### Exercise 7a: the header
#
# Write `read_header(path)`: read the 8-byte length ($n$) with `struct.unpack("<Q", ...)`,
# then the $n$ bytes of JSON, and return the header **without** its `"__metadata__"` entry
# (if there is one), together with the position in the file where the tensors' bytes begin.

# %%
def read_header(path):
    """``(header, data_start)``: the tensor entries of a .safetensors file's JSON header
    (name -> {"dtype", "shape", "data_offsets"}) and the file offset of the tensors' bytes."""
    # BEGIN SOLUTION 7a: the safetensors header
    with open(path, "rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
    header.pop("__metadata__", None)
    return header, 8 + header_size
    # END SOLUTION


# %% [markdown]
# The check reads the model's file and one written with metadata, and compares with what
# the writer put in (the length is read again here with `int.from_bytes`):

# %%
with exercise("7a: the safetensors header") as check:
    with_metadata = os.path.join(workdir.name, "with_metadata.safetensors")
    save_safetensors(with_metadata, {"w": np.zeros((2, 3), np.float16)}, metadata={"note": "hi"})
    for file_path, state in ((path, model.state_dict()), (with_metadata, None)):
        header, data_start = read_header(file_path)
        with open(file_path, "rb") as file:
            check.equal(f"{os.path.basename(file_path)}: data_start", data_start,
                        8 + int.from_bytes(file.read(8), "little"))
        expected = state if state is not None else {"w": np.zeros((2, 3), np.float16)}
        check.equal(f"{os.path.basename(file_path)}: names", sorted(header), sorted(expected))
        check.equal(f"{os.path.basename(file_path)}: shapes",
                    {name: entry["shape"] for name, entry in header.items()},
                    {name: list(np.shape(value)) for name, value in expected.items()})

header, data_start = read_header(path)
print(f"{os.path.getsize(path):,} bytes, tensors from byte {data_start}, {len(header)} entries; "
      "the first three:")
for name in list(header)[:3]:
    print(f"  {name}: {header[name]}")

# %% [markdown]
# ### Exercise 7b: one tensor from its bytes
#
# Write `read_tensor(path, entry, data_start)` for one header entry: seek to
# `data_start + begin`, read `end - begin` bytes, and make them an array of the entry's
# dtype and shape with `np.frombuffer` (`SAFETENSORS_DTYPES` below maps the names to NumPy
# dtypes; `<` is little-endian). `np.frombuffer` gives a read-only view of the bytes;
# return a copy, so the caller can modify it.

# %%
SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                      "U8": "u1"}


def read_tensor(path, entry, data_start):
    """The array of one header ``entry`` ({"dtype", "shape", "data_offsets"}) of a file."""
    # BEGIN SOLUTION 7b: one tensor from its bytes
    begin, end = entry["data_offsets"]
    with open(path, "rb") as file:
        file.seek(data_start + begin)
        raw = file.read(end - begin)
    dtype = np.dtype(SAFETENSORS_DTYPES[entry["dtype"]])
    return np.frombuffer(raw, dtype=dtype).reshape(entry["shape"]).copy()
    # END SOLUTION


# %%
with exercise("7b: one tensor from its bytes") as check:
    mixed_path = os.path.join(workdir.name, "mixed.safetensors")
    mixed = {"half": np.arange(6, dtype=np.float16).reshape(2, 3) / 7,
             "ids": np.arange(-2, 3, dtype=np.int64), "scalar": np.float32(2.5).reshape(()),
             **{name: value for name, value in list(model.state_dict().items())[:4]}}
    save_safetensors(mixed_path, mixed)
    mixed_header, mixed_start = read_header(mixed_path)
    for name, value in mixed.items():
        got = read_tensor(mixed_path, mixed_header[name], mixed_start)
        check.equal(f"{name}: dtype", str(np.asarray(got).dtype), str(np.asarray(value).dtype))
        check.close(f"{name}: values", got, value, atol=0, rtol=0)
    ours = {name: read_tensor(path, entry, data_start) for name, entry in header.items()}
    reference = miniclip.load_state_dict(path)
    check.true("every tensor of the model's file",
               all(np.array_equal(ours[name], reference[name]) for name in reference),
               "some tensor differs from what miniclip.load_state_dict reads")

# %% [markdown]
# `miniclip.load(path)` reads any supported file (`weights.load_state_dict` recognises the
# format from the first bytes, not from the file name), works out the architecture from the
# names and shapes of the weights (`infer_config`: e.g. the number of transformer blocks is the
# number of distinct `transformer.resblocks.{i}` prefixes), builds the model, loads the
# weights, and returns it in eval mode with the matching image preprocessing.

# %%
loaded, preprocess = miniclip.load(path)
print("inferred:", infer_config(loaded.state_dict()))
print("preprocess:", preprocess)

images = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
tokens = rng.integers(0, 59, size=(3, 8))
tokens[:, -1] = 59                                   # the end token: the largest id
with no_grad():
    original = model(images, tokens)[0].numpy()
    reloaded = loaded(images, tokens)[0].numpy()
print("logits identical:", np.array_equal(original, reloaded))
assert np.array_equal(original, reloaded), "a saved and reloaded model must give the same logits"

# %% [markdown]
# ## 2. OpenAI's format: a TorchScript archive
#
# OpenAI's released `.pt` files are TorchScript archives: zip files holding a pickle of the
# module tree (`data.pkl`), whose tensors point at raw byte buffers stored next to it
# (`data/0`, `data/1`, ...), plus the TorchScript code. The repository ships a micro model in
# exactly that format, made with OpenAI's code and `torch.jit` by
# `scripts/make_checkpoint_fixtures.py`.

# %%
jit_path = os.path.join(FIXTURES, "vit_micro_jit.pt")
with zipfile.ZipFile(jit_path) as archive:
    names = archive.namelist()
print(f"{len(names)} files in the archive:")
top_level = Counter(name.split("/")[1] + ("/..." if name.count("/") > 1 else "") for name in names)
for entry, number in top_level.items():
    print(f"  {entry:16s} {number} file(s)")

state = miniclip.load_state_dict(jit_path)
print(f"\n{len(state)} entries, e.g.", {k: (v.shape, str(v.dtype)) for k, v in list(state.items())[:3]})
print("scalars the TorchScript model kept:",
      {k: int(state[k]) for k in ("input_resolution", "context_length", "vocab_size")})

# %% [markdown]
# The released files store most weights in float16 (the loader converts them to float32)
# and carry three scalar entries that are not weights; `build_model` drops them.
#
# Does the loaded model compute what OpenAI's code computes? When the fixtures were made,
# the reference implementation's outputs for a few inputs were stored in
# `tests/fixtures/reference_models.npz`. We compare against them, for the ViT micro model
# and a ResNet one.

# %%
reference = np.load(os.path.join(FIXTURES, "reference_models.npz"))
for stem in ("vit_micro_jit", "rn_micro_jit"):
    model_file = os.path.join(FIXTURES, stem + ".pt")
    with open(model_file, "rb") as file:
        assert hashlib.sha256(file.read()).hexdigest() == str(reference[f"jit/{stem}/sha256"])
    clip_model, _ = miniclip.load(model_file)
    ref_images = reference[f"jit/{stem}/images"].astype(np.float32)
    ref_tokens = reference[f"jit/{stem}/tokens"]
    with no_grad():
        ours = {"image_features": clip_model.encode_image(ref_images).numpy(),
                "text_features": clip_model.encode_text(ref_tokens).numpy(),
                "logits_per_image": clip_model(ref_images, ref_tokens)[0].numpy()}
    tower = type(clip_model.visual).__name__
    for name, value in ours.items():
        expected = reference[f"jit/{stem}/{name}"]
        print(f"{tower:17s} {name:17s} max |ours - OpenAI's| = {np.abs(value - expected).max():.1e}")

# %% [markdown]
# Differences of $10^{-7}$ and below are float32 rounding: the same arithmetic done in a
# different order.
#
# ## 3. Hugging Face checkpoints
#
# The `transformers` library stores CLIP as a folder with `config.json` and
# `model.safetensors` (or `pytorch_model.bin`), under its own parameter names
# (`vision_model.encoder.layers.0.self_attn.q_proj.weight`, ...). `miniclip.load` recognises the
# folder and renames the weights to OpenAI's (`weights.convert_hf_state_dict`, which
# also packs the separate q, k, v projections into one `in_proj_weight`). The fixture
# folder holds the same weights as `vit_micro_jit.pt`, so the features agree.

# %%
hf_model, _ = miniclip.load(os.path.join(FIXTURES, "vit_micro_hf"))
jit_model, _ = miniclip.load(jit_path)
ref_images = reference["jit/vit_micro_jit/images"].astype(np.float32)
with no_grad():
    difference = np.abs(hf_model.encode_image(ref_images).numpy()
                        - jit_model.encode_image(ref_images).numpy()).max()
print(sorted(os.listdir(os.path.join(FIXTURES, "vit_micro_hf"))), "| max difference:", difference)

# %% [markdown]
# ## 4. Real weights: `load("ViT-B/32")`
#
# Given a model name instead of a path, `miniclip.load` first downloads the file
# (`miniclip/weights/hub.py`, `download`). **Not run here** (the course environment has no network,
# and ViT-B/32 is about 340 MB); the recipe is:
#
# ```python
# import miniclip
# model, preprocess = miniclip.load("ViT-B/32")          # or device="cuda"
# ```
#
# What happens:
#
# 1. The file goes to a cache folder: `download_root=` if given, else the environment
#    variable `MINICLIP_CACHE`, else `~/.cache/miniclip`. A file already there is reused.
# 2. Each released file is published at an address that contains its **SHA-256 hash**
#    (below). The download is hashed as it streams in, and only a file whose hash matches
#    gets its final name: it is written to a temporary file and renamed, so an interrupted
#    or corrupted download never looks like a finished one. A cached file with a wrong hash
#    is reported and downloaded again.
# 3. The file is read as in section 2, without PyTorch.

# %%
print(miniclip.available_models())
url = hub.model_url("ViT-B/32")
print(url)
print("the hash in the address:", url.split("/")[-2])

# %% [markdown]
# To classify your own picture with the real model, see `tutorials/loading-openai-weights.md`:
# `preprocess(PIL image)` gives the `[3, 224, 224]` input, OpenAI's tokenizer
# (`miniclip.load_tokenizer()`) the token ids, and `06_train_tiny_clip.ipynb` shows
# the zero-shot classifier.
#
# ## 5. Why not just `pickle.load`?
#
# `torch.load` and the TorchScript loader unpickle `data.pkl`, and a pickle is not data: it is
# a little program for a stack machine. Its `GLOBAL` instructions (`STACK_GLOBAL` below)
# import *any* function by name, and `REDUCE` calls it. That is how pickles rebuild tensors
# (`torch._utils._rebuild_tensor_v2(...)`), and it is equally how a malicious file calls
# `os.system("...")`. Here is a harmless demonstration whose payload is just `print`:

# %%
class Payload:
    """An object whose unpickling calls print (it could as well call os.system)."""

    def __reduce__(self):
        return (print, ("this ran while unpickling!",))


evil_bytes = pickle.dumps({"visual.conv1.weight": Payload()})
pickletools.dis(evil_bytes)
print("--- plain pickle.loads:")
pickle.loads(evil_bytes)

# %% [markdown]
# The call ran as a side effect of *loading*. miniclip never lets a pickle do that.
# `weights.formats._RestrictedUnpickler` overrides `find_class`, the method through which every
# `GLOBAL` is resolved: only the handful of names that describe tensors and containers are
# allowed (`_ALLOWED_GLOBALS`), and even those are replaced by miniclip's own small
# functions (e.g. `_rebuild_tensor`, which builds a NumPy array after checking that the
# tensor lies inside its storage). TorchScript's module classes become inert attribute
# holders. Anything else is refused with an error that names it, before it can run. The
# same payload packed like a PyTorch file:

# %%
evil_path = os.path.join(workdir.name, "evil.pt")
with zipfile.ZipFile(evil_path, "w") as archive:
    archive.writestr("archive/data.pkl", evil_bytes)
try:
    miniclip.load_state_dict(evil_path)
except pickle.UnpicklingError as error:
    print("UnpicklingError:", error)

# %% [markdown]
# Nothing was printed by the payload this time. The same protection covers every `.pt` and
# `.bin` file miniclip reads; `.npz` (read with `allow_pickle=False`) and `.safetensors` files
# contain no code at all.

# %%
workdir.cleanup()

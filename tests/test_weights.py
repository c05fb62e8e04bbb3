"""Tests for miniclip.weights: reading and writing state dicts without PyTorch.

The PyTorch and Hugging Face files in tests/fixtures/ were made by
scripts/make_checkpoint_fixtures.py, together with the state dict PyTorch
itself reads from each (the .npz files); this suite runs without PyTorch.
"""

import collections
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from crafted_checkpoints import (
    Call,
    Global,
    Storage,
    rebuild_tensor,
    torch_zip,
    write_safetensors_by_hand,
)

from miniclip.weights import (
    convert_hf_state_dict,
    load_safetensors,
    load_state_dict,
    save_npz,
    save_safetensors,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# Entries of OpenAI's files that a transformers checkpoint doesn't have.
SCALAR_BUFFERS = ("input_resolution", "context_length", "vocab_size")


def expected(name, drop=()):
    """The state dict PyTorch read from a fixture, minus the names in ``drop``."""
    with np.load(os.path.join(FIXTURES, name)) as archive:
        return {key: archive[key] for key in archive.files if key not in drop}


def assert_same_state_dict(actual, wanted):
    """Same names, and per name the same dtype, shape and exact values."""
    assert sorted(actual) == sorted(wanted)
    for name in wanted:
        assert actual[name].dtype == wanted[name].dtype, name
        assert actual[name].shape == wanted[name].shape, name
        np.testing.assert_array_equal(actual[name], wanted[name], err_msg=name)


def mixed_state_dict():
    """Arrays of every kind a checkpoint holds, including 0-d and empty ones."""
    rng = np.random.default_rng(0)
    return {
        "visual.conv1.weight": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
        "half": rng.standard_normal((3, 5)).astype(np.float16),
        "double": rng.standard_normal(4),
        "logit_scale": np.array(4.6052, dtype=np.float32),
        "num_batches_tracked": np.array(12, dtype=np.int64),
        "int32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "uint8": np.arange(5, dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "empty": np.zeros((0, 7), dtype=np.float32),
    }


def float32_version(state_dict):
    """What load_state_dict should make of a state dict: floats become float32."""
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state_dict.items()}


# --------------------------------------------------------------------------
# .npz and .safetensors written by miniclip
# --------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    state_dict = mixed_state_dict()
    path = tmp_path / "weights.npz"
    save_npz(path, state_dict)
    assert_same_state_dict(load_state_dict(path), float32_version(state_dict))


def test_safetensors_round_trip_keeps_dtypes(tmp_path):
    state_dict = mixed_state_dict()
    path = tmp_path / "weights.safetensors"
    save_safetensors(path, state_dict)
    assert_same_state_dict(load_safetensors(path), state_dict)
    assert_same_state_dict(load_state_dict(path), float32_version(state_dict))


def test_safetensors_layout_follows_the_format(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"b": np.array([1.0, 2.0], np.float16), "a": np.array(3, np.int64)}, metadata={"format": "np"})
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    assert header_size % 8 == 0  # padded, so the tensors start aligned
    header = json.loads(data[8 : 8 + header_size])
    assert header == {
        "__metadata__": {"format": "np"},
        "b": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
        "a": {"dtype": "I64", "shape": [], "data_offsets": [4, 12]},
    }
    body = data[8 + header_size :]
    assert body == np.array([1.0, 2.0], "<f2").tobytes() + np.array(3, "<i8").tobytes()


def test_bfloat16_is_widened_to_float32(tmp_path):
    # Values with at most 8 significant bits are exact in bfloat16, whose
    # bits are the top 16 bits of the float32.
    values = np.array([[1.0, -2.5, 0.15625], [2.0**100, -0.0, 2.0**-126]], dtype=np.float32)
    bfloat16_bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    write_safetensors_by_hand(path, {"w": ("BF16", [2, 3], bfloat16_bits.tobytes())})
    loaded = load_safetensors(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values)


def test_truncated_safetensors_is_reported(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"w": np.ones((10, 10), np.float32)})
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="truncated"):
        load_state_dict(path)


@pytest.mark.parametrize("shape", [["2"], [2.0], [-1, -2]], ids=["string", "float", "negative"])
def test_safetensors_entry_with_a_non_integer_shape_is_reported(tmp_path, shape):
    path = tmp_path / "w.safetensors"
    write_safetensors_by_hand(path, {"w": ("F32", shape, np.zeros(2, "<f4").tobytes())})
    with pytest.raises(ValueError, match="malformed safetensors header entry 'w'"):
        load_safetensors(path)


def test_failed_save_keeps_the_existing_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_safetensors(path, {"w": np.ones(3, np.float32)})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="'bad'"):
        save_safetensors(path, {"w": np.zeros(3, np.float32), "bad": np.array(["text"], dtype=object)})
    with pytest.raises(TypeError, match="'bad'"):
        save_npz(tmp_path / "weights.npz", {"bad": np.array([{}], dtype=object)})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["weights.safetensors"]  # no temporary files left


# --------------------------------------------------------------------------
# PyTorch files (made with PyTorch, read here without it)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, wanted",
    [
        ("vit_micro_jit.pt", "vit_micro.npz"),  # TorchScript, like OpenAI's released files
        ("rn_micro_jit.pt", "rn_micro.npz"),
        ("rn_micro_state_dict.pt", "rn_micro.npz"),  # torch.save(model.state_dict())
        ("wrapped_state_dict.pt", "wrapped_state_dict.npz"),  # {"state_dict": {"module.x": ...}, ...}
    ],
)
def test_pytorch_files_match_what_pytorch_reads(fixture, wanted):
    assert_same_state_dict(load_state_dict(os.path.join(FIXTURES, fixture)), expected(wanted))


def test_torchscript_scalars_and_counters_keep_their_types():
    state_dict = load_state_dict(os.path.join(FIXTURES, "rn_micro_jit.pt"))
    assert state_dict["logit_scale"].shape == () and state_dict["logit_scale"].dtype == np.float32
    assert state_dict["input_resolution"].dtype == np.int64 and int(state_dict["input_resolution"]) == 64
    assert state_dict["visual.bn1.num_batches_tracked"].dtype == np.int64
    assert state_dict["visual.conv1.weight"].flags.c_contiguous


# --------------------------------------------------------------------------
# Hand-crafted PyTorch pickles: layouts the fixtures don't cover, and attacks
# --------------------------------------------------------------------------


def test_crafted_torch_zip_with_views_is_read(tmp_path):
    storage = Storage("FloatStorage", "0", 12)  # holds 0, 1, ..., 11
    payload = {
        # element [i, j] is storage[2 + 1*i + 4*j]
        "t": rebuild_tensor(storage, 2, (3, 2), (1, 4)),
        # a 0-d parameter viewing storage[5]
        "p": Call(Global("torch._utils", "_rebuild_parameter"), rebuild_tensor(storage, 5, (), ()), True, collections.OrderedDict()),
    }
    torch_zip(tmp_path / "w.pt", payload, {"0": np.arange(12, dtype="<f4").tobytes()})
    state_dict = load_state_dict(tmp_path / "w.pt")
    np.testing.assert_array_equal(state_dict["t"], [[2, 6], [3, 7], [4, 8]])
    assert state_dict["t"].flags.c_contiguous
    assert state_dict["p"].shape == () and state_dict["p"] == 5.0


def test_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    payload = {"t": rebuild_tensor(Storage("FloatStorage", "0", 4), 0, (2, 3), (3, 1))}
    torch_zip(tmp_path / "w.pt", payload, {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(pickle.UnpicklingError, match="storage of 4 elements"):
        load_state_dict(tmp_path / "w.pt")


def test_tensor_with_a_non_integer_layout_is_refused(tmp_path):
    payload = {"t": rebuild_tensor(Storage("FloatStorage", "0", 4), 0, ("4",), (1,))}
    torch_zip(tmp_path / "w.pt", payload, {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(pickle.UnpicklingError, match="invalid tensor layout"):
        load_state_dict(tmp_path / "w.pt")


@pytest.mark.parametrize(
    "make_payload, refused",
    [
        (lambda marker: Call(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),  # posix.system
        (lambda marker: Call(eval, f"open({str(marker)!r}, 'w').close()"), "builtins.eval"),
    ],
)
def test_malicious_pickle_is_refused_without_running(tmp_path, make_payload, refused):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        # Protocol 2, as PyTorch writes; fix_imports=False keeps the name "builtins".
        archive.writestr("evil/data.pkl", pickle.dumps({"weight": make_payload(marker)}, protocol=2, fix_imports=False))
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load global {refused}"):
        load_state_dict(path)
    assert not marker.exists()


def test_truncated_zip_is_reported(tmp_path):
    data = open(os.path.join(FIXTURES, "wrapped_state_dict.pt"), "rb").read()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated zip"):
        load_state_dict(path)


# --------------------------------------------------------------------------
# Hugging Face transformers checkpoints
# --------------------------------------------------------------------------


def test_hf_folder_matches_the_openai_weights():
    # Same weights as vit_micro_jit.pt (the fixture script checked that both
    # models compute the same features).
    wanted = expected("vit_micro.npz", drop=SCALAR_BUFFERS)
    assert_same_state_dict(load_state_dict(os.path.join(FIXTURES, "vit_micro_hf")), wanted)
    # The weights file alone is recognised by its names.
    assert_same_state_dict(load_state_dict(os.path.join(FIXTURES, "vit_micro_hf", "model.safetensors")), wanted)


def tiny_hf_state_dict():
    """A hand-made HF-style dict (width 2, one block per tower) with distinct values."""
    counter = iter(range(10_000))

    def array(*shape):
        return np.array([next(counter) for _ in range(int(np.prod(shape)))], np.float32).reshape(shape)

    state_dict = {"logit_scale": array(), "text_model.embeddings.position_ids": np.arange(3)[None]}
    for tower in ["text_model", "vision_model"]:
        block = f"{tower}.encoder.layers.0"
        for part in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"]:
            state_dict[f"{block}.{part}.weight"], state_dict[f"{block}.{part}.bias"] = array(2, 2), array(2)
        for part in ["layer_norm1", "layer_norm2"]:
            state_dict[f"{block}.{part}.weight"], state_dict[f"{block}.{part}.bias"] = array(2), array(2)
        state_dict[f"{block}.mlp.fc1.weight"], state_dict[f"{block}.mlp.fc1.bias"] = array(8, 2), array(8)
        state_dict[f"{block}.mlp.fc2.weight"], state_dict[f"{block}.mlp.fc2.bias"] = array(2, 8), array(2)
    state_dict.update(
        {
            "text_model.embeddings.token_embedding.weight": array(5, 2),
            "text_model.embeddings.position_embedding.weight": array(3, 2),
            "text_model.final_layer_norm.weight": array(2),
            "text_model.final_layer_norm.bias": array(2),
            "text_projection.weight": array(4, 2),
            "vision_model.embeddings.class_embedding": array(2),
            "vision_model.embeddings.patch_embedding.weight": array(2, 3, 1, 1),
            "vision_model.embeddings.position_embedding.weight": array(5, 2),
            "vision_model.pre_layrnorm.weight": array(2),
            "vision_model.pre_layrnorm.bias": array(2),
            "vision_model.post_layernorm.weight": array(2),
            "vision_model.post_layernorm.bias": array(2),
            "visual_projection.weight": array(4, 2),
        }
    )
    return state_dict


def test_hf_names_are_mapped_to_openai_names():
    hf = tiny_hf_state_dict()
    openai = convert_hf_state_dict(hf)
    for hf_tower, openai_block in [("text_model", "transformer.resblocks.0"), ("vision_model", "visual.transformer.resblocks.0")]:
        hf_block = f"{hf_tower}.encoder.layers.0"
        for kind in ["weight", "bias"]:
            # Rows of the packed projection: q, then k, then v.
            packed = np.concatenate([hf[f"{hf_block}.self_attn.{letter}_proj.{kind}"] for letter in "qkv"])
            np.testing.assert_array_equal(openai[f"{openai_block}.attn.in_proj_{kind}"], packed)
            for hf_part, openai_part in [
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ]:
                assert openai[f"{openai_block}.{openai_part}.{kind}"] is hf[f"{hf_block}.{hf_part}.{kind}"]
    np.testing.assert_array_equal(openai["text_projection"], hf["text_projection.weight"].T)
    np.testing.assert_array_equal(openai["visual.proj"], hf["visual_projection.weight"].T)
    assert openai["visual.conv1.weight"] is hf["vision_model.embeddings.patch_embedding.weight"]
    assert openai["visual.ln_pre.weight"] is hf["vision_model.pre_layrnorm.weight"]
    assert openai["positional_embedding"] is hf["text_model.embeddings.position_embedding.weight"]
    assert openai["visual.positional_embedding"] is hf["vision_model.embeddings.position_embedding.weight"]
    assert openai["logit_scale"] is hf["logit_scale"]
    # Everything except position_ids is kept; three q/k/v pairs become one per tower and kind.
    assert len(openai) == len(hf) - 1 - 2 * 2 * 2
    assert not any("position_ids" in name for name in openai)


def test_hf_conversion_rejects_unknown_or_incomplete_names():
    with pytest.raises(ValueError, match="vision_model.encoder.layers.0.extra.weight"):
        convert_hf_state_dict({**tiny_hf_state_dict(), "vision_model.encoder.layers.0.extra.weight": np.zeros(1)})
    incomplete = tiny_hf_state_dict()
    del incomplete["text_model.encoder.layers.0.self_attn.k_proj.bias"]
    with pytest.raises(ValueError, match="no k projection"):
        convert_hf_state_dict(incomplete)


def copy_hf_folder(tmp_path, config_changes=None, weights=True):
    """A copy of the HF fixture folder, optionally with a changed config or no weights."""
    folder = tmp_path / "hf"
    folder.mkdir()
    source = os.path.join(FIXTURES, "vit_micro_hf")
    with open(os.path.join(source, "config.json")) as file:
        config = json.load(file)
    for tower, changes in (config_changes or {}).items():
        config[tower].update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    if weights:
        (folder / "model.safetensors").write_bytes(open(os.path.join(source, "model.safetensors"), "rb").read())
    return folder


def test_hf_folder_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors and pytorch_model.bin"):
        load_state_dict(copy_hf_folder(tmp_path, weights=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_state_dict(tmp_path / "empty")


def test_hf_models_that_are_not_openai_architecture_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'gelu'"):
        load_state_dict(copy_hf_folder(tmp_path, {"vision_config": {"hidden_act": "gelu"}}))


# --------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------


def test_unknown_format_names_the_file_and_what_was_tried(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.txt.*zip archive.*safetensors"):
        load_state_dict(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_state_dict(tmp_path / "missing.pt")

"""Fine-tuning from weights (``training/finetune.py``): a trainable CLIP from anything
``miniclip.load`` reads, its tokenizer, the fingerprint of its source, and refusals of
options that contradict the weights."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from miniclip import create_model, nn
from miniclip.training.finetune import (
    check_model_options,
    config_name,
    load_trainable,
    training_tokenizer,
    weights_sha256,
)
from miniclip.training.state import save_training_state
from miniclip.weights import save_npz, save_safetensors

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run's checkpoint.npz of a tiny-vit (random weights, seed 0) and the model."""
    nn.manual_seed(0)
    model = create_model("tiny-vit")
    path = tmp_path_factory.mktemp("run") / "checkpoint.npz"
    save_training_state(path, model, step=5)
    return path, model


@pytest.mark.parametrize("fixture", ["vit_micro_jit.pt", "vit_micro_hf", "rn_micro_jit.pt",
                                     "vit_micro.npz"])
def test_weights_of_every_format_become_a_model_in_training_mode(fixture):
    from miniclip import load

    initial = load_trainable(FIXTURES / fixture)
    reference, _ = load(FIXTURES / fixture)
    assert initial.model.training and all(p.requires_grad for p in initial.model.parameters())
    for (name, value), (_, expected) in zip(initial.model.state_dict().items(),
                                            reference.state_dict().items()):
        np.testing.assert_array_equal(value, expected, err_msg=name)
    assert initial.name == "custom" and initial.path == str(FIXTURES / fixture)


def test_a_runs_checkpoint_gives_its_model_and_its_configuration_name(tiny_run):
    path, model = tiny_run
    initial = load_trainable(path)
    assert initial.name == "tiny-vit" and initial.source == str(path)
    np.testing.assert_array_equal(initial.model.visual.proj.numpy(), model.visual.proj.numpy())


def test_safetensors_weights_load_too(tiny_run, tmp_path):
    _, model = tiny_run
    save_safetensors(tmp_path / "m.safetensors", model.state_dict())
    assert load_trainable(tmp_path / "m.safetensors").name == "tiny-vit"


def test_the_sha256_of_a_file_is_that_of_its_bytes(tiny_run):
    path, _ = tiny_run
    assert weights_sha256(path) == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_sha256_of_a_folder_changes_with_any_of_its_files(tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((FIXTURES / "vit_micro_hf" / name).read_bytes())
    assert weights_sha256(tmp_path) == weights_sha256(FIXTURES / "vit_micro_hf")
    (tmp_path / "config.json").write_bytes(b"{}")
    assert weights_sha256(tmp_path) != weights_sha256(FIXTURES / "vit_micro_hf")


def test_config_name_finds_a_named_configuration_or_none():
    assert config_name(create_model("tiny-rn").config) == "tiny-rn"
    assert config_name(create_model("tiny-rn", embed_dim=32).config) is None


def test_a_model_option_that_agrees_with_the_weights_is_accepted(tiny_run):
    initial = load_trainable(tiny_run[0])
    check_model_options(initial, "tiny-vit", "vit")


def test_a_model_option_that_contradicts_the_weights_names_the_setting_and_the_fix(tiny_run):
    initial = load_trainable(tiny_run[0])
    with pytest.raises(ValueError, match=r"--model tiny-rn has image_resolution=64 but the "
                                         r"weights .* have image_resolution=32; leave it out"):
        check_model_options(initial, "tiny-rn")
    with pytest.raises(ValueError, match=r"--tower rn, but the weights .* have a ViT image "
                                         r"tower; leave it out"):
        check_model_options(initial, tower="rn")
    with pytest.raises(ValueError, match=r"--model nonsense: unknown model configuration"):
        check_model_options(initial, "nonsense")


def test_the_tiny_presets_get_miniclips_own_tokenizer(tiny_run):
    from miniclip.tokenizer import tokenize

    tokenizer, description = training_tokenizer(load_trainable(tiny_run[0]))
    assert description == "miniclip's own byte-level BPE (4,096 ids)"
    ids = tokenizer(["a photo of a red circle."])
    np.testing.assert_array_equal(ids, tokenize(["a photo of a red circle."], context_length=32))


def test_an_unknown_vocabulary_asks_for_its_merges_file():
    with pytest.raises(ValueError, match=r"vocabulary has 60 ids, neither .* pass the merges file it "
                                         r"was trained with as --tokenizer FILE"):
        training_tokenizer(load_trainable(FIXTURES / "vit_micro_jit.pt"))


def test_openais_merges_file_does_not_fit_miniclips_vocabulary(tiny_run, tmp_path):
    from miniclip.tokenizer import default_tokenizer

    other = tmp_path / "merges.txt"  # a real merges file, of another vocabulary
    default_tokenizer().save(other)
    lines = other.read_text(encoding="utf-8").splitlines()
    other.write_text("\n".join(lines[:-100]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"--tokenizer .*merges.txt does not fit --init-from "
                                         r".*3,996 ids but the model 4,096.*leave --tokenizer out"):
        training_tokenizer(load_trainable(tiny_run[0]), merges=other)


def test_openais_vocabulary_is_chosen_by_its_size(tmp_path, monkeypatch):
    """A model of 49,408 ids gets OpenAI's tokenizer (here a stand-in of that size)."""
    import miniclip.evaluation.features as features

    nn.manual_seed(0)
    model = create_model("tiny-vit", vocab_size=49408, transformer_width=64,
                         transformer_heads=1, transformer_layers=1)
    save_npz(tmp_path / "openai_vocab.npz", model.state_dict())

    class StandIn:
        vocab_size = 49408

        def __call__(self, texts, context_length, truncate):
            return np.zeros((len(texts), context_length), dtype=np.int64)

    asked = []
    monkeypatch.setattr(features, "load_tokenizer", lambda path=None: asked.append(path)
                        or StandIn())
    tokenizer, description = training_tokenizer(load_trainable(tmp_path / "openai_vocab.npz"))
    assert description == "OpenAI's byte-level BPE (49,408 ids)" and asked == [None]
    assert tokenizer(["x"]).shape == (1, 32)


def test_a_failed_download_of_a_released_model_says_to_pass_a_path(monkeypatch):
    import miniclip.weights.hub as hub

    def offline(name, root=None):
        raise RuntimeError(f"downloading {name} failed: no network")

    monkeypatch.setattr(hub, "download", offline)
    with pytest.raises(ValueError, match=r"--init-from ViT-B/32: downloading ViT-B/32 failed: "
                                         r"no network\. Offline\? .* pass its path"):
        load_trainable("ViT-B/32")

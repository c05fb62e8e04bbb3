"""The CLIP paper's training recipe (miniclip.training.recipe): which parameters decay, and
Adam's settings per image tower and per released model."""
import math

import numpy as np
import pytest

from miniclip import nn
from miniclip.optim import AdamW
from miniclip.training.recipe import paper_hyperparameters, paper_optimizer, paper_param_groups
from miniclip.weights import available_models


class TinyTwoTower(nn.Module):
    """Stands in for CLIP: a linear layer, a LayerNorm, an embedding table, the temperature."""

    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 3)
        self.ln_final = nn.LayerNorm(3)
        self.class_embedding = nn.Parameter(np.zeros(4, np.float32))
        self.logit_scale = nn.Parameter(np.array(math.log(1 / 0.07), np.float32))


def test_weight_decay_skips_gains_biases_and_the_temperature():
    decay, no_decay = paper_param_groups(TinyTwoTower(), weight_decay=0.2)
    assert decay["names"] == ["token_embedding.weight", "proj.weight"]
    assert decay["weight_decay"] == 0.2
    assert sorted(no_decay["names"]) == ["class_embedding", "ln_final.bias", "ln_final.weight",
                                         "logit_scale", "proj.bias"]
    assert no_decay["weight_decay"] == 0.0


def test_frozen_parameters_are_left_out_of_the_groups():
    model = TinyTwoTower()
    model.proj.requires_grad_(False)
    names = [n for group in paper_param_groups(model, 0.2) for n in group["names"]]
    assert "proj.weight" not in names and "proj.bias" not in names


@pytest.mark.parametrize("name, beta2, eps, lr", [
    ("ViT-B/32", 0.98, 1e-6, 5e-4), ("ViT-L/14", 0.98, 1e-6, 4e-4),
    ("RN50", 0.999, 1e-8, 5e-4), ("RN50x64", 0.999, 1e-8, 3.6e-4),
])
def test_paper_hyperparameters_depend_on_the_image_tower(name, beta2, eps, lr):
    settings = paper_hyperparameters(name)
    assert settings["betas"] == (0.9, beta2) and settings["eps"] == eps
    assert settings["lr"] == lr and settings["weight_decay"] == 0.2
    assert settings["warmup_steps"] == 2000 and settings["batch_size"] == 32768
    assert settings["epochs"] == 32


def test_paper_hyperparameters_cover_every_released_model_and_name_the_known_ones():
    assert len(available_models()) == 9
    for name in available_models():
        assert paper_hyperparameters(name)["lr"] > 0
    with pytest.raises(ValueError, match="ViT-B/32"):
        paper_hyperparameters("ViT-H/14")


def test_paper_optimizer_is_adamw_with_the_paper_preset():
    optimizer = paper_optimizer(TinyTwoTower(), lr=5e-4, tower="vit")
    assert isinstance(optimizer, AdamW)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.2, 0.0]
    assert all(g["betas"] == (0.9, 0.98) and g["eps"] == 1e-6 for g in optimizer.param_groups)

"""Locking a tower (``training/locking.py``): no gradients, no graph, no updates, and a
locked ResNet's batch norms in evaluation mode whatever mode the model is in."""
import numpy as np
import pytest

from miniclip import nn
from miniclip.models import build_model, create_model
from miniclip.training.locking import (
    FrozenBatchNorm2d,
    lock_tower,
    locked_towers,
    tower_of,
    tower_parameters,
)
from miniclip.training.loss import clip_loss
from miniclip.training.recipe import paper_optimizer

MICRO = dict(embed_dim=16, vision_width=64, vision_layers=1, transformer_width=64,
             transformer_heads=1, transformer_layers=1, vocab_size=64, context_length=8)


def micro_model(preset="tiny-vit"):
    nn.manual_seed(0)
    overrides = dict(MICRO)
    if preset == "tiny-rn":
        overrides.update(vision_layers=(1, 1, 1, 1), vision_width=8)
    return create_model(preset, **overrides).train()


def batch(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    side = model.input_resolution
    images = rng.standard_normal((n, 3, side, side)).astype(np.float32)     # [N, 3, R, R]
    tokens = np.zeros((n, 8), dtype=np.int64)                               # [N, C]
    tokens[:, 0] = 1
    tokens[:, 1:5] = rng.integers(2, 60, size=(n, 4))
    tokens[:, 5] = model.vocab_size - 1  # the end-of-text id is the largest
    return images, tokens


def loss_of(model, images, tokens):
    return clip_loss(*model(images, tokens))


def graph_functions(tensor):
    """Every Function the backward pass of ``tensor`` would run."""
    seen, stack = {}, [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn
        stack.extend(t.grad_fn for t in fn.inputs)
    return list(seen.values())


def test_the_towers_split_the_parameters_and_leave_the_temperature_to_neither():
    model = micro_model()
    image = {name for name, _ in tower_parameters(model, "image")}
    text = {name for name, _ in tower_parameters(model, "text")}
    everything = {name for name, _ in model.named_parameters()}
    assert image == {n for n in everything if n.startswith("visual.")}
    assert "token_embedding.weight" in text and "text_projection" in text
    assert image | text == everything - {"logit_scale"} and not image & text
    assert tower_of("logit_scale") is None


@pytest.mark.parametrize("tower", ["image", "text"])
def test_a_locked_tower_gets_no_gradients_and_the_rest_does(tower):
    model = micro_model()
    lock_tower(model, tower)
    loss_of(model, *batch(model)).backward()
    for name, param in model.named_parameters():
        if tower_of(name) == tower:
            assert param.grad is None and not param.requires_grad, name
        else:
            assert param.grad is not None and np.abs(param.grad).sum() > 0, name


def test_a_locked_image_towers_ops_are_not_in_the_graph_so_backward_never_runs_them():
    model = micro_model()
    lock_tower(model, "image")
    images, tokens = batch(model)
    features = model.encode_image(images)
    assert features.grad_fn is None and not features.requires_grad  # the graph is cut here
    loss = loss_of(model, images, tokens)
    visual = {id(p) for _, p in tower_parameters(model, "image")}
    functions = graph_functions(loss)
    assert functions and not [fn for fn in functions
                              if any(id(t) in visual for t in fn.inputs)]
    # the unlocked model's graph holds the image tower's ops as well: many more of them
    unlocked = micro_model()
    assert len(graph_functions(loss_of(unlocked, images, tokens))) > len(functions) + 20


def test_a_locked_text_towers_ops_are_not_in_the_graph():
    model = micro_model()
    lock_tower(model, "text")
    images, tokens = batch(model)
    features = model.encode_text(tokens)
    assert features.grad_fn is None and not features.requires_grad


def test_the_optimiser_holds_only_the_parameters_that_train():
    model = micro_model()
    locked = lock_tower(model, "image")
    optimizer = paper_optimizer(model, 1e-3, model.vision_kind)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for _, p in model.named_parameters() if p.requires_grad}
    assert held == trainable and len(locked) == len(tower_parameters(model, "image"))
    assert not held & {id(p) for _, p in tower_parameters(model, "image")}


@pytest.mark.parametrize("preset", ["tiny-vit", "tiny-rn"])
def test_a_locked_towers_weights_and_buffers_are_bit_identical_after_training(preset):
    model = micro_model(preset)
    lock_tower(model, "image")
    before = {k: v.copy() for k, v in model.state_dict().items()}
    optimizer = paper_optimizer(model, 1e-2, model.vision_kind, weight_decay=0.2)
    for step in range(3):
        loss_of(model, *batch(model, seed=step)).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith("visual."):
            assert after[key].tobytes() == value.tobytes(), key
    assert not np.array_equal(after["text_projection"], before["text_projection"])


def test_a_locked_resnets_batch_norms_stay_in_eval_mode_when_the_model_trains():
    model = micro_model("tiny-rn")
    lock_tower(model, "image")
    model.train()
    norms = [m for m in model.visual.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(type(m) is FrozenBatchNorm2d and not m.training for m in norms)
    assert model.training and model.transformer.training  # the rest is in training mode
    mean, count = norms[0].running_mean.numpy().copy(), int(norms[0].num_batches_tracked.item())
    images, tokens = batch(model)
    model(images, tokens)
    np.testing.assert_array_equal(norms[0].running_mean.numpy(), mean)
    assert int(norms[0].num_batches_tracked.item()) == count
    # and its features are those of evaluation mode: running statistics, not the batch's
    eval_features = model.eval().encode_image(images).numpy()
    train_features = model.train().encode_image(images).numpy()
    np.testing.assert_array_equal(train_features, eval_features)


def test_an_unlocked_resnets_batch_norms_do_follow_the_model_into_training_mode():
    model = micro_model("tiny-rn")
    lock_tower(model, "text")
    norms = [m for m in model.visual.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.training for m in norms)


def test_a_locked_model_keeps_its_state_dict_names_and_loads_back():
    model = micro_model("tiny-rn")
    names = list(model.state_dict())
    lock_tower(model, "image")
    assert list(model.state_dict()) == names
    rebuilt = build_model(model.state_dict())
    assert all(type(m) is nn.BatchNorm2d for m in rebuilt.visual.modules()
               if isinstance(m, nn.BatchNorm2d))


def test_locked_towers_reports_what_is_locked():
    model = micro_model()
    assert locked_towers(model) == []
    lock_tower(model, "text")
    assert locked_towers(model) == ["text"]
    lock_tower(model, "image")
    assert locked_towers(model) == ["image", "text"]
    assert model.logit_scale.requires_grad

"""Data-parallel training on simulated ranks (threads in one process, no MPI needed).

``tests/test_distributed_mpi.py`` runs the same step with ``mpiexec -n 2``.
"""
import copy
import subprocess
import sys

import numpy as np
import pytest

import miniclip
from miniclip import nn
from miniclip.autograd import Tensor
from miniclip.data import ArrayDataset, DataLoader, stack_fields
from miniclip.distributed import (
    all_gather,
    average_gradients,
    broadcast_parameters,
    data_parallel,
    global_loss,
    local_loss,
    shard,
    simulate,
)
from miniclip.distributed.simulate import ThreadWorld
from miniclip.models import create_model
from miniclip.optim import BUCKET_ELEMENTS, SGD, GradScaler, flat_grads
from miniclip.training.loss import clip_loss
from miniclip.training.step import train_step

LOSSES = {"local_loss": local_loss, "global_loss": global_loss}


def halves(array, rank, size=2):
    """Rank ``rank``'s rows of ``array`` split evenly over ``size`` ranks."""
    n = len(array) // size
    return array[rank * n:(rank + 1) * n]


# ------------------------------------------------------------------------- the gather
def test_all_gather_concatenates_every_ranks_rows_in_rank_order():
    x = np.arange(12.0).reshape(6, 2)

    def rank(world):
        return all_gather(world, Tensor(halves(x, world.rank, 3))).numpy()

    for gathered in simulate(3, rank):
        np.testing.assert_array_equal(gathered, x)


def test_all_gather_backward_is_this_ranks_rows_of_the_gradient_summed_over_the_ranks():
    x = np.arange(8.0).reshape(4, 2)
    upstream = [np.full((4, 2), 1.0), np.arange(8.0).reshape(4, 2) * 10]  # dL_s/dy of rank s

    def rank(world):
        mine = Tensor(halves(x, world.rank), requires_grad=True)
        (all_gather(world, mine) * Tensor(upstream[world.rank])).sum().backward()
        return mine.grad

    grad_0, grad_1 = simulate(2, rank)
    total = upstream[0] + upstream[1]
    np.testing.assert_array_equal(grad_0, total[:2])   # [[1, 11], [21, 31]]
    np.testing.assert_array_equal(grad_1, total[2:])   # [[41, 51], [61, 71]]


def central_differences(f, arrays, eps=1e-6):
    """Numerical gradients of the scalar ``f(*arrays)`` with respect to every array."""
    grads = []
    for array in arrays:
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            up = f(*arrays)
            array[index] = saved - eps
            down = f(*arrays)
            array[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads.append(grad)
    return grads


@pytest.mark.parametrize("form", LOSSES)
def test_gathered_loss_backward_matches_finite_differences_of_the_single_process_loss(form):
    """Σ_r (loss of rank r) = W · L for both forms; each rank's features must get their rows
    of ∇(W · L), and the ranks' mean temperature gradient must be dL/dt (float64)."""
    rng = np.random.default_rng(0)
    images, texts = rng.standard_normal((2, 6, 3))              # [N = 6, E = 3] each
    t = np.array(np.log(1 / 0.07))

    def single_process(images, texts, t):
        unit = [Tensor(a / np.linalg.norm(a, axis=1, keepdims=True)) for a in (images, texts)]
        return float(clip_loss(Tensor(t).exp() * unit[0] @ unit[1].T).data)

    def rank(world):
        inputs = [Tensor(halves(images, world.rank), requires_grad=True),
                  Tensor(halves(texts, world.rank), requires_grad=True),
                  Tensor(t.copy(), requires_grad=True)]
        unit = [miniclip.functional.normalize(x, dim=1) for x in inputs[:2]]
        LOSSES[form](world, *unit, inputs[2]).backward()
        return [x.grad for x in inputs]

    (image_0, text_0, t_0), (image_1, text_1, t_1) = simulate(2, rank)
    d_images, d_texts, d_t = central_differences(single_process, [images, texts, t])
    np.testing.assert_allclose(np.concatenate([image_0, image_1]), 2 * d_images, atol=1e-8)
    np.testing.assert_allclose(np.concatenate([text_0, text_1]), 2 * d_texts, atol=1e-8)
    np.testing.assert_allclose((t_0 + t_1) / 2, d_t, atol=1e-8)


def test_the_mean_of_the_local_losses_and_every_global_loss_equal_the_single_process_loss():
    rng = np.random.default_rng(1)
    images, texts = rng.standard_normal((2, 8, 4))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    t = Tensor(np.array(2.0))
    expected = float(clip_loss(t.exp() * Tensor(images) @ Tensor(texts).T).data)

    def rank(world):
        mine = [Tensor(halves(a, world.rank, 4)) for a in (images, texts)]
        return float(local_loss(world, *mine, t).data), float(global_loss(world, *mine, t).data)

    results = simulate(4, rank)
    assert np.mean([local for local, _ in results]) == pytest.approx(expected, rel=1e-12)
    assert [total for _, total in results] == pytest.approx([expected] * 4, rel=1e-12)


def test_a_rank_that_raises_stops_the_simulation_instead_of_hanging():
    def rank(world):
        if world.rank == 1:
            raise KeyError("planted on rank 1")
        return world.all_reduce_(np.zeros(3))  # rank 0 waits here for rank 1

    with pytest.raises(KeyError, match="planted on rank 1"):
        simulate(2, rank)


# ---------------------------------------------------------------- data parallelism
def tiny_batch(n):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)        # [n, 3, 32, 32]
    colours = ["red", "blue", "green", "pink", "gray", "black", "white", "teal"]
    tokens = miniclip.tokenize([f"a photo of a {c} square" for c in colours[:n]],
                               context_length=32)                           # [n, 32]
    return images, tokens


@pytest.fixture(scope="module")
def tiny_vit():
    nn.manual_seed(0)
    return create_model("tiny-vit")


def single_process_gradients(model, images, tokens):
    model = copy.deepcopy(model)
    clip_loss(*model(images, tokens)).backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("form", LOSSES)
def test_averaged_gradients_of_two_ranks_equal_the_single_process_gradient_of_every_parameter(
        tiny_vit, form):
    images, tokens = tiny_batch(8)
    expected = single_process_gradients(tiny_vit, images, tokens)
    models = [copy.deepcopy(tiny_vit) for _ in range(2)]

    def rank(world):
        model = models[world.rank]
        features = [miniclip.functional.normalize(f, dim=-1) for f in
                    (model.encode_image(halves(images, world.rank)),
                     model.encode_text(halves(tokens, world.rank)))]
        LOSSES[form](world, *features, model.logit_scale).backward()
        average_gradients(world, model.parameters())
        return {name: p.grad for name, p in model.named_parameters()}

    for grads in simulate(2, rank):
        assert grads.keys() == expected.keys()
        for name, grad in grads.items():
            scale = np.abs(expected[name]).max()
            np.testing.assert_allclose(grad, expected[name], rtol=0, atol=1e-5 * scale,
                                       err_msg=name)


@pytest.mark.parametrize("form", LOSSES)
def test_one_step_on_two_ranks_of_4_gives_the_weights_of_one_step_on_a_batch_of_8(tiny_vit, form):
    """With SGD, whose update lr · g is linear in the gradient, the weights agree to float32
    round-off. (AdamW's first update, lr · g / (|g| + ε), turns the round-off of a gradient
    near zero into up to 1e-2 · lr: the test of the gradients above is the sharper check.)"""
    images, tokens = tiny_batch(8)
    off = GradScaler(enabled=False)
    reference = copy.deepcopy(tiny_vit)
    single_loss = train_step(reference, SGD(reference.parameters(), lr=0.1), off, images,
                             tokens, 1, "cpu", 1.0)
    models = [copy.deepcopy(tiny_vit) for _ in range(2)]

    def rank(world):
        model = models[world.rank]
        loss = train_step(model, SGD(model.parameters(), lr=0.1), off,
                          halves(images, world.rank), halves(tokens, world.rank), 1, "cpu", 1.0,
                          **data_parallel(world, LOSSES[form]))
        return world.mean(loss)

    assert simulate(2, rank) == pytest.approx([single_loss] * 2, rel=1e-6)
    for (name, p), p_0, p_1 in zip(reference.named_parameters(), models[0].parameters(),
                                   models[1].parameters()):
        np.testing.assert_array_equal(p_0.data, p_1.data, err_msg=f"{name}: ranks differ")
        np.testing.assert_allclose(p_0.data, p.data, rtol=1e-6, atol=1e-8, err_msg=name)


def test_average_gradients_sends_one_all_reduce_per_bucket_and_averages(monkeypatch):
    sizes = [BUCKET_ELEMENTS - 10, 20, 5]  # the first two cannot share a bucket
    sent = []
    original = ThreadWorld.all_reduce_

    def counting(world, array):
        sent.append((world.rank, array.size))
        return original(world, array)

    monkeypatch.setattr(ThreadWorld, "all_reduce_", counting)

    def rank(world):
        params = [nn.Parameter(np.zeros(n, np.float32)) for n in sizes]
        for p in params:
            p.grad = np.full(p.data.shape, world.rank + 1.0, np.float32)  # 1 and 2
        average_gradients(world, params)
        return [p.grad for p in params]

    for grads in simulate(2, rank):
        assert all((g == 1.5).all() for g in grads)
    assert sorted(sent) == [(0, 25), (0, BUCKET_ELEMENTS - 10), (1, 25), (1, BUCKET_ELEMENTS - 10)]


def test_the_tiny_vit_gradients_travel_in_3_messages(tiny_vit):
    model = copy.deepcopy(tiny_vit)
    for p in model.parameters():
        p.grad = np.zeros_like(p.data)
    assert len(flat_grads(list(model.parameters()))) == 3


def test_broadcast_gives_every_rank_rank_0s_parameters_and_buffers():
    models = []
    for seed in (0, 1):  # two different initialisations; the ResNet has batch-norm buffers
        nn.manual_seed(seed)
        models.append(create_model("tiny-rn"))
    models[1].visual.bn1.running_mean.data[...] = 7.0
    expected = {k: v.copy() for k, v in models[0].state_dict().items()}
    simulate(2, lambda world: broadcast_parameters(world, models[world.rank]))
    for model in models:
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value, expected[key], err_msg=key)


# --------------------------------------------------------------------------- sharding
class FakeWorld:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def test_each_rank_loads_its_disjoint_rows_of_the_single_process_batches_from_any_step():
    dataset = ArrayDataset(np.arange(40))
    loader = DataLoader(dataset, 8, shuffle=True, seed=3, drop_last=True, collate=stack_fields)
    expected = loader.batches(start_step=4)
    streams = [shard(loader, FakeWorld(rank, 4)).batches(start_step=4) for rank in range(4)]
    for _ in range(7):  # crosses an epoch (5 batches of 8)
        parts = [next(stream)[0] for stream in streams]
        assert [len(p) for p in parts] == [2, 2, 2, 2]
        np.testing.assert_array_equal(np.concatenate(parts), next(expected)[0])


def test_shard_refuses_a_global_batch_that_does_not_split_evenly():
    loader = DataLoader(ArrayDataset(np.arange(40)), 10, drop_last=True)
    with pytest.raises(ValueError, match="does not split evenly over 4 processes"):
        shard(loader, FakeWorld(0, 4))


def test_importing_miniclip_and_its_training_program_imports_no_mpi4py():
    code = ("import sys, miniclip, miniclip.train, miniclip.distributed; "
            "print('mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"

"""Optimisers, gradient clipping and the learning-rate schedule.

The reference updates in ``fixtures/adamw_torch_reference.npz`` were recorded from
``torch.optim.AdamW`` / ``torch.optim.SGD`` / ``torch.nn.utils.clip_grad_norm_`` by
``scripts/make_optim_fixture.py``; the tests replay the same gradients here.
"""
import math
import os

import numpy as np
import pytest

from miniclip import backend, nn
from miniclip.optim import BUCKET_ELEMENTS, SGD, AdamW, WarmupCosine, clip_grad_norm_

FIXTURE = np.load(os.path.join(os.path.dirname(__file__), "fixtures",
                               "adamw_torch_reference.npz"))
N_PARAMS, N_STEPS = 3, len(FIXTURE["lrs"])


def make_params(device):
    to_device = backend.get_device(device).to_device
    return [nn.Parameter(to_device(FIXTURE[f"init/{i}"])) for i in range(N_PARAMS)]


def set_grads(params, step, device, factor=1.0):
    to_device = backend.get_device(device).to_device
    for i, p in enumerate(params):
        p.grad = to_device(FIXTURE[f"grad/{step}/{i}"] * np.float32(factor))


def replay(optimizer, params, device, steps=range(N_STEPS)):
    for t in steps:
        for group in optimizer.param_groups:
            group["lr"] = float(FIXTURE["lrs"][t])
        set_grads(params, t, device)
        optimizer.step()


def assert_matches_torch(params, run, step):
    for i, p in enumerate(params):
        np.testing.assert_allclose(p.numpy(), FIXTURE[f"{run}/{step}/{i}"], rtol=1e-6, atol=1e-7,
                                   err_msg=f"{run}: parameter {i} after step {step}")


def paper_vit_adamw(params):
    """The fixture's run "adamw_paper_vit": two groups, decay only on the matrices."""
    return AdamW([{"params": [params[0], params[2]], "weight_decay": 0.2},
                  {"params": [params[1]], "weight_decay": 0.0}],
                 lr=1e-2, betas=(0.9, 0.98), eps=1e-6)


# ------------------------------------------------------------------ AdamW against PyTorch
def test_adamw_with_decay_groups_matches_pytorch_after_every_step(device):
    params = make_params(device)
    optimizer = paper_vit_adamw(params)
    for t in range(N_STEPS):
        replay(optimizer, params, device, steps=[t])
        assert_matches_torch(params, "adamw_paper_vit", t)


def test_adamw_moments_match_pytorch(device):
    params = make_params(device)
    optimizer = paper_vit_adamw(params)
    replay(optimizer, params, device)
    for i, p in enumerate(params):
        state = optimizer.state[p]
        assert state["step"] == N_STEPS
        for name in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(backend.to_numpy(state[name]),
                                       FIXTURE[f"adamw_paper_vit/state/{i}/{name}"], rtol=1e-6)
        assert backend.device_of(state["exp_avg"]) is backend.get_device(device)


def test_adamw_with_pytorch_default_settings_matches_pytorch(device):
    params = make_params(device)
    optimizer = AdamW(params, lr=1e-3)
    assert optimizer.defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    replay(optimizer, params, device)
    assert_matches_torch(params, "adamw_defaults", N_STEPS - 1)


def replay_with_gaps(run, device):
    """Replay a fixture run in which only some parameters have a gradient at each step
    (``{run}/has_grad [steps, params]``), checking every parameter after every step."""
    params = make_params(device)
    optimizer = AdamW(params, lr=1e-2, weight_decay=0.1)
    for t, has_grad in enumerate(FIXTURE[f"{run}/has_grad"]):
        optimizer.param_groups[0]["lr"] = float(FIXTURE["lrs"][t])
        set_grads(params, t, device)
        for p, has in zip(params, has_grad):
            p.grad = p.grad if has else None
        optimizer.step()
        assert_matches_torch(params, run, t)
    return params, optimizer


def test_adamw_parameter_that_skips_a_step_keeps_its_own_step_count(device):
    # Parameter 1 sits out step 1: at step 2 its bias correction is that of its 2nd step,
    # not of the others' 3rd, so it cannot share their bucket.
    params, optimizer = replay_with_gaps("adamw_skips_a_step", device)
    counts = [optimizer.state[p]["step"] for p in params]
    assert counts == list(FIXTURE["adamw_skips_a_step/step_counts"]) == [3, 2, 3]


def test_adamw_parameter_whose_first_gradient_comes_late_starts_its_moments_then(device):
    # Parameter 1 has no gradient until step 2, when the others are on their 3rd step.
    params, optimizer = replay_with_gaps("adamw_joins_late", device)
    counts = [optimizer.state[p]["step"] for p in params]
    assert counts == list(FIXTURE["adamw_joins_late/step_counts"]) == [3, 1, 3]


def test_adamw_first_step_moves_each_weight_by_lr_against_its_gradient_sign(device):
    # Bias correction makes m/sqrt(v) = g/|g| on step 1, whatever the gradient's size.
    p = nn.Parameter(backend.get_device(device).to_device(np.zeros(4, np.float32)))
    p.grad = backend.get_device(device).to_device(np.array([3e-4, -2.0, 50.0, -1e-3], np.float32))
    AdamW([p], lr=0.1, eps=1e-12, weight_decay=0.0).step()
    np.testing.assert_allclose(p.numpy(), [-0.1, 0.1, -0.1, 0.1], rtol=1e-5)


def test_adamw_weight_decay_is_decoupled_from_the_gradient(device):
    # With a zero gradient the Adam part of the update is 0: only θ(1 - lr·λ) remains.
    p = nn.Parameter(backend.get_device(device).to_device(np.array([1.0, -2.0], np.float32)))
    p.grad = backend.get_device(device).to_device(np.zeros(2, np.float32))
    AdamW([p], lr=0.1, weight_decay=0.2).step()
    np.testing.assert_allclose(p.numpy(), [0.98, -1.96], rtol=1e-6)


def test_parameters_without_gradient_are_not_stepped(device):
    params = make_params(device)
    optimizer = AdamW(params, lr=1e-2)
    set_grads(params, 0, device)
    params[1].grad = None
    optimizer.step()
    np.testing.assert_array_equal(params[1].numpy(), FIXTURE["init/1"])
    assert params[1] not in optimizer.state


def test_adamw_updates_weights_replaced_between_steps_not_its_old_copy(device):
    # AdamW keeps the weights of a bucket in one flat array between steps; weights put in
    # from outside (a checkpoint load, model.to) must be the ones the next step updates.
    to_device = backend.get_device(device).to_device
    params = [nn.Parameter(to_device(np.ones(n, np.float32))) for n in (3, 2)]
    optimizer = AdamW(params, lr=0.1, weight_decay=0.0)
    for p in params:
        p.grad = to_device(np.ones(p.shape, np.float32))
    optimizer.step()
    params[0].data = to_device(np.full(3, 5.0, np.float32))
    optimizer.step()  # same gradients: each weight moves by lr once more
    np.testing.assert_allclose(backend.to_numpy(params[0].data), 4.9, rtol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(params[1].data), 0.8, rtol=1e-5)


def test_adamw_keeps_flat_arrays_only_for_the_parameters_it_updates_now(device):
    to_device = backend.get_device(device).to_device
    params = [nn.Parameter(to_device(np.ones(3, np.float32))) for _ in range(2)]
    optimizer = AdamW(params, lr=0.1)
    for p in params:
        p.grad = to_device(np.ones(3, np.float32))
    optimizer.step()
    params[1].grad = None  # from now on only the first parameter trains
    optimizer.step()
    held = {id(flat) for flat, _ in optimizer._flats.values()}
    assert len(held) == 3  # its weights and two moments; none of the two-parameter bucket


def test_adamw_moments_loaded_between_steps_are_the_ones_used(device):
    to_device = backend.get_device(device).to_device
    p = nn.Parameter(to_device(np.zeros(2, np.float32)))
    optimizer = AdamW([p], lr=0.1, betas=(0.5, 0.5), eps=0.0, weight_decay=0.0)
    p.grad = to_device(np.ones(2, np.float32))
    optimizer.step()
    state = optimizer.state_dict()
    state["state"][0]["exp_avg"] = -state["state"][0]["exp_avg"]  # now points the other way
    optimizer.load_state_dict(state)
    optimizer.step()
    # m = 0.5 * (-0.5) + 0.5 * 1 = 0.25 (not 0.75), v = 0.5 * 0.5 + 0.5 * 1 = 0.75; both
    # bias corrections divide by 1 - 0.5^2 = 0.75
    expected = -0.1 - 0.1 * (0.25 / 0.75) / math.sqrt(0.75 / 0.75)
    np.testing.assert_allclose(backend.to_numpy(p.data), expected, rtol=1e-5)


def test_zero_grad_clears_every_gradient(device):
    params = make_params(device)
    optimizer = SGD(params, lr=0.1)
    set_grads(params, 0, device)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)
    set_grads(params, 0, device)
    optimizer.zero_grad(set_to_none=False)
    assert all(float(abs(p.grad).max()) == 0.0 for p in params)


def test_a_parameter_in_two_groups_is_rejected():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="more than one parameter group"):
        AdamW([{"params": [p]}, {"params": [p]}])


# ------------------------------------------------------------------ SGD against PyTorch
@pytest.mark.parametrize("run, settings", [
    ("sgd_momentum", dict(momentum=0.9, weight_decay=1e-3)),
    ("sgd_nesterov", dict(momentum=0.9, nesterov=True)),
])
def test_sgd_with_momentum_matches_pytorch(device, run, settings):
    params = make_params(device)
    optimizer = SGD(params, lr=1.0, **settings)
    for t in range(N_STEPS):
        replay(optimizer, params, device, steps=[t])
        assert_matches_torch(params, run, t)


# ------------------------------------------------------------------ gradient clipping
def test_clip_grad_norm_matches_pytorch_when_clipping(device):
    params = make_params(device)
    set_grads(params, 0, device, factor=3.0)
    total = float(clip_grad_norm_(params, max_norm=1.0))
    assert total == pytest.approx(float(FIXTURE["clip/1.0/total"]), rel=1e-6)
    for i, p in enumerate(params):
        np.testing.assert_allclose(backend.to_numpy(p.grad), FIXTURE[f"clip/1.0/{i}"], rtol=1e-6)
    clipped = math.sqrt(sum(float((backend.to_numpy(p.grad) ** 2).sum()) for p in params))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_is_the_norm_over_every_bucket_and_dtype(device):
    # Two float32 gradients of a bucket each, a float16 and a float64 one: four buckets,
    # whose squares sum to 2 · n · 2^-20 + (2² + 4²) + 2² by hand.
    to_device = backend.get_device(device).to_device
    n = BUCKET_ELEMENTS
    grads = [np.full(n, 2.0 ** -10, np.float32), np.full(n, -(2.0 ** -10), np.float32),
             np.array([2.0, 4.0], np.float16), np.array([2.0], np.float64)]
    params = [nn.Parameter(to_device(np.zeros_like(g))) for g in grads]
    for p, g in zip(params, grads):
        p.grad = to_device(g)
    expected = math.sqrt(2 * n * 2.0 ** -20 + 20 + 4)
    total = clip_grad_norm_(params, max_norm=1.0)
    assert float(total) == pytest.approx(expected, rel=1e-6)
    for p, g in zip(params, grads):  # each scaled by max_norm / (norm + 1e-6), in its dtype
        assert p.grad.dtype == g.dtype
        np.testing.assert_allclose(backend.to_numpy(p.grad).astype(np.float64),
                                   g / (expected + 1e-6), rtol=np.finfo(g.dtype).eps)


def test_clip_grad_norm_leaves_small_gradients_unchanged(device):
    params = make_params(device)
    set_grads(params, 0, device, factor=3.0)
    total = float(clip_grad_norm_(params, max_norm=1e3))
    assert total == pytest.approx(float(FIXTURE["clip/1000.0/total"]), rel=1e-6)
    assert total < 1e3
    for i, p in enumerate(params):
        np.testing.assert_allclose(backend.to_numpy(p.grad), FIXTURE[f"clip/1000.0/{i}"],
                                   rtol=1e-6)


def test_clip_grad_norm_of_float64_gradients_is_float64(device):
    to_device = backend.get_device(device).to_device
    p = nn.Parameter(to_device(np.zeros(3)))
    p.grad = to_device(np.array([1.0, 2.0, 2.0 + 1e-12]))
    norm = clip_grad_norm_([p], max_norm=10.0)
    assert norm.dtype == np.float64
    assert float(norm) == pytest.approx(np.sqrt(1 + 4 + (2 + 1e-12) ** 2), rel=1e-15)


def test_clip_grad_norm_with_inf_norm_caps_the_largest_entry(device):
    p = nn.Parameter(backend.get_device(device).to_device(np.zeros(3, np.float32)))
    p.grad = backend.get_device(device).to_device(np.array([1.0, -4.0, 2.0], np.float32))
    assert float(clip_grad_norm_([p], max_norm=2.0, norm_type=math.inf)) == 4.0
    np.testing.assert_allclose(backend.to_numpy(p.grad), [0.5, -2.0, 1.0], rtol=1e-5)


# ------------------------------------------------------------------ saving and resuming
def test_resuming_from_state_dict_continues_exactly(device):
    params = make_params(device)
    optimizer = paper_vit_adamw(params)
    replay(optimizer, params, device, steps=range(2))
    saved_weights = [p.numpy() for p in params]
    saved = optimizer.state_dict()

    to_device = backend.get_device(device).to_device
    fresh = [nn.Parameter(to_device(w)) for w in saved_weights]
    resumed = paper_vit_adamw(fresh)
    resumed.load_state_dict(saved)
    replay(resumed, fresh, device, steps=range(2, N_STEPS))
    assert_matches_torch(fresh, "adamw_paper_vit", N_STEPS - 1)


def test_state_dict_holds_host_arrays_and_parameter_indices(device):
    params = make_params(device)
    optimizer = paper_vit_adamw(params)
    replay(optimizer, params, device, steps=[0])
    state = optimizer.state_dict()
    assert [g["params"] for g in state["param_groups"]] == [[0, 1], [2]]
    assert [g["weight_decay"] for g in state["param_groups"]] == [0.2, 0.0]
    assert isinstance(state["state"][2]["exp_avg"], np.ndarray)   # params[1] is index 2
    assert state["state"][2]["exp_avg"].shape == FIXTURE["init/1"].shape


def test_load_state_dict_rejects_a_different_grouping():
    params = make_params("cpu")
    saved = paper_vit_adamw(params).state_dict()
    with pytest.raises(ValueError, match="2 parameter groups"):
        AdamW(params).load_state_dict(saved)


# ------------------------------------------------------------------ learning-rate schedule
def test_warmup_is_linear_and_reaches_the_peak_at_the_last_warmup_step():
    optimizer = SGD([nn.Parameter(np.zeros(1, np.float32))], lr=0.5)
    schedule = WarmupCosine(optimizer, warmup_steps=4, total_steps=12)
    assert [schedule(s) for s in range(4)] == [0.125, 0.25, 0.375, 0.5]


def test_cosine_decay_falls_from_the_peak_to_the_final_rate():
    optimizer = SGD([nn.Parameter(np.zeros(1, np.float32))], lr=0.5)
    schedule = WarmupCosine(optimizer, warmup_steps=4, total_steps=12, final_lr=0.1)
    assert schedule(4) == pytest.approx(0.5)                       # start of the decay
    assert schedule(8) == pytest.approx(0.3)                       # half way: the mean
    assert schedule(12) == pytest.approx(0.1) and schedule(100) == pytest.approx(0.1)
    rates = [schedule(s) for s in range(4, 13)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)   # written into the group


def test_schedule_scales_each_group_from_its_own_peak_and_survives_a_resume():
    a, b = nn.Parameter(np.zeros(1, np.float32)), nn.Parameter(np.zeros(1, np.float32))
    optimizer = AdamW([{"params": [a]}, {"params": [b], "lr": 1e-2}], lr=1e-3)
    schedule = WarmupCosine(optimizer, warmup_steps=10, total_steps=100)
    schedule(4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-4, 5e-3])
    resumed = AdamW([{"params": [a]}, {"params": [b], "lr": 1e-2}], lr=1e-3)
    resumed.load_state_dict(optimizer.state_dict())
    WarmupCosine(resumed, warmup_steps=10, total_steps=100)(9)
    assert [g["lr"] for g in resumed.param_groups] == pytest.approx([1e-3, 1e-2])

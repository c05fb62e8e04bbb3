"""Record PyTorch optimiser updates as a golden fixture for ``tests/test_optim.py``.

Runs ``torch.optim.AdamW`` (also with parameters that skip steps or join late),
``torch.optim.SGD`` and ``torch.nn.utils.clip_grad_norm_`` on small float32 parameters with
fixed gradients and saves every intermediate parameter
value to ``tests/fixtures/adamw_torch_reference.npz``. The test suite replays the same
gradients through ``miniclip.optim`` and compares, so it needs no torch.

Run from the repository root (needs torch):  python scripts/make_optim_fixture.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                   "adamw_torch_reference.npz")
SHAPES = [(4, 3), (3,), (2, 5)]          # a weight matrix, a bias, another matrix
STEPS = 5
LRS = [1e-2, 2e-2, 3e-2, 2e-2, 1e-2]     # the learning rate changes each step, as a schedule would

# Each run: optimiser class, the settings of each group (which parameters, their options),
# the constructor defaults.
RUNS = {
    "adamw_paper_vit": (torch.optim.AdamW,
                        [dict(params=[0, 2], weight_decay=0.2), dict(params=[1], weight_decay=0.0)],
                        dict(betas=(0.9, 0.98), eps=1e-6)),
    "adamw_defaults": (torch.optim.AdamW, [dict(params=[0, 1, 2])], dict()),
    "sgd_momentum": (torch.optim.SGD, [dict(params=[0, 1, 2])],
                     dict(momentum=0.9, weight_decay=1e-3)),
    "sgd_nesterov": (torch.optim.SGD, [dict(params=[0, 1, 2])],
                     dict(momentum=0.9, nesterov=True, dampening=0.0)),
}

# AdamW runs in which some parameters have no gradient at some steps (PyTorch skips a
# parameter whose ``grad`` is None, so its step count falls behind the others'): for each
# step, the parameters that have a gradient.
SCHEDULES = {
    "adamw_skips_a_step": [(0, 1, 2), (0, 2), (0, 1, 2)],   # parameter 1 sits out step 1
    "adamw_joins_late": [(0, 2), (0, 2), (0, 1, 2)],        # parameter 1's first gradient: step 2
}


def main():
    rng = np.random.default_rng(0)
    arrays = {}
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    # gradients of growing and shrinking size, so bias correction and ε both matter
    grads = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-3, 2)).astype(np.float32)
              for s in SHAPES] for _ in range(STEPS)]
    for i, a in enumerate(init):
        arrays[f"init/{i}"] = a
    for t in range(STEPS):
        for i, g in enumerate(grads[t]):
            arrays[f"grad/{t}/{i}"] = g
    arrays["lrs"] = np.array(LRS)

    for run, (cls, groups, defaults) in RUNS.items():
        params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
        opt = cls([{**g, "params": [params[i] for i in g["params"]]} for g in groups],
                  lr=LRS[0], **defaults)
        for t in range(STEPS):
            for group in opt.param_groups:
                group["lr"] = LRS[t]
            for p, g in zip(params, grads[t]):
                p.grad = torch.from_numpy(g.copy())
            opt.step()
            for i, p in enumerate(params):
                arrays[f"{run}/{t}/{i}"] = p.detach().numpy().copy()
        for i, p in enumerate(params):
            for name, value in opt.state[p].items():
                if value.ndim:  # moments and momentum buffers (not the step counter)
                    arrays[f"{run}/state/{i}/{name}"] = value.numpy().copy()

    for run, schedule in SCHEDULES.items():
        params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
        opt = torch.optim.AdamW(params, lr=LRS[0], weight_decay=0.1)
        for t, stepped in enumerate(schedule):
            opt.param_groups[0]["lr"] = LRS[t]
            for i, (p, g) in enumerate(zip(params, grads[t])):
                p.grad = torch.from_numpy(g.copy()) if i in stepped else None
            opt.step()
            for i, p in enumerate(params):
                arrays[f"{run}/{t}/{i}"] = p.detach().numpy().copy()
        arrays[f"{run}/has_grad"] = np.array([[i in stepped for i in range(len(params))]
                                              for stepped in schedule])   # [steps, params]
        arrays[f"{run}/step_counts"] = np.array([int(opt.state[p]["step"]) for p in params])

    for max_norm in (1.0, 1e3):  # one that clips, one that does not
        params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
        for p, g in zip(params, grads[0]):
            p.grad = torch.from_numpy(g.copy() * 3)
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        arrays[f"clip/{max_norm}/total"] = np.array(total.item(), np.float32)
        for i, p in enumerate(params):
            arrays[f"clip/{max_norm}/{i}"] = p.grad.numpy().copy()

    np.savez(OUT, **arrays)
    print(f"wrote {len(arrays)} arrays to {os.path.normpath(OUT)} (torch {torch.__version__})")


if __name__ == "__main__":
    main()

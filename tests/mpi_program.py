"""Programs that ``tests/test_distributed_mpi.py`` runs under ``mpiexec -n 2``.

``python tests/mpi_program.py step cpu|cuda``: one data-parallel step of the tiny ViT on
this rank's 4 of 8 pairs, checked on every rank against one single-process step on all 8
(computed by the rank itself), and the ranks' weights against each other. On ``cuda`` the
fake CuPy of the tests is installed first: it has no NCCL, so the collectives take the
host-staged path. It also checks that the world counts both ranks as on this machine
(``local_size``, which divides the BLAS threads). Prints ``rank R: step ok`` and exits 0; a failed check aborts the job.

``python tests/mpi_program.py amp-step TOLERANCE``: the same with mixed precision (``--amp``),
on the CPU, the ranks' updates checked against the single process's within ``TOLERANCE``.

``python tests/mpi_program.py raise|kill``: rank 1 raises (inside ``abort_on_error``) or is
killed by SIGKILL, while rank 0 waits in an all-reduce for it.
"""
import copy
import os
import signal
import sys

import numpy as np


def step(world, device):
    import miniclip
    from miniclip import nn
    from miniclip.distributed import data_parallel
    from miniclip.models import create_model
    from miniclip.optim import SGD, GradScaler
    from miniclip.training.step import train_step

    assert device != "cuda" or world.nccl is None, "the fake CuPy has no NCCL"
    assert world.local_size == 2, "both ranks run on this machine and share its cores"
    nn.manual_seed(0)
    model = create_model("tiny-vit").to(device)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)         # [8, 3, 32, 32]
    tokens = miniclip.tokenize([f"a {c} circle" for c in "abcdefgh"], context_length=32)
    off = GradScaler(enabled=False)
    reference = copy.deepcopy(model)
    expected = train_step(reference, SGD(reference.parameters(), lr=0.1), off, images, tokens,
                          1, device, 1.0)
    rows = slice(4 * world.rank, 4 * world.rank + 4)
    loss = world.mean(train_step(model, SGD(model.parameters(), lr=0.1), off, images[rows],
                                 tokens[rows], 1, device, 1.0, **data_parallel(world)))
    assert abs(loss - expected) <= 1e-6 * expected, (loss, expected)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert p.device.name == device, (name, p.device)
        mine = p.numpy()
        both = world.all_gather(p.data.reshape(1, -1))                       # [2, size]
        assert (miniclip.backend.to_numpy(both) == mine.reshape(-1)).all(), f"{name}: ranks differ"
        np.testing.assert_allclose(mine, q.numpy(), rtol=1e-6, atol=1e-8, err_msg=name)
    print(f"rank {world.rank}: step ok", flush=True)


#: The loss scale of the mixed-precision step: low enough that no scaled float16 gradient of
#: this step overflows (2¹⁶, the default, overflows and skips the first steps by design).
AMP_SCALE = 2.0 ** 8


def amp_step(world, tolerance):
    """One mixed-precision data-parallel step against one process's on the double batch:
    each parameter's update may differ by ``tolerance`` times its largest entry
    (``tests/test_distributed_mpi.py`` says why)."""
    import miniclip
    from miniclip import nn
    from miniclip.distributed import data_parallel
    from miniclip.models import create_model
    from miniclip.optim import SGD, GradScaler
    from miniclip.training.step import train_step

    nn.manual_seed(0)
    model = create_model("tiny-vit")
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)         # [8, 3, 32, 32]
    tokens = miniclip.tokenize([f"a {c} circle" for c in "abcdefgh"], context_length=32)
    reference, scalers = copy.deepcopy(model), [GradScaler(AMP_SCALE), GradScaler(AMP_SCALE)]
    expected = train_step(reference, SGD(reference.parameters(), lr=0.1), scalers[0], images,
                          tokens, 1, "cpu", 1.0)
    rows = slice(4 * world.rank, 4 * world.rank + 4)
    loss = world.mean(train_step(model, SGD(model.parameters(), lr=0.1), scalers[1],
                                 images[rows], tokens[rows], 1, "cpu", 1.0,
                                 **data_parallel(world)))
    assert [s.get_scale() for s in scalers] == [AMP_SCALE] * 2, "a step was skipped"
    # the float16 forward of a row does not depend on the other rows: the losses agree to
    # float32 round-off, as without --amp
    assert abs(loss - expected) <= 1e-6 * expected, (loss, expected)
    worst = 0.0
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        mine = p.numpy()
        both = world.all_gather(p.data.reshape(1, -1))                       # [2, size]
        assert (both == mine.reshape(-1)).all(), f"{name}: ranks differ"
        update, expected_update = mine - before[name], q.numpy() - before[name]
        size = np.abs(expected_update).max()
        assert size > 0, f"{name}: no update"
        error = np.abs(update - expected_update).max() / size
        assert error <= tolerance, f"{name}: updates differ by {error:.1e} of their size"
        worst = max(worst, error)
    print(f"rank {world.rank}: amp step ok, worst {worst:.2e}", flush=True)


def main(scenario, option="cpu"):
    device = "cpu" if scenario == "amp-step" else option
    if device == "cuda":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import fake_cupy
        fake_cupy.install()
    from miniclip.distributed import connect
    from miniclip.distributed.launch import abort_on_error

    world = connect(device)
    with abort_on_error(world):
        if scenario == "step":
            step(world, device)
        elif scenario == "amp-step":
            amp_step(world, float(option))
        elif world.rank == 1 and scenario == "raise":
            raise RuntimeError("planted failure")
        elif world.rank == 1 and scenario == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            world.all_reduce_(np.zeros(4))  # waits for rank 1, which never comes


if __name__ == "__main__":
    main(*sys.argv[1:])

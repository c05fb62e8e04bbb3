"""Programs that ``tests/test_distributed_mpi.py`` runs under ``mpiexec -n 2``.

``python tests/mpi_program.py step cpu|cuda``: one data-parallel step of the tiny ViT on
this rank's 4 of 8 pairs, checked on every rank against one single-process step on all 8
(computed by the rank itself), and the ranks' weights against each other. On ``cuda`` the
fake CuPy of the tests is installed first: it has no NCCL, so the collectives take the
host-staged path. It also checks that the world counts both ranks as on this machine
(``local_size``, which divides the BLAS threads). Prints ``rank R: step ok`` and exits 0; a failed check aborts the job.

``python tests/mpi_program.py raise|kill``: rank 1 raises (inside ``abort_on_error``) or is
killed by SIGKILL, while rank 0 waits in an all-reduce for it.
"""
import copy
import os
import signal
import sys

import numpy as np
from tolerances import EPS32, assert_same_update  # this file's folder, tests/, is on sys.path


def step(world, device):
    import miniclip
    from miniclip import nn
    from miniclip.amp import GradScaler
    from miniclip.distributed import train_step
    from miniclip.models import create_model
    from miniclip.optim import SGD
    from miniclip.train import train_step as single_process_step

    assert device != "cuda" or world.nccl is None, "the fake CuPy has no NCCL"
    assert world.local_size == 2, "both ranks run on this machine and share its cores"
    nn.manual_seed(0)
    model = create_model("tiny-vit").to(device)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)         # [8, 3, 32, 32]
    tokens = miniclip.tokenize([f"a {c} circle" for c in "abcdefgh"], context_length=32)
    off = GradScaler(enabled=False)
    reference = copy.deepcopy(model)
    before = [p.numpy().copy() for p in model.parameters()]
    expected = single_process_step(reference, SGD(reference.parameters(), lr=0.1), off, images,
                                   tokens, 1, device, 1.0)
    rows = slice(4 * world.rank, 4 * world.rank + 4)
    loss = train_step(world, model, SGD(model.parameters(), lr=0.1), off, images[rows],
                      tokens[rows], 1, device, 1.0)
    assert abs(loss - expected) <= 8 * EPS32 * expected, (loss, expected)  # one float32 mean, another order
    for (name, p), q, start in zip(model.named_parameters(), reference.parameters(), before):
        assert p.device.name == device, (name, p.device)
        mine = p.numpy()
        both = world.all_gather(p.data.reshape(1, -1))                       # [2, size]
        assert (miniclip.backend.to_numpy(both) == mine.reshape(-1)).all(), f"{name}: ranks differ"
        assert_same_update(mine, q.numpy(), start, err_msg=name)
    print(f"rank {world.rank}: step ok", flush=True)


def main(scenario, device="cpu"):
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
        elif world.rank == 1 and scenario == "raise":
            raise RuntimeError("planted failure")
        elif world.rank == 1 and scenario == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            world.all_reduce_(np.zeros(4))  # waits for rank 1, which never comes


if __name__ == "__main__":
    main(*sys.argv[1:])

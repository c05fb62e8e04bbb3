"""Time the collectives of one data-parallel step of the tiny ViT, without the compute.

``mpiexec -n 2 python scripts/time_collectives.py [--batch-size 32]`` times, on rank 0,
median of 50 repeats after a barrier (so that no rank waits for a slower one): the
gradient all-reduce of the tiny ViT's 1.37M float32 gradients in ``optim`` buckets, the
four feature exchanges of the local loss (two all-gathers forward, two all-reduces
backward) and the loss's mean. This is the communication a step costs on an idle
machine; ``python -m miniclip.train --distributed`` reports the time inside collectives
including the waits for the slowest rank.
"""
import argparse
import time

import numpy as np

from miniclip.distributed import average_gradients, connect
from miniclip.models import create_model


def median_seconds(world, function, repeats=50):
    times = []
    for _ in range(repeats):
        world.comm.Barrier()
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (default 32)")
    args = parser.parse_args()
    world = connect()
    model = create_model("tiny-vit")
    params = list(model.parameters())
    for p in params:
        p.grad = np.ones_like(p.data)
    features = np.ones((args.batch_size // world.size, model.config["embed_dim"]), np.float32)

    def gradients():
        average_gradients(world, params)

    def feature_exchanges():
        for _ in range(2):
            world.all_gather(features)                                   # [N, E]
            world.all_reduce_(np.ones((args.batch_size, features.shape[1]), np.float32))

    grads = median_seconds(world, gradients)
    gathers = median_seconds(world, feature_exchanges)
    mean = median_seconds(world, lambda: world.mean(1.0))
    if world.rank == 0:
        print(f"{world.size} processes, {model.num_parameters():,} gradients, global "
              f"batch {args.batch_size}: gradient all-reduce {grads * 1e3:.2f} ms, feature "
              f"gathers {gathers * 1e3:.2f} ms, loss mean {mean * 1e3:.3f} ms per step")


if __name__ == "__main__":
    main()

"""Images per second per rank of a small CNN's training step (synthetic data), data-parallel over ringrun's
DistributedOptimizer or Horovod's: how `ringrun launch`'s defaults (yielding, threads per rank) were chosen.

    ringrun launch -np 2 -- python scripts/cnn_throughput.py [--backend ring|horovod]

Rank 0 prints `threads=T OMP=... img/s per rank median M (min, max)` over 5 rounds of 5 steps (batch 16, 3x64x64).
"""

import argparse
import os
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("ring", "horovod"), default="ring")
    args = parser.parse_args()
    import torch
    import torch.nn as nn

    if args.backend == "ring":
        import ringrun.kernels.torch as dist

        dist.init()
        wrap = dist.DistributedOptimizer
    else:
        import horovod.torch as dist

        dist.init()

        def wrap(optimizer, named):
            return dist.DistributedOptimizer(optimizer, named_parameters=named)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(8), nn.Flatten(), nn.Linear(64 * 64, 1000))
    optimizer = wrap(torch.optim.SGD(model.parameters(), lr=0.01), model.named_parameters())
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 1000, (16,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    for _ in range(3):
        step()
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            step()
        rates.append(16 * 5 / (time.perf_counter() - start))
    rates.sort()
    if dist.rank() == 0:
        print(f"threads={torch.get_num_threads()} OMP={os.environ.get('OMP_NUM_THREADS')} img/s per rank median "
              f"{rates[2]:.1f} (min {rates[0]:.1f} max {rates[-1]:.1f})", flush=True)


if __name__ == "__main__":
    main()

"""The procedure of Horovod's pytorch_synthetic_benchmark.py with torch DistributedDataParallel over gloo instead of
Horovod, for the comparison of scripts/synthetic.py: the same model (torchvision's, or ringrun's stand-in), SGD at
lr 0.01 x ranks, one fixed random batch, untimed warm-up batches, then iterations of batches timed with timeit, and
the same closing lines (`Img/sec per CPU: M +-C`). Ranks come from mpirun's environment (`ringrun launch`).

    ringrun launch -np 2 -- python scripts/synthetic_ddp.py --model resnet50 --batch-size 8 [--port 29517]
"""

import argparse
import os
import timeit


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-warmup-batches", type=int, default=10)
    parser.add_argument("--num-batches-per-iter", type=int, default=10)
    parser.add_argument("--num-iters", type=int, default=10)
    parser.add_argument("--port", type=int, default=29517, help="gloo's rendezvous port on 127.0.0.1")
    args = parser.parse_args()
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    try:
        from torchvision import models
    except ImportError:
        from ringrun.bench.resnet import models
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1")))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=size)
    model = torch.nn.parallel.DistributedDataParallel(getattr(models, args.model)())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * size)
    data = torch.randn(args.batch_size, 3, 224, 224)
    target = torch.LongTensor(args.batch_size).random_() % 1000

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(data), target).backward()
        optimizer.step()

    def log(text):
        if rank == 0:
            print(text, flush=True)

    log(f"Model: {args.model}\nBatch size: {args.batch_size}\nNumber of CPUs: {size}\nRunning warmup...")
    timeit.timeit(step, number=args.num_warmup_batches)
    log("Running benchmark...")
    rates = []
    for i in range(args.num_iters):
        rate = args.batch_size * args.num_batches_per_iter / timeit.timeit(step, number=args.num_batches_per_iter)
        log(f"Iter #{i}: {rate:.1f} img/sec per CPU")
        rates.append(rate)
    mean, conf = np.mean(rates), 1.96 * np.std(rates)
    log(f"Img/sec per CPU: {mean:.1f} +-{conf:.1f}")
    log(f"Total img/sec on {size} CPU(s): {size * mean:.1f} +-{size * conf:.1f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""Where a training step of `examples/train/digits.py --model resnet50` goes, phase by phase, on rank 0.

    mpirun -np 2 python scripts/train_phases.py --mode sync          # ringrun's DistributedOptimizer(overlap=False)
    mpirun -np 2 python scripts/train_phases.py --mode overlap --bucket-mib 8
    mpirun -np 2 python scripts/train_phases.py --mode none          # no reduction at all: the compute alone

Each rank trains on its own 32 samples (the bench's global batch of 64 over 2 ranks). Every step is timed in four
parts: forward (zero_grad, model, loss), backward, synchronize (what step() waits for: the whole reduction without
overlap, what is still in flight with it), and the wrapped optimizer's step; the medians of --steps steps after
--warmup are printed, in milliseconds, by rank 0, with the minor page faults per step (fresh memory touched) of
the rank that had the most. A profile, not a benchmark: `ringrun bench train` is the benchmark.
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "train"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("sync", "overlap", "none"), required=True)
    parser.add_argument("--bucket-mib", type=int, default=64, help="overlap's bucket size (default 64)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    import digits
    import torch

    import ringrun.kernels.torch as rr

    rr.init()
    torch.set_num_threads(1)
    net = digits.model(0, "resnet50")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    if args.mode != "none":
        rr.broadcast_parameters(net.state_dict())
        optimizer = rr.DistributedOptimizer(optimizer, net.named_parameters(), overlap=args.mode == "overlap",
                                            bucket_bytes=args.bucket_mib << 20)
        if args.mode == "overlap" and optimizer._overlap is None:
            raise SystemExit("train_phases.py: no overlap (one bucket, one rank, or no MPI_THREAD_MULTIPLE): "
                             "use --mode sync for that")
    x, y, _, _ = digits.load(0)
    loss_fn = torch.nn.CrossEntropyLoss()
    mine = slice(rr.rank() * 32, rr.rank() * 32 + 32)
    inputs, labels = torch.from_numpy(x[mine]), torch.from_numpy(y[mine])
    phases = []
    for _ in range(args.warmup + args.steps):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(net(inputs), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if args.mode != "none":
            optimizer.synchronize()
        t3 = time.perf_counter()
        getattr(optimizer, "_optimizer", optimizer).step()
        t4 = time.perf_counter()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        phases.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, faults))
    kept = phases[args.warmup:]
    medians = [sorted(column)[len(column) // 2] for column in zip(*kept)]
    from mpi4py import MPI

    faults = MPI.COMM_WORLD.allreduce(medians[5], op=MPI.MAX)
    if rr.rank() == 0:
        buckets = ""
        if args.mode == "overlap":
            buckets = f", {len(optimizer._overlap.buckets)} buckets of at most {args.bucket_mib} MiB"
        print(f"{args.mode} ({rr.size()} ranks{buckets}): forward %.1f  backward %.1f  synchronize %.1f  step %.1f  "
              "total %.1f ms (rank 0)" % tuple(m * 1e3 for m in medians[:5])
              + f", {faults} page faults (the most of any rank)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

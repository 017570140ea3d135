"""Back-to-back 4 KiB allreduces, no barrier between them: ringrun's `allreduce` (auto) against the MPI library's
own in-place and out-of-place `MPI_Allreduce`, interleaved rounds; the Python cost of ringrun's small-message path.

    mpirun -np 2 python scripts/small_message.py [--bytes 4096] [--calls 20000] [--rounds 5]

Rank 0 prints the best round's microseconds per call for each, and ringrun's ratio to each.
"""

import argparse
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bytes", type=int, default=4096)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import numpy as np
    from mpi4py import MPI

    from ringrun.kernels import allreduce

    comm = MPI.COMM_WORLD
    buf = np.ones(args.bytes // 4, np.float32)
    out = np.empty_like(buf)
    calls = {"ringrun": lambda: allreduce(buf, comm=comm),
             "mpi_inplace": lambda: comm.Allreduce(MPI.IN_PLACE, buf, MPI.SUM),
             "mpi": lambda: comm.Allreduce(buf, out, MPI.SUM)}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(args.rounds):
        for name, call in calls.items():
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(args.calls):
                call()
            best[name] = min(best[name], comm.allreduce(time.perf_counter() - start, op=MPI.MAX) / args.calls)
    if comm.Get_rank() == 0:
        print(f"{MPI.Get_library_version().splitlines()[0][:40]}, {comm.Get_size()} ranks, {args.bytes} bytes: "
              + ", ".join(f"{name} {seconds * 1e6:.2f} us" for name, seconds in best.items())
              + f"; ringrun / mpi_inplace {best['ringrun'] / best['mpi_inplace']:.2f}, ringrun / mpi "
              f"{best['ringrun'] / best['mpi']:.2f}", flush=True)


if __name__ == "__main__":
    main()

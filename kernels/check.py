"""Allreduce check every rank runs (examples/mpijob-allreduce.yaml): `python -m ringrun.kernels.check`.

Each rank contributes values that depend on its rank and on the element index, so a misplaced segment shows. Both of
ringrun's algorithms are checked against the exact sum; every rank prints one line and exits 1 on a mismatch.
"""

import argparse
import sys


def main(argv=None):
    import numpy as np
    from mpi4py import MPI

    from .allreduce import allreduce

    parser = argparse.ArgumentParser(prog="python -m ringrun.kernels.check", description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=100003, help="elements per rank (default 100003)")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    index = np.arange(args.length, dtype=np.int64)
    expected = size * (size + 1) // 2 * 1000 + size * (index % 997)
    results = []
    for algorithm in ("ring", "recursive_doubling"):
        buf = (rank + 1) * 1000 + index % 997
        allreduce(buf, comm=comm, algorithm=algorithm)
        results.append(f"{algorithm} {'OK' if np.array_equal(buf, expected) else 'WRONG'}")
    ok = all(r.endswith("OK") for r in results)
    print(f"rank {rank}/{size} on {MPI.Get_processor_name()}: allreduce of {args.length} int64: {', '.join(results)}",
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

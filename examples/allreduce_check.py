"""Allreduce check run by every rank of examples/mpijob-allreduce.yaml.

Each rank contributes values that depend on its rank and on the element index, so a misplaced segment shows; every
rank compares the sum with the exact expected result and exits 1 on a mismatch. Uses MPI's own Allreduce.
"""

import argparse
import sys


def main(argv=None):
    import numpy as np
    from mpi4py import MPI

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--length", type=int, default=100003)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    index = np.arange(args.length, dtype=np.int64)
    buf = (rank + 1) * 1000 + index % 997
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    expected = size * (size + 1) // 2 * 1000 + size * (index % 997)
    ok = np.array_equal(buf, expected)
    print(f"rank {rank}/{size} on {MPI.Get_processor_name()}: allreduce of {args.length} int64 "
          f"{'OK' if ok else 'WRONG'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

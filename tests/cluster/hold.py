"""Run under mpirun across pods: every rank says it is up, then allreduces in a loop for at most SECONDS (default 120),
so a test can kill a pod or signal the launcher while the job runs."""

import socket
import sys
import time

import numpy as np
from mpi4py import MPI

from ringrun.kernels import allreduce


def main(seconds):
    comm = MPI.COMM_WORLD
    print(f"HOLDING rank={comm.Get_rank()} host={socket.gethostname()}", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        allreduce(np.ones(1000), comm=comm, algorithm="ring")
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 120.0))

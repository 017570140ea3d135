#!/opt/ringrun/venv/bin/python3
"""mpi-operator's pi example (examples/v2beta1/pi/pi.cc) in Python: each rank throws 10,000,000 darts at the square
[-1, 1]^2 with a generator seeded by its rank, rank 0 reduces the hits and prints pi. The same output lines as the C++
program; docker/Dockerfile.pi installs it as /home/mpiuser/pi."""

import socket

import numpy as np
from mpi4py import MPI

TESTS = 10_000_000
CHUNK = 1_000_000


def main():
    comm = MPI.COMM_WORLD
    rank, workers = comm.Get_rank(), comm.Get_size()
    if rank == 0:
        print(f"Workers: {workers}", flush=True)
    print(f"Rank {rank} on host {MPI.Get_processor_name() or socket.gethostname()}", flush=True)
    generator = np.random.default_rng(rank)
    count = 0
    for _ in range(TESTS // CHUNK):
        x, y = generator.uniform(-1.0, 1.0, CHUNK), generator.uniform(-1.0, 1.0, CHUNK)
        count += int(np.count_nonzero(x * x + y * y <= 1.0))
    total = comm.reduce(count, op=MPI.SUM, root=0)
    if rank == 0:
        print(f"pi is approximately {4 * total / TESTS / workers:.16f}", flush=True)
    comm.Barrier()


if __name__ == "__main__":
    main()

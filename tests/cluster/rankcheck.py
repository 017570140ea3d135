"""Run under mpirun across pods: check every rank is there once, on the host the hostfile's order puts it, and that
ringrun's ring allreduce and its shared-memory allreduce (hierarchical across pods: shared memory inside a pod, the
ring between pods) of rank- and index-dependent values give the exact sum on every rank.

Prints `RANKCHECK size=N hosts=h0,h1,... allreduce=exact shm=exact local=L` on rank 0 (L: the ranks sharing memory
with rank 0) and exits 0 when everything holds, 1 otherwise; with
`--show VAR...`, every rank also prints `SHOW rank=R VAR=value` for each variable, as the rank's environment has it;
with `--cwd`, every rank prints `CWD rank=R PATH`, the folder it runs in.
"""

import os
import socket
import sys

import numpy as np
from mpi4py import MPI

from ringrun.kernels import allreduce
from ringrun.kernels.comm import as_communicator
from ringrun.kernels.shm import topology


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    show = [a for a in sys.argv[sys.argv.index("--show") + 1:] if a != "--cwd"] if "--show" in sys.argv else []
    if "--cwd" in sys.argv:
        print(f"CWD rank={rank} {os.getcwd()}", flush=True)
    for name in show:
        print(f"SHOW rank={rank} {name}={os.environ.get(name, '<unset>')}", flush=True)
    hosts = comm.allgather(socket.gethostname())
    ranks = comm.allgather(rank)
    n = 10007
    data = (np.arange(n, dtype=np.float64) + 1) * (rank + 1)
    expected = (np.arange(n, dtype=np.float64) + 1) * (size * (size + 1) // 2)
    allreduce(data, comm=comm, algorithm="ring")
    good = comm.allgather(bool(np.array_equal(data, expected)))
    n = 300007  # several rounds of the shared-memory allreduce's slots
    data = (np.arange(n, dtype=np.float64) % 1009 + 1) * (rank + 1)
    expected = (np.arange(n, dtype=np.float64) % 1009 + 1) * (size * (size + 1) // 2)
    shared = as_communicator(comm)
    allreduce(data, comm=shared, algorithm="shm")
    shm_good = comm.allgather(bool(np.array_equal(data, expected)))
    local = topology(shared).node.Get_size()
    if rank == 0:
        ok = sorted(ranks) == list(range(size)) and all(good) and all(shm_good)
        print(f"RANKCHECK size={size} hosts={','.join(hosts)} allreduce={'exact' if all(good) else 'WRONG'} "
              f"shm={'exact' if all(shm_good) else 'WRONG'} local={local}", flush=True)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

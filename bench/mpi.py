"""MPI ranks started by mpirun (timing and verification over mpi4py), and the MPI library's own allreduce."""

WORLD = "mpi"


class MPIWorld:
    """The ranks of MPI_COMM_WORLD."""

    name = WORLD

    def __init__(self):
        from mpi4py import MPI

        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.state = {}  # what an adapter sets up once on these ranks (Horovod), by adapter
        self.closers = []  # called by close(), last first

    def library(self):
        return self.MPI.Get_library_version().splitlines()[0].strip()

    def communicator(self):
        """The communicator ringrun.kernels uses for COMM_WORLD (the same cached wrapper users get)."""
        from ringrun.kernels.comm import as_communicator

        return as_communicator(self.comm)

    def close(self):
        while self.closers:
            self.closers.pop()()

    def barrier(self):
        self.comm.Barrier()

    def slowest(self, seconds):
        return self.comm.allreduce(seconds, op=self.MPI.MAX)

    def all_true(self, flag):
        return self.comm.allreduce(bool(flag), op=self.MPI.LAND)


def out_of_place(world):
    """MPI_Allreduce from a send to a receive buffer, as IMB-MPI1 and the OSU benchmarks time it (Intel MPI's in-place
    allreduce is up to 3x slower at 64 MiB)."""
    import numpy as np

    outputs = {}

    def run(buf):
        out = outputs.get((buf.size, buf.dtype))
        if out is None:
            out = outputs[(buf.size, buf.dtype)] = np.empty_like(buf)
        world.comm.Allreduce(buf, out, op=world.MPI.SUM)
        return out
    return run


def in_place(world):
    """The same call with MPI_IN_PLACE."""
    def run(buf):
        world.comm.Allreduce(world.MPI.IN_PLACE, buf, op=world.MPI.SUM)
        return buf
    return run


def per_tensor(world):
    """One in-place MPI_Allreduce per tensor: no fusion."""
    return lambda arrays, flat: [world.comm.Allreduce(world.MPI.IN_PLACE, a, op=world.MPI.SUM) for a in arrays]


IMPLS = {
    "allreduce": {"mpi": out_of_place, "mpi_inplace": in_place},
    "fusion": {"mpi_per_tensor": per_tensor},
}

"""ringrun's own collectives (ringrun.kernels) on the MPI ranks: allreduce by algorithm, and tensor fusion."""

WORLD = "mpi"


def allreduce(algorithm):
    """make(world) for ringrun's allreduce with `algorithm`, in place."""
    def make(world):
        from ringrun.kernels.allreduce import allreduce as ring_allreduce

        comm = world.communicator()
        return lambda buf: ring_allreduce(buf, comm=comm, algorithm=algorithm)
    return make


def shm_slots(world):
    """Shared memory through the slots even where the ranks could copy straight between their buffers: the path
    the single-copy one replaced, for a side-by-side profile."""
    from ringrun.kernels.allreduce import allreduce as ring_allreduce
    from ringrun.kernels.shm import topology

    comm = world.communicator()

    def run(buf):
        arena = topology(comm).arena() if comm.size > 1 else None  # collective, on the first (verified) call
        single = arena is not None and arena.single_copy
        if single:
            arena.single_copy = False
        try:
            return ring_allreduce(buf, comm=comm, algorithm="shm")
        finally:
            if single:
                arena.single_copy = True
    return run


def fused(world):
    """Every tensor through ringrun's Fusion: packed into buffers, one allreduce each."""
    from ringrun.kernels.fusion import Fusion

    fusion, comm = Fusion(), world.communicator()
    return lambda arrays, flat: fusion.allreduce_many(arrays, comm=comm)


def flat(world):
    """The same bytes as one flat buffer through the ring: what fusion costs beyond the allreduce."""
    from ringrun.kernels.allreduce import allreduce as ring_allreduce

    comm = world.communicator()
    return lambda arrays, buf: ring_allreduce(buf, comm=comm, algorithm="ring")


IMPLS = {
    "allreduce": {"ring": allreduce("auto"), "ring_only": allreduce("ring"),
                  "recursive_doubling": allreduce("recursive_doubling"), "shm": allreduce("shm"),
                  "shm_slots": shm_slots},
    "fusion": {"fused": fused, "flat": flat},
}

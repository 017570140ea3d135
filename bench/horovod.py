"""Horovod (horovod.torch) in its MPI mode, on the ranks mpirun started: allreduce and grouped allreduce."""

from .registry import Unavailable

WORLD = "mpi"


def init(world):
    """horovod.torch, initialised once on these ranks and shut down when the world closes; raises Unavailable."""
    hvd = world.state.get("horovod")
    if hvd is None:
        try:
            import horovod.torch as hvd
        except Exception as exc:  # ImportError, or a horovod built against another MPI or torch
            hvd = Unavailable(f"cannot import horovod.torch: {exc}".splitlines()[0])
        else:
            hvd.init()
            if hvd.size() == world.size:
                world.closers.append(hvd.shutdown)
            else:
                hvd = Unavailable(f"horovod sees {hvd.size()} ranks, mpirun started {world.size} (built against "
                                  "another MPI?)")
        world.state["horovod"] = hvd
    if isinstance(hvd, Unavailable):
        raise hvd
    return hvd


def allreduce(world):
    hvd = init(world)
    import torch

    def run(buf):
        hvd.allreduce_(torch.from_numpy(buf), op=hvd.Sum)
        return buf
    return run


def grouped(world):
    hvd = init(world)
    import torch

    return lambda arrays, flat: hvd.grouped_allreduce_([torch.from_numpy(a) for a in arrays], op=hvd.Sum)


IMPLS = {"allreduce": {"horovod": allreduce}, "fusion": {"horovod_grouped": grouped}}

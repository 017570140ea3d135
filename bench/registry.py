"""Which adapter runs each implementation.

An adapter is a module of this package: `WORLD`, the ranks it runs on ("mpi": started by mpirun, over mpi4py;
"gloo": plain processes joined by torch.distributed's env://), and `IMPLS`, bench -> impl -> make(world) -> the
callable to time. Adapters import their framework only in make(): listing the impls loads none.
"""

import functools
import importlib

ADAPTERS = ("ring", "mpi", "horovod", "gloo", "floor")
DEFAULT_IMPLS = {"allreduce": "ring,mpi,horovod,gloo", "fusion": "fused,flat,mpi_per_tensor,horovod_grouped",
                 "train": "ring,ring_sync,ddp,horovod"}
# `bench train` times examples/train/digits.py: its --backend values, by the adapter whose ranks they need
TRAIN = {"ring": "ring", "ring_sync": "ring", "ddp": "gloo", "horovod": "horovod"}


class Unavailable(Exception):
    """An implementation that cannot run in this environment; the message says why."""


def adapter(name):
    """The adapter module `name`."""
    return importlib.import_module(f"{__package__}.{name}")


def impls(kind):
    """impl -> adapter name for bench `kind`, in the adapters' order."""
    if kind == "train":
        return dict(TRAIN)
    return {impl: name for name in ADAPTERS for impl in adapter(name).IMPLS.get(kind, {})}


def _elsewhere(impl, where, here):
    raise Unavailable(f"{impl} runs on {where} ranks, these are {here} ranks")


def factories(kind, names, world):
    """impl -> factory() -> the callable to time, for each of `names` on `world`; an impl whose adapter needs other
    ranks raises Unavailable when built."""
    known = impls(kind)
    table = {}
    for name in names:
        module = adapter(known[name])
        table[name] = (functools.partial(module.IMPLS[kind][name], world) if module.WORLD == world.name else
                       functools.partial(_elsewhere, name, module.WORLD, world.name))
    return table

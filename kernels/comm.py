"""The communicator protocol the collectives run on, and its adapter for mpi4py.

The algorithms need only point-to-point, non-blocking byte transfers:

    comm.rank, comm.size
    comm.isend(array, dest, tag) -> request     # the array is not touched until the request completes
    comm.irecv(array, source, tag) -> request   # receives exactly array.nbytes bytes
    comm.waitall(requests)

`MPIComm` maps this onto an mpi4py communicator (`Isend`/`Irecv` of MPI.BYTE); `kernels.fake.ThreadWorld` is an
in-process implementation for tests. Messages between one pair with one tag are matched in the order they were posted
(MPI's non-overtaking rule), which the pipelined ring relies on.
"""

import functools
from typing import Protocol


class Request(Protocol):
    def wait(self): ...


class Communicator(Protocol):
    rank: int
    size: int

    def isend(self, buf, dest, tag): ...

    def irecv(self, buf, source, tag): ...

    def waitall(self, requests): ...


class MPIComm:
    """An mpi4py communicator seen through the protocol; data travels as raw bytes, so any dtype works."""

    __slots__ = ("comm", "rank", "size", "library", "node", "topology", "native_limit", "_byte", "_waitall")

    def __init__(self, comm, node=None):
        """comm: an mpi4py communicator. node: the ranks of comm that share memory with this one, when they are to
        be other than `Split_type(COMM_TYPE_SHARED)`'s (tests make two "hosts" of one machine this way)."""
        from mpi4py import MPI

        self.comm = comm
        self.node = node
        self.topology = None  # kernels.shm.Topology, made by the first allreduce that asks
        self.native_limit = None  # set by kernels.allreduce.native_limit
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.library = library_family()
        self._byte = MPI.BYTE
        self._waitall = MPI.Request.Waitall

    def isend(self, buf, dest, tag):
        return self.comm.Isend([buf, self._byte], dest, tag)

    def irecv(self, buf, source, tag):
        return self.comm.Irecv([buf, self._byte], source, tag)

    def waitall(self, requests):
        if requests:
            self._waitall(requests)


@functools.lru_cache(maxsize=1)
def library_family():
    """openmpi, mpich, intel or other: the MPI library this process runs on (asked once)."""
    from mpi4py import MPI

    version = MPI.Get_library_version().strip()
    first = version.splitlines()[0] if version else ""
    for needle, family in (("Intel", "intel"), ("Open MPI", "openmpi"), ("MPICH", "mpich")):
        if needle in first:
            return family
    return "other"


_WRAPPED = {}  # id(mpi4py communicator) -> (that communicator, its MPIComm): wrapped once, not on every call


def as_communicator(comm=None):
    """The protocol object for `comm`: None means MPI.COMM_WORLD; an mpi4py communicator is wrapped (once);
    anything else is taken to implement the protocol already."""
    held = _WRAPPED.get(id(comm))  # the common case first: a communicator seen before (allreduce in a loop)
    if held is not None and held[0] is comm:
        return held[1]
    if comm is None:
        from mpi4py import MPI

        return as_communicator(MPI.COMM_WORLD)
    if isinstance(comm, MPIComm) or not hasattr(comm, "Isend"):
        return comm
    if len(_WRAPPED) >= 64:  # communicators come and go: keep the table small
        _WRAPPED.clear()
    wrapped = MPIComm(comm)
    _WRAPPED[id(comm)] = (comm, wrapped)
    return wrapped

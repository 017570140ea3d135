"""The collectives under mpirun (run by `make test` with -np 1, 2, 3 and 4 oversubscribed), on MPI.COMM_WORLD.

Lengths {0, 1, N-1, N, 1000, 10007, 2^20+3} x every dtype x every op x every algorithm (the MPI library's own and
shared memory included); inputs depend on rank and index; integers compared exactly, floats against a float64
reference; every rank must end bitwise identical. The hierarchical allreduce (shared memory inside a host, the ring
between hosts) runs on "hosts" made of this machine's ranks: 2 x 2 at 4 ranks, 1 + 2 (uneven: the ring) at 3."""

import numpy as np
import pytest

from cases import DTYPES, MPI_ALGORITHMS, OPS, check, lengths, values

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def world():
    from mpi4py import MPI

    return MPI.COMM_WORLD


@pytest.mark.parametrize("algorithm", MPI_ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_allreduce(world, algorithm, dtype, op):
    from ringrun.kernels import allreduce

    size, rank = world.Get_size(), world.Get_rank()
    for length in lengths(size):
        buf = values(rank, length, dtype, op)
        allreduce(buf, op, comm=world, algorithm=algorithm)
        check(buf, size, length, dtype, op)
        first = world.bcast(buf if rank == 0 else None, root=0)
        assert np.array_equal(first, buf), "ranks disagree"


def test_auto_matches_mpi_allreduce(world):
    from mpi4py import MPI

    from ringrun.kernels import allreduce

    for length in (3, 70_000, 2**20 + 3):
        ours = values(world.Get_rank(), length, "float64", "sum")
        theirs = ours.copy()
        allreduce(ours, comm=world)
        world.Allreduce(MPI.IN_PLACE, theirs, op=MPI.SUM)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_allreduce_many_resnet50_shapes(world):
    from ringrun.bench.models import RESNET50_SHAPES

    from ringrun.kernels import allreduce, allreduce_many

    rank = world.Get_rank()
    assert len(RESNET50_SHAPES) == 161
    arrays = [values(rank, int(np.prod(s)), "float32", "sum").reshape(s) * (i % 5 + 1)
              for i, s in enumerate(RESNET50_SHAPES)]
    assert sum(a.size for a in arrays) == 25_557_032
    singles = [a.copy() for a in arrays]
    for a in singles:
        allreduce(a, comm=world)
    allreduce_many(arrays, comm=world, threshold=8 << 20)
    for fused, single in zip(arrays, singles):
        assert np.array_equal(fused, single)


@pytest.mark.parametrize("root", [0, -1])
def test_broadcast_and_allgather(world, root):
    from ringrun.kernels import allgather, broadcast

    size, rank = world.Get_size(), world.Get_rank()
    root = root % size
    buf = np.arange(10007, dtype=np.float32) + rank
    broadcast(buf, root=root, comm=world)
    assert np.array_equal(buf, np.arange(10007, dtype=np.float32) + root)
    gathered = allgather(np.full((rank + 1, 2), rank, dtype=np.int64), comm=world)
    assert np.array_equal(gathered, np.concatenate([np.full((r + 1, 2), r) for r in range(size)]))


def hosts_of(world, group):
    """An MPIComm of `world` whose "hosts" are the ranks with the same `group(rank)`."""
    from ringrun.kernels.comm import MPIComm

    return MPIComm(world, node=world.Split(group(world.Get_rank()), world.Get_rank()))


@pytest.mark.parametrize("group", [lambda r: r // 2, lambda r: r % 2], ids=["blocks", "interleaved"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_hierarchical_allreduce(world, group, dtype, op):
    from ringrun.kernels import allreduce
    from ringrun.kernels.shm import topology

    size, rank = world.Get_size(), world.Get_rank()
    comm = hosts_of(world, group)
    for length in lengths(size) + [3 * (1 << 20) // np.dtype(dtype).itemsize + 5]:  # several rounds of a slot
        buf = values(rank, length, dtype, op)
        allreduce(buf, op, comm=comm, algorithm="shm")
        check(buf, size, length, dtype, op)
        first = world.bcast(buf if rank == 0 else None, root=0)
        assert np.array_equal(first, buf), "ranks disagree"
    where = topology(comm)
    per_host = [sum(1 for r in range(size) if group(r) == group(rank))]
    assert where.node.Get_size() == per_host[0]
    uneven = size == 3
    assert where.usable == (size > 1 and not uneven)
    assert (where.cross.size if where.cross is not None else 1) == (1 if uneven or size == 1 else size // per_host[0])


def test_shared_memory_allreduce_many_and_auto(world):
    """Fusion through the shared-memory allreduce (its rounds cross the arrays' ends) equals each array alone; on
    one host `auto` picks shared memory for large messages."""
    from ringrun.kernels import allreduce, allreduce_many, choose_algorithm
    from ringrun.kernels.allreduce import shared_memory
    from ringrun.kernels.comm import as_communicator

    rank, size = world.Get_rank(), world.Get_size()
    shapes = [(3,), (70_001,), (5, 7), (300_007,), (1,), (2, 150_000)]
    arrays = [values(rank, int(np.prod(s)), "float64", "sum").reshape(s) * (i + 1) for i, s in enumerate(shapes)]
    singles = [a.copy() for a in arrays]
    for a in singles:
        allreduce(a, comm=world, algorithm="ring")
    allreduce_many(arrays, comm=world, algorithm="shm", direct_bytes=1 << 20)
    for fused, single in zip(arrays, singles):
        np.testing.assert_allclose(fused, single, rtol=1e-12)
    comm = as_communicator(world)
    shared, single = shared_memory(comm, 64 << 20, "auto")
    assert shared == (comm.library if size > 1 else None) and single == (size > 1)  # ptrace is allowed in tests/mpi
    assert choose_algorithm(64 << 20, size, "auto", comm.library, shared, single) == ("shm" if size > 1 else "ring")


@pytest.mark.parametrize("single_copy", [True, False], ids=["single-copy", "slots"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_both_shared_memory_paths(world, single_copy, dtype, op):
    """Straight between the buffers (process_vm_readv/writev, allowed here) and through the slots: the small one-round
    path, then several chunks and rounds, every length of `lengths` and a few around the chunk and slot sizes."""
    from ringrun.kernels import allreduce
    from ringrun.kernels.comm import as_communicator
    from ringrun.kernels.shm import CHUNK_BYTES, SLOT_BYTES, SMALL_BYTES, topology

    size, rank = world.Get_size(), world.Get_rank()
    comm = as_communicator(world)
    arena = topology(comm).arena() if size > 1 else None
    if arena is not None:
        assert arena.single_copy, "ptrace between the ranks is allowed here: the single-copy path must be found"
        arena.single_copy = single_copy
    item = np.dtype(dtype).itemsize
    extra = [SMALL_BYTES // item, SMALL_BYTES // item + 1, size * CHUNK_BYTES // item + 5, 3 * SLOT_BYTES // item - 1]
    try:
        for length in lengths(size) + extra:
            buf = values(rank, length, dtype, op)
            allreduce(buf, op, comm=world, algorithm="shm")
            check(buf, size, length, dtype, op)
            first = world.bcast(buf if rank == 0 else None, root=0)
            assert np.array_equal(first, buf), "ranks disagree"
    finally:
        if arena is not None:
            arena.single_copy = True


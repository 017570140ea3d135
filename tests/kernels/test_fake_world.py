"""The collectives on the in-process fake communicator, at world sizes a 2-core machine cannot host as processes.

The fake is strict: a receive whose size differs from its send, a send buffer changed before its request completes,
or a deadlock (60 s) fails the test."""

import numpy as np
import pytest

from cases import ALGORITHMS, DTYPES, OPS, check, lengths, values
from ringrun.kernels import Fusion, allgather, allreduce, allreduce_many, broadcast
from ringrun.kernels.fake import FakeError, run_world
from ringrun.kernels.ring import Joined, ring_allreduce

SIZES = [1, 2, 3, 4, 5, 7, 8, 16]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_allreduce_every_length_and_op(size, algorithm, dtype):
    for length in lengths(size):
        for op in OPS:
            def body(comm):
                buf = values(comm.rank, length, dtype, op)
                out = allreduce(buf, op, comm=comm, algorithm=algorithm)
                assert out is buf
                return buf
            results = run_world(size, body)
            for result in results:
                check(result, size, length, dtype, op)
            # Every rank ends with bitwise identical values.
            assert all(np.array_equal(results[0], r, equal_nan=True) for r in results)


@pytest.mark.parametrize("size", [2, 5, 16])
def test_ring_traffic_is_2_n_minus_1_over_n(size):
    length = 16 * 10007

    def body(comm):
        allreduce(np.ones(length, np.float32), comm=comm, algorithm="ring")
        return comm.sent_bytes
    sent = run_world(size, body)
    chunk = length // size * 4
    assert all(abs(s - 2 * (size - 1) * chunk) <= 2 * (size - 1) * 4 for s in sent)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("root", [0, "last"])
def test_broadcast(size, root):
    root = size - 1 if root == "last" else root

    def body(comm):
        buf = np.full((3, 1001), comm.rank, dtype=np.float64) + np.arange(1001)
        return broadcast(buf, root=root, comm=comm)
    for result in run_world(size, body):
        assert np.array_equal(result, np.full((3, 1001), root, dtype=np.float64) + np.arange(1001))


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_allgather_with_different_first_dimensions(size):
    def body(comm):
        rows = comm.rank % 3  # includes ranks with zero rows
        return allgather(np.full((rows, 4), comm.rank, dtype=np.int32) * 10 + np.arange(4, dtype=np.int32), comm=comm)
    expected = np.concatenate([np.full((r % 3, 4), r, dtype=np.int32) * 10 + np.arange(4) for r in range(size)])
    for result in run_world(size, body):
        assert result.dtype == np.int32 and np.array_equal(result, expected)


def test_allgather_rejects_mismatched_trailing_shape():
    def body(comm):
        return allgather(np.zeros((2, 3 + comm.rank), np.float32), comm=comm)
    with pytest.raises(ValueError, match="disagree on dtype or trailing shape"):
        run_world(2, body)


@pytest.mark.parametrize("size", [2, 3, 5])
@pytest.mark.parametrize("threshold", [4096, 64 << 20])
def test_allreduce_many_equals_per_array(size, threshold):
    shapes = [(7,), (3, 5), (1,), (0,), (4096,), (2, 2, 2), (5000,)]

    def body(comm):
        arrays = [values(comm.rank, int(np.prod(s)), dt, "sum").reshape(s)
                  for s, dt in zip(shapes, ["float32", "float64", "int32", "float32", "float32", "int64", "float16"])]
        singles = [a.copy() for a in arrays]
        for a in singles:
            allreduce(a, "sum", comm=comm)
        allreduce_many(arrays, "sum", comm=comm, threshold=threshold)
        return arrays, singles
    for arrays, singles in run_world(size, body):
        for fused, single in zip(arrays, singles):
            assert fused.dtype == single.dtype and np.array_equal(fused, single)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_ring_over_joined_arrays_reduces_each_in_place_without_copies(size):
    """The ring over several arrays as one buffer: lengths {0, 1, N-1, 10007} and one of 2^20+3 (several
    segments), inputs depending on rank, index and array; every array gets exactly its own sum."""
    lengths = [0, 1, max(size - 1, 0), 10007, 2**20 + 3]

    def body(comm):
        pieces = [values(comm.rank, n, "float64", "sum") + i for i, n in enumerate(lengths)]
        views = [p[:] for p in pieces]
        ring_allreduce(Joined(views), np.add, comm, segment_bytes=64 << 10)
        return pieces
    for pieces in run_world(size, body):
        for i, (n, piece) in enumerate(zip(lengths, pieces)):
            expected = sum(values(r, n, "float64", "sum") + i for r in range(size))
            assert np.array_equal(piece, expected), (i, n)


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("direct_bytes", [1, 4096, 1 << 30])
def test_fusion_packs_small_arrays_and_rings_the_rest_in_place(size, direct_bytes):
    shapes = [(7,), (3, 5), (4096,), (70000,), (1,), (300000,)]

    def body(comm):
        arrays = [values(comm.rank, int(np.prod(s)), "float32", "average").reshape(s) * (i + 1)
                  for i, s in enumerate(shapes)]
        singles = [a.copy() for a in arrays]
        for a in singles:
            allreduce(a, "average", comm=comm)
        Fusion(threshold=64 << 10, direct_bytes=direct_bytes).allreduce_many(arrays, "average", comm=comm,
                                                                            algorithm="ring")
        return arrays, singles
    for arrays, singles in run_world(size, body):
        for fused, single in zip(arrays, singles):
            assert np.array_equal(fused, single)


def test_fake_detects_a_deadlock():
    def body(comm):
        if comm.rank == 0:
            comm.waitall([comm.irecv(np.empty(1), 1, 0)])
    with pytest.raises(FakeError, match="timed out"):
        run_world(2, body, timeout=0.5)


def test_fake_detects_a_send_buffer_modified_in_flight():
    def body(comm):
        buf = np.zeros(4)
        if comm.rank == 0:
            request = comm.isend(buf, 1, 0)
            buf[0] = 1
            comm.waitall([request])
        else:
            comm.waitall([comm.irecv(np.empty(4), 0, 0)])
    with pytest.raises(FakeError, match="modified before its request completed"):
        run_world(2, body)

"""allreduce's argument contract: a buffer it cannot reduce correctly is a clear error, never a silent wrong answer."""

import numpy as np
import pytest

from ringrun.kernels import allreduce, allreduce_many, choose_algorithm
from ringrun.kernels.allreduce import DEFAULT_SMALL_MESSAGE_BYTES
from ringrun.kernels.fake import run_world


def one(buf, **kwargs):
    return run_world(1, lambda comm: allreduce(buf, comm=comm, **kwargs))[0]


@pytest.mark.parametrize("buf,error,text", [
    (np.zeros((4, 4))[:, 0], ValueError, "C-contiguous"),
    (np.zeros(3, dtype=np.uint8), ValueError, "dtype uint8 is not supported"),
    (np.zeros(3, dtype=np.complex64), ValueError, "not supported"),
    ([1.0, 2.0], TypeError, "must be a numpy array"),
])
def test_bad_buffers(buf, error, text):
    with pytest.raises(error, match=text):
        one(buf)


def test_read_only_buffer():
    buf = np.zeros(3)
    buf.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        one(buf)


@pytest.mark.parametrize("kwargs,text", [({"op": "mean"}, "op must be one of"), ({"algorithm": "tree"}, "algorithm")])
def test_bad_arguments(kwargs, text):
    with pytest.raises(ValueError, match=text):
        one(np.zeros(3), **kwargs)


def test_world_size_one_is_a_validating_no_op():
    buf = np.arange(5, dtype=np.int64)
    assert one(buf, op="average") is buf and np.array_equal(buf, np.arange(5))


def test_multidimensional_contiguous_arrays_are_reduced_whole():
    def body(comm):
        return allreduce(np.full((2, 3, 4), comm.rank + 1, np.int32), comm=comm)
    for result in run_world(3, body):
        assert result.shape == (2, 3, 4) and (result == 6).all()


def test_auto_picks_by_size_and_world_size():
    assert choose_algorithm((4 << 20) - 1, 2) == "recursive_doubling"
    assert choose_algorithm(4 << 20, 2) == "ring"
    assert choose_algorithm(DEFAULT_SMALL_MESSAGE_BYTES - 1, 4) == "recursive_doubling"
    assert choose_algorithm(DEFAULT_SMALL_MESSAGE_BYTES, 7) == "ring"
    assert choose_algorithm(10, 2, "ring") == "ring"


def test_auto_uses_the_mpi_librarys_own_allreduce_below_its_measured_threshold():
    assert choose_algorithm((2 << 20) - 1, 2, library="openmpi") == "native"
    assert choose_algorithm(2 << 20, 2, library="openmpi") == "recursive_doubling"  # then ours (BENCHMARKS.md)
    assert choose_algorithm(4 << 20, 4, library="openmpi") == "ring"
    assert choose_algorithm((512 << 10) - 1, 2, library="mpich") == "native"
    assert choose_algorithm(512 << 10, 2, library="mpich") == "recursive_doubling"
    assert choose_algorithm((4 << 20) - 1, 4, library="mpich") == "native"  # per library, else per (library, size)
    assert choose_algorithm(100, 2, library="other") == "recursive_doubling"  # an unmeasured library: never native
    assert choose_algorithm(100, 2, library=None) == "recursive_doubling"  # no native allreduce for this buffer


def test_auto_uses_shared_memory_in_its_measured_ranges_when_the_ranks_can():
    assert choose_algorithm(64 << 10, 2, library="openmpi", shared="openmpi") == "shm"
    assert choose_algorithm((64 << 10) - 1, 2, library="openmpi", shared="openmpi") == "native"
    assert choose_algorithm(2 << 20, 2, library="openmpi", shared="openmpi") == "recursive_doubling"  # ring's range
    assert choose_algorithm(32 << 20, 2, library="openmpi", shared="openmpi") == "shm"
    assert choose_algorithm(1 << 20, 4, library="openmpi", shared="openmpi") == "native"  # (openmpi, 2) is 2 only
    assert choose_algorithm(1 << 30, 4, library="mpich", shared="mpich") == "shm"
    assert choose_algorithm(1 << 20, 2, library="intel", shared="intel") == "native"
    assert choose_algorithm(2 << 20, 2, library="intel", shared="intel") == "shm"
    assert choose_algorithm(32 << 20, 2, library=None, shared="other") == "shm"  # float16: no native, shm
    assert choose_algorithm(16 << 20, 2, library=None, shared="other") == "ring"
    assert choose_algorithm(64 << 20, 2, library="openmpi", shared=None) == "ring"  # ranks that cannot share memory


def test_auto_takes_the_single_copy_ranges_where_the_ranks_copy_between_their_buffers():
    assert choose_algorithm(256 << 10, 2, library="openmpi", shared="openmpi", single_copy=True) == "shm"
    assert choose_algorithm((256 << 10) - 1, 2, library="openmpi", shared="openmpi", single_copy=True) == "native"
    assert choose_algorithm(4 << 20, 2, library="openmpi", shared="openmpi", single_copy=True) == "shm"  # no gap
    assert choose_algorithm((1 << 20) - 1, 2, library="intel", shared="intel", single_copy=True) == "native"
    assert choose_algorithm((4 << 20) - 1, 4, library="intel", shared="intel", single_copy=True) == "native"
    assert choose_algorithm(4 << 20, 4, library="intel", shared="intel", single_copy=True) == "shm"
    assert choose_algorithm(1 << 20, 4, library="mpich", shared="mpich", single_copy=True) == "shm"
    assert choose_algorithm(512 << 10, 4, library="openmpi", shared="openmpi", single_copy=True) == "native"


def test_shm_on_a_communicator_without_mpi_runs_the_ring():
    def body(comm):
        return allreduce(np.arange(10, dtype=np.float16) + comm.rank, comm=comm, algorithm="shm")
    for result in run_world(3, body):
        assert np.array_equal(result, 3 * np.arange(10, dtype=np.float16) + 3)


def test_native_on_a_communicator_without_mpi_runs_the_ring():
    def body(comm):
        return allreduce(np.arange(10, dtype=np.float32) + comm.rank, comm=comm, algorithm="native")
    for result in run_world(3, body):
        assert np.array_equal(result, 3 * np.arange(10, dtype=np.float32) + 3)


def test_allreduce_many_names_the_bad_array():
    with pytest.raises(ValueError, match=r"arrays\[1\] must be C-contiguous"):
        run_world(1, lambda comm: allreduce_many([np.zeros(2), np.zeros((3, 3)).T], comm=comm))

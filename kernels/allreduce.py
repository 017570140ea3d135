"""`allreduce`: validate, choose the algorithm by message size, reduce in place."""

from . import ops
from .comm import as_communicator
from .rd import recursive_doubling_allreduce
from .ring import ring_allreduce

# Below these many bytes recursive doubling (log2 N exchanges) beats the ring (2(N-1) steps of segments). With 2 ranks
# both move the same bytes, so the ring only pays off once its 1 MiB segments keep the reduction in cache (~4 MiB);
# with 3-4 ranks the ring's 2(N-1)/N traffic wins from 256 KiB-1 MiB. Measured on 2 cores with
# `mpirun -np N python -m ringrun.kernels.bench --impl ring,recursive_doubling`: see BENCHMARKS.md.
SMALL_MESSAGE_BYTES = {2: 4 << 20}
DEFAULT_SMALL_MESSAGE_BYTES = 512 << 10

ALGORITHMS = {
    "ring": ring_allreduce,
    "recursive_doubling": recursive_doubling_allreduce,
}


def choose_algorithm(nbytes, size, algorithm="auto"):
    """The algorithm `auto` picks for `nbytes` on `size` ranks (or `algorithm` itself, checked, when explicit)."""
    if algorithm != "auto":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be auto, {', '.join(ALGORITHMS)}; got {algorithm!r}")
        return algorithm
    threshold = SMALL_MESSAGE_BYTES.get(size, DEFAULT_SMALL_MESSAGE_BYTES)
    return "recursive_doubling" if nbytes < threshold else "ring"


def allreduce(buf, op="sum", comm=None, algorithm="auto"):
    """Reduce `buf` across all ranks of `comm`, in place, and return it.

    buf: a C-contiguous, writeable numpy array of float16/32/64 or int32/64, the same shape on every rank.
    op: sum, prod, min, max or average (integer average is floor division). comm: an mpi4py communicator
    (default COMM_WORLD) or any object with the `kernels.comm` protocol. algorithm: auto, ring or recursive_doubling.
    Raises TypeError/ValueError for a buffer or argument it cannot reduce correctly; nothing is sent then.
    """
    flat = ops.flat_view(buf)
    ufunc = ops.ufunc_for(op)
    comm = as_communicator(comm)
    name = choose_algorithm(flat.nbytes, comm.size, algorithm)
    if comm.size > 1 and flat.size:
        ALGORITHMS[name](flat, ufunc, comm)
        ops.finish(flat, op, comm.size)
    return buf

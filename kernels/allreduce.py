"""`allreduce`: validate, choose the algorithm by message size, reduce in place."""

from . import ops
from .comm import as_communicator
from .rd import recursive_doubling_allreduce
from .ring import ring_allreduce

# Below this many bytes recursive doubling (log2 N latency terms) beats the ring (2(N-1) latency terms).
# Measured with `python -m ringrun.kernels.bench_local`: see BENCHMARKS.md.
SMALL_MESSAGE_BYTES = 1 << 16

ALGORITHMS = {
    "ring": lambda flat, ufunc, comm: ring_allreduce(flat, ufunc, comm),
    "recursive_doubling": recursive_doubling_allreduce,
}


def choose_algorithm(nbytes, algorithm="auto"):
    """The algorithm `auto` picks for a message of `nbytes` (or `algorithm` itself, checked, when explicit)."""
    if algorithm != "auto":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be auto, {', '.join(ALGORITHMS)}; got {algorithm!r}")
        return algorithm
    return "recursive_doubling" if nbytes < SMALL_MESSAGE_BYTES else "ring"


def allreduce(buf, op="sum", comm=None, algorithm="auto"):
    """Reduce `buf` across all ranks of `comm`, in place, and return it.

    buf: a C-contiguous, writeable numpy array of float16/32/64 or int32/64, the same shape on every rank.
    op: sum, prod, min, max or average (integer average is floor division). comm: an mpi4py communicator
    (default COMM_WORLD) or any object with the `kernels.comm` protocol. algorithm: auto, ring or recursive_doubling.
    Raises TypeError/ValueError for a buffer or argument it cannot reduce correctly; nothing is sent then.
    """
    flat = ops.flat_view(buf)
    ufunc = ops.ufunc_for(op)
    name = choose_algorithm(flat.nbytes, algorithm)
    comm = as_communicator(comm)
    if comm.size > 1 and flat.size:
        ALGORITHMS[name](flat, ufunc, comm)
        ops.finish(flat, op, comm.size)
    return buf

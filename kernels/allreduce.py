"""`allreduce`: validate, choose the algorithm by message size, reduce in place."""

from . import ops
from .comm import as_communicator
from .native import has_native, native_allreduce
from .rd import recursive_doubling_allreduce
from .ring import ring_allreduce

# Below these many bytes recursive doubling (log2 N exchanges) beats the ring (2(N-1) steps of segments). With 2 ranks
# both move the same bytes, so the ring only pays off once its 1 MiB segments keep the reduction in cache (~4 MiB);
# with 3-4 ranks the ring's 2(N-1)/N traffic wins from 256 KiB-1 MiB. Measured on 2 cores with
# `mpirun -np N python -m ringrun.bench.rank allreduce --impl ring,recursive_doubling`: see BENCHMARKS.md.
SMALL_MESSAGE_BYTES = {2: 4 << 20}
DEFAULT_SMALL_MESSAGE_BYTES = 512 << 10
# Below these many bytes the MPI library's own allreduce beats both (a few microseconds of Python per message cannot
# match a C allreduce), per (library, world size), else per library. Measured with `ringrun bench allreduce
# --impl ring_only,recursive_doubling,mpi` on each library, 2 and 4 ranks: see BENCHMARKS.md.
# Open MPI: its allreduce below 2 MiB on 2 and 4 ranks; MPICH: below 512 KiB on 2 ranks, 4 MiB on more; Intel MPI:
# below 2 MiB on 2 ranks, and below 256 MiB with more ranks than cores (its allreduce beat or tied the ring there).
NATIVE_BELOW = {"openmpi": 2 << 20, ("mpich", 2): 512 << 10, "mpich": 4 << 20, ("intel", 2): 2 << 20,
                "intel": 256 << 20}

ALGORITHMS = {
    "ring": ring_allreduce,
    "recursive_doubling": recursive_doubling_allreduce,
    "native": native_allreduce,
}


def choose_algorithm(nbytes, size, algorithm="auto", library=None):
    """The algorithm `auto` picks for `nbytes` on `size` ranks (or `algorithm` itself, checked, when explicit).

    library: the MPI library family whose own allreduce may be used (None when there is none for this buffer)."""
    if algorithm != "auto":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be auto, {', '.join(ALGORITHMS)}; got {algorithm!r}")
        return algorithm
    if library is not None and nbytes < NATIVE_BELOW.get((library, size), NATIVE_BELOW.get(library, 0)):
        return "native"
    threshold = SMALL_MESSAGE_BYTES.get(size, DEFAULT_SMALL_MESSAGE_BYTES)
    return "recursive_doubling" if nbytes < threshold else "ring"


def allreduce(buf, op="sum", comm=None, algorithm="auto"):
    """Reduce `buf` across all ranks of `comm`, in place, and return it.

    buf: a C-contiguous, writeable numpy array of float16/32/64 or int32/64, the same shape on every rank.
    op: sum, prod, min, max or average (integer average is floor division). comm: an mpi4py communicator
    (default COMM_WORLD) or any object with the `kernels.comm` protocol. algorithm: auto, ring, recursive_doubling
    or native (the MPI library's own; the ring where there is none).
    Raises TypeError/ValueError for a buffer or argument it cannot reduce correctly; nothing is sent then.
    """
    flat = ops.flat_view(buf)
    ufunc = ops.ufunc_for(op)
    comm = as_communicator(comm)
    library = comm.library if has_native(flat, comm) else None
    name = choose_algorithm(flat.nbytes, comm.size, algorithm, library)
    if comm.size > 1 and flat.size:
        ALGORITHMS[name](flat, ufunc, comm)
        ops.finish(flat, op, comm.size)
    return buf

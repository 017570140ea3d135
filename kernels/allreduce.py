"""`allreduce`: validate, choose the algorithm by message size, reduce in place."""

import numpy as np

from . import ops
from .comm import as_communicator
from .native import NATIVE_DTYPES, has_native, native_allreduce
from .rd import recursive_doubling_allreduce
from .ring import ring_allreduce
from .shm import available as shm_available, shm_allreduce, single_copy as shm_single_copy

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

# Where the shared-memory allreduce (kernels/shm.py) beats all of the above when the ranks can use it: [from, below)
# byte ranges per (library, world size), else per library, else for any MPI. Measured with `ringrun bench allreduce
# --impl ring_only,shm,mpi_inplace,mpi` on each library at 2 and 4 ranks (BENCHMARKS.md): on 2 ranks Open MPI's and
# MPICH's shared-memory transports make the ring as fast from 2 to 32 MiB (the buffer still in cache); Intel MPI's own
# allreduce wins below 2-4 MiB; on 4 ranks MPICH's loses to shared memory from 64 KiB.
SHM_RANGES = {
    ("openmpi", 2): ((64 << 10, 2 << 20), (32 << 20, None)),
    "openmpi": ((64 << 10, 1 << 20), (32 << 20, None)),
    ("mpich", 2): ((64 << 10, 2 << 20), (32 << 20, None)),
    "mpich": ((64 << 10, None),),
    ("intel", 2): ((2 << 20, None),),
    "intel": ((4 << 20, None),),
    None: ((32 << 20, None),),
}

# The same where every rank can copy straight between the others' buffers (`kernels/cma.py`: the ranks of one user,
# ptrace allowed; `shm.Arena.single_copy`), which needs no bounce through slots: measured with `ringrun bench
# allreduce --impl shm,mpi,mpi_inplace` on each library at 2 and 4 ranks, every call on a buffer out of the caches
# (BENCHMARKS.md).
# From 256 KiB on 2 ranks of Open MPI and MPICH (Intel MPI's own allreduce wins to 1 MiB), from 1 MiB on 4 ranks
# (oversubscribed: Intel MPI's own wins to 4 MiB); below, each library's own call beats every Python path.
SINGLE_COPY_RANGES = {
    ("openmpi", 2): ((256 << 10, None),),
    ("mpich", 2): ((256 << 10, None),),
    ("intel", 2): ((1 << 20, None),),
    "intel": ((4 << 20, None),),
    None: ((1 << 20, None),),
}

ALGORITHMS = {
    "ring": ring_allreduce,
    "recursive_doubling": recursive_doubling_allreduce,
    "native": native_allreduce,
    "shm": shm_allreduce,
}


def native_below(library, size):
    """Below this many bytes `auto` hands a message to `library`'s own allreduce on `size` ranks (0: never)."""
    return NATIVE_BELOW.get((library, size), NATIVE_BELOW.get(library, 0)) if library is not None else 0


def shm_ranges(family, size, single_copy=False):
    """The [from, below) byte ranges (below None: no end) where `auto` takes shared memory for MPI library `family`,
    through slots or (`single_copy`) straight between the buffers."""
    table = SINGLE_COPY_RANGES if single_copy else SHM_RANGES
    return table.get((family, size)) or table.get(family) or table[None]


def in_shm_range(family, size, nbytes, single_copy=False):
    return any(low <= nbytes and (high is None or nbytes < high)
               for low, high in shm_ranges(family, size, single_copy))


def choose_algorithm(nbytes, size, algorithm="auto", library=None, shared=None, single_copy=False):
    """The algorithm `auto` picks for `nbytes` on `size` ranks (or `algorithm` itself, checked, when explicit).

    library: the MPI library family whose own allreduce may be used (None when there is none for this buffer).
    shared: the MPI library family of ranks that can run the shared-memory allreduce (the same number of ranks on
    every host), whose measured ranges apply; None when they cannot. single_copy: whether those ranks copy straight
    between their buffers (the ranges of SINGLE_COPY_RANGES then)."""
    if algorithm != "auto":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be auto, {', '.join(ALGORITHMS)}; got {algorithm!r}")
        return algorithm
    if shared is not None and in_shm_range(shared, size, nbytes, single_copy):
        return "shm"
    if nbytes < native_below(library, size):
        return "native"
    threshold = SMALL_MESSAGE_BYTES.get(size, DEFAULT_SMALL_MESSAGE_BYTES)
    return "recursive_doubling" if nbytes < threshold else "ring"


def native_limit(comm):
    """Below this many bytes `auto` hands every native-dtype message on `comm` to its MPI library (0: never): the
    library's threshold, or where shared memory starts if that is lower. Computed once per MPIComm."""
    limit = getattr(comm, "native_limit", 0)
    if limit is None:  # an MPIComm not asked yet
        ranges = shm_ranges(comm.library, comm.size) + shm_ranges(comm.library, comm.size, single_copy=True)
        limit = min([native_below(comm.library, comm.size)] + [low for low, _ in ranges]) if comm.size > 1 else 0
        comm.native_limit = limit
    return limit


def shared_memory(comm, nbytes, algorithm):
    """(family, single_copy) for `choose_algorithm(shared=..., single_copy=...)`; family None when shared memory is
    out: asked (collectively, once per communicator) only of MPI communicators, for `auto` and a message size in one
    of the measured shared-memory ranges; single_copy then asks the host's ranks, collectively once, whether they can
    copy straight between their buffers."""
    if (algorithm == "auto" and getattr(comm, "comm", None) is not None and comm.size > 1
            and (in_shm_range(comm.library, comm.size, nbytes)
                 or in_shm_range(comm.library, comm.size, nbytes, single_copy=True)) and shm_available(comm)):
        return comm.library, shm_single_copy(comm)
    return None, False


# The small-message path, per communicator object a caller passes (None included): (that object, the byte limit of
# `native_limit`, its mpi4py Allreduce, MPI.IN_PLACE, {op: MPI op}). Filled by the first `allreduce` on it.
_FAST = {}
_NDARRAY = np.ndarray
_CHOSEN = {}  # (id(communicator), bytes, dtype, algorithm) -> (communicator, the algorithm chosen)


def allreduce(buf, op="sum", comm=None, algorithm="auto"):
    """Reduce `buf` across all ranks of `comm`, in place, and return it.

    buf: a C-contiguous, writeable numpy array of float16/32/64 or int32/64, the same shape on every rank.
    op: sum, prod, min, max or average (integer average is floor division). comm: an mpi4py communicator
    (default COMM_WORLD) or any object with the `kernels.comm` protocol. algorithm: auto, ring, recursive_doubling,
    native (the MPI library's own; the ring where there is none) or shm (shared memory inside each host, the ring
    between hosts; the ring where the ranks cannot share memory).
    Raises TypeError/ValueError for a buffer or argument it cannot reduce correctly; nothing is sent then.
    """
    # The small-message path: what choose_algorithm picks for a message below the library's threshold is the
    # library's own allreduce, so a buffer that passes these checks goes straight to it; about 0.3 us of Python
    # (BENCHMARKS.md). Anything else takes the full path below, which reports what is wrong with it.
    fast = _FAST.get(id(comm))
    if fast is not None and fast[0] is comm and algorithm == "auto" and buf.__class__ is _NDARRAY \
            and buf.nbytes < fast[1] and buf.dtype in NATIVE_DTYPES:
        flags = buf.flags
        mpi_op = fast[4].get(op)
        if mpi_op is not None and flags.c_contiguous and flags.writeable:
            fast[2](fast[3], buf, mpi_op)
            return buf
    flat = ops.flat_view(buf)
    ufunc = ops.ufunc_for(op)
    mpi = as_communicator(comm)
    limit = native_limit(mpi)
    if limit and fast is None:
        remember_fast_path(comm, mpi, limit)
    key = (id(mpi), flat.nbytes, flat.dtype, algorithm)
    held = _CHOSEN.get(key)
    if held is not None and held[0] is mpi:  # a training loop reduces the same sizes every step: choose once
        name = held[1]
    else:
        library = mpi.library if has_native(flat, mpi) else None
        name = choose_algorithm(flat.nbytes, mpi.size, algorithm, library, *shared_memory(mpi, flat.nbytes, algorithm))
        if len(_CHOSEN) >= 1024:
            _CHOSEN.clear()
        _CHOSEN[key] = (mpi, name)
    if mpi.size > 1 and flat.size:
        ALGORITHMS[name](flat, ufunc, mpi)
        ops.finish(flat, op, mpi.size)
    return buf


def remember_fast_path(comm, mpi, limit):
    """Let later calls with the same `comm` object take the small-message path (see `allreduce`)."""
    from mpi4py import MPI

    if len(_FAST) >= 64:  # communicators come and go: keep the table small
        _FAST.clear()
    _FAST[id(comm)] = (comm, limit, mpi.comm.Allreduce, MPI.IN_PLACE,
                       {"sum": MPI.SUM, "prod": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX})

"""The MPI library's own allreduce, used by `allreduce` for the message sizes where it beats ringrun's algorithms.

Only an mpi4py communicator has one (`MPIComm.comm`), and MPI has no float16 reduction: elsewhere `native_allreduce`
runs the ring instead, so asking for it is always safe. The small-message path is a few hundred nanoseconds of Python
on top of mpi4py's call: the op table is built once.
"""

import functools

import numpy as np

from .ring import ring_allreduce

NATIVE_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int32", "int64"))


def has_native(flat, comm):
    """Whether `comm` can reduce `flat` with the MPI library's own allreduce."""
    return flat.dtype in NATIVE_DTYPES and getattr(comm, "comm", None) is not None


@functools.lru_cache(maxsize=1)
def _mpi():
    from mpi4py import MPI

    return MPI.IN_PLACE, {np.add: MPI.SUM, np.multiply: MPI.PROD, np.minimum: MPI.MIN, np.maximum: MPI.MAX}


def native_allreduce(flat, ufunc, comm):
    if not has_native(flat, comm):
        return ring_allreduce(flat, ufunc, comm)
    in_place, ops = _mpi()
    comm.comm.Allreduce(in_place, flat, ops[ufunc])
    return flat

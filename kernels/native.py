"""The MPI library's own allreduce, used by `allreduce` for the message sizes where it beats ringrun's algorithms.

Only an mpi4py communicator has one (`MPIComm.comm`), and MPI has no float16 reduction: elsewhere `native_allreduce`
runs the ring instead, so asking for it is always safe.
"""

import numpy as np

from .ring import ring_allreduce

NATIVE_DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "int32", "int64"))


def has_native(flat, comm):
    """Whether `comm` can reduce `flat` with the MPI library's own allreduce."""
    return getattr(comm, "comm", None) is not None and flat.dtype in NATIVE_DTYPES


def native_allreduce(flat, ufunc, comm):
    if not has_native(flat, comm):
        return ring_allreduce(flat, ufunc, comm)
    from mpi4py import MPI

    op = {np.add: MPI.SUM, np.multiply: MPI.PROD, np.minimum: MPI.MIN, np.maximum: MPI.MAX}[ufunc]
    comm.comm.Allreduce(MPI.IN_PLACE, flat, op=op)
    return flat

"""Tensor fusion (Horovod's idea): many small arrays packed into one buffer, one allreduce per buffer, unpacked.

Arrays are grouped by dtype in the order given; an array larger than the threshold is reduced on its own, in place.
A `Fusion` keeps its buffers between calls, so a training loop packs into the same memory every step.
"""

import numpy as np

from . import ops
from .allreduce import allreduce
from .comm import as_communicator

DEFAULT_THRESHOLD = 64 << 20


class Fusion:
    def __init__(self, threshold=DEFAULT_THRESHOLD):
        if not isinstance(threshold, int) or threshold <= 0:
            raise ValueError(f"threshold must be a positive number of bytes, got {threshold!r}")
        self.threshold = threshold
        self._buffers = {}

    def _buffer(self, dtype, nbytes):
        buf = self._buffers.get(dtype)
        if buf is None or buf.nbytes < nbytes:
            buf = np.empty(nbytes // dtype.itemsize, dtype=dtype)
            self._buffers[dtype] = buf
        return buf

    def allreduce_many(self, arrays, op="sum", comm=None, algorithm="auto"):
        """Allreduce every array in place; results identical to reducing each one alone. Returns `arrays`."""
        flats = [ops.flat_view(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
        ops.ufunc_for(op)
        comm = as_communicator(comm)
        by_dtype = {}
        for flat in flats:
            by_dtype.setdefault(flat.dtype, []).append(flat)
        for dtype, group in by_dtype.items():
            small = [f for f in group if f.nbytes <= self.threshold]
            for flat in group:
                if flat.nbytes > self.threshold:
                    allreduce(flat, op, comm, algorithm)
            if small:
                capacity = min(self.threshold, sum(f.nbytes for f in small))
                self._reduce_packed(small, self._buffer(dtype, capacity), op, comm, algorithm)
        return arrays

    @staticmethod
    def _reduce_packed(flats, buffer, op, comm, algorithm):
        batch, fill = [], 0

        def flush():
            allreduce(buffer[:fill], op, comm, algorithm)
            offset = 0
            for flat in batch:
                flat[:] = buffer[offset:offset + flat.size]
                offset += flat.size

        for flat in flats:
            if fill + flat.size > buffer.size:
                flush()
                batch, fill = [], 0
            buffer[fill:fill + flat.size] = flat
            batch.append(flat)
            fill += flat.size
        if batch:
            flush()


def allreduce_many(arrays, op="sum", comm=None, threshold=DEFAULT_THRESHOLD, algorithm="auto"):
    """Fused allreduce of many arrays, in place, with a buffer used for this call only (see `Fusion` to keep it)."""
    return Fusion(threshold).allreduce_many(arrays, op, comm, algorithm)

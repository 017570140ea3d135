"""Tensor fusion (Horovod's idea, without most of its copies): many arrays, one collective per dtype.

Arrays are grouped by dtype in the order given. Those smaller than `direct_bytes` are packed into fusion buffers (at
most `threshold` bytes each); then the buffers and the large arrays are reduced together by ONE collective over all
of them, the ring or the shared-memory allreduce (`ring.Joined`: the large arrays are never copied, only cut where
they end). Where the host's ranks copy straight between their buffers (`shm.Arena.direct`), shared memory takes
one single-copy round per buffer and large array instead: no slot, one read and one write of each byte. When the
whole group is small enough that `allreduce` would pick neither (the MPI library's own allreduce, recursive
doubling), each buffer and large array is reduced on its own with that algorithm instead. The sums are those of
reducing every array alone (bitwise for exactly representable values; otherwise up to the order of floating-point
additions, which any change of algorithm or chunking moves). A `Fusion` keeps its buffers between calls, so a training loop packs into the
same memory every step.
"""

import numpy as np

from . import ops
from .allreduce import ALGORITHMS, allreduce, choose_algorithm, shared_memory
from .comm import as_communicator
from .native import has_native
from .ring import Joined

DEFAULT_THRESHOLD = 64 << 20
DEFAULT_DIRECT_BYTES = 1 << 20  # from here a message runs at the ring's full speed: measured, BENCHMARKS.md


class Fusion:
    def __init__(self, threshold=DEFAULT_THRESHOLD, direct_bytes=DEFAULT_DIRECT_BYTES):
        """threshold: the largest fusion buffer (bytes); direct_bytes: arrays at least this large are reduced where
        they are, never packed (packing only adds two copies to a message large enough to run at full speed)."""
        for name, value in (("threshold", threshold), ("direct_bytes", direct_bytes)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
        self.threshold, self.direct_bytes = threshold, min(direct_bytes, threshold + 1)
        self._buffers = {}

    def _buffer(self, dtype, index, nbytes):
        buf = self._buffers.get((dtype, index))
        if buf is None or buf.nbytes < nbytes:
            buf = np.empty(nbytes // dtype.itemsize, dtype=dtype)
            self._buffers[(dtype, index)] = buf
        return buf

    def allreduce_many(self, arrays, op="sum", comm=None, algorithm="auto"):
        """Allreduce every array in place, as if each were reduced alone (see the module doc). Returns `arrays`."""
        flats = [ops.flat_view(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
        ufunc = ops.ufunc_for(op)
        comm = as_communicator(comm)
        if comm.size == 1:
            return arrays
        by_dtype = {}
        for flat in flats:
            if flat.size:
                by_dtype.setdefault(flat.dtype, []).append(flat)
        for dtype, group in by_dtype.items():
            packs = self._pack(dtype, [f for f in group if f.nbytes < self.direct_bytes])
            pieces = [buffer for buffer, _ in packs] + [f for f in group if f.nbytes >= self.direct_bytes]
            total = sum(p.nbytes for p in pieces)
            library = comm.library if has_native(pieces[0], comm) else None
            shared, single = shared_memory(comm, total, algorithm)
            name = choose_algorithm(total, comm.size, algorithm, library, shared, single)
            if name == "shm" and single:  # straight between the buffers: one round per piece, none through slots
                for piece in pieces:
                    ALGORITHMS[name](piece, ufunc, comm)
                    ops.finish(piece, op, comm.size)
            elif name in ("ring", "shm"):  # both reduce a Joined buffer: one collective over every piece
                ALGORITHMS[name](Joined(pieces), ufunc, comm)
                for piece in pieces:
                    ops.finish(piece, op, comm.size)
            else:
                for piece in pieces:
                    allreduce(piece, op, comm, algorithm)
            for buffer, batch in packs:
                offset = 0
                for flat in batch:
                    flat[:] = buffer[offset:offset + flat.size]
                    offset += flat.size
        return arrays

    def _pack(self, dtype, small):
        """Copy `small` into fusion buffers of at most `threshold` bytes: [(buffer view, its arrays)]."""
        packs, batch, fill = [], [], 0
        capacity = max(1, min(self.threshold, sum(f.nbytes for f in small)) // dtype.itemsize)

        def close():
            packs.append((self._buffer(dtype, len(packs), capacity * dtype.itemsize)[:fill], batch))

        for flat in small:
            if batch and fill + flat.size > capacity:
                close()
                batch, fill = [], 0
            if not batch:
                buffer = self._buffer(dtype, len(packs), capacity * dtype.itemsize)
            buffer[fill:fill + flat.size] = flat
            batch.append(flat)
            fill += flat.size
        if batch:
            close()
        return packs


def allreduce_many(arrays, op="sum", comm=None, threshold=DEFAULT_THRESHOLD, algorithm="auto",
                   direct_bytes=DEFAULT_DIRECT_BYTES):
    """Fused allreduce of many arrays, in place, with buffers used for this call only (see `Fusion` to keep them)."""
    return Fusion(threshold, direct_bytes).allreduce_many(arrays, op, comm, algorithm)

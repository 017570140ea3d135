"""Broadcast and allgather over the communicator protocol, for parameter sync."""

import numpy as np

from . import ops
from .comm import as_communicator

BCAST_TAG = 0x4243  # "BC"
GATHER_TAG = 0x4147  # "AG"


def broadcast(buf, root=0, comm=None):
    """Copy root's `buf` into `buf` on every rank, in place (binomial tree: log2 N rounds). Returns buf."""
    flat = ops.flat_view(buf)
    comm = as_communicator(comm)
    n = comm.size
    if not isinstance(root, int) or not 0 <= root < n:
        raise ValueError(f"root must be a rank in 0..{n - 1}, got {root!r}")
    if n == 1 or flat.size == 0:
        return buf
    relative = (comm.rank - root) % n
    mask = 1
    while mask < n:  # receive once, from the rank that differs in our lowest set bit
        if relative & mask:
            comm.waitall([comm.irecv(flat, (comm.rank - mask) % n, BCAST_TAG)])
            break
        mask <<= 1
    mask >>= 1
    sends = []
    while mask > 0:
        if relative + mask < n:
            sends.append(comm.isend(flat, (comm.rank + mask) % n, BCAST_TAG))
        mask >>= 1
    comm.waitall(sends)
    return buf


def allgather(buf, comm=None):
    """Every rank's `buf` concatenated along the first axis, in rank order, as a new array.

    The first dimension may differ between ranks; the other dimensions and the dtype must agree (ValueError
    on every rank otherwise). Ring: N-1 steps, each forwarding the block received in the step before.
    """
    flat = ops.flat_view(buf)
    comm = as_communicator(comm)
    n, r = comm.size, comm.rank
    rows = buf.shape[0] if buf.ndim else 1
    row_shape = buf.shape[1:] if buf.ndim else ()
    # hash() of a tuple of ints is the same in every process (only str/bytes hashing is salted).
    meta = np.array([rows, flat.nbytes, ops.DTYPES.index(buf.dtype), hash(row_shape) & 0x7FFFFFFF], dtype=np.int64)
    metas = _ring_gather_equal(meta, comm)
    if len({(m[2], m[3]) for m in metas}) != 1:
        raise ValueError("allgather: ranks disagree on dtype or trailing shape")
    sizes = [int(m[1]) // buf.itemsize for m in metas]
    out = np.empty(sum(sizes), dtype=buf.dtype)
    offsets = np.cumsum([0] + sizes)
    out[offsets[r]:offsets[r + 1]] = flat
    _ring_gather(out, offsets, comm)
    return out.reshape((int(sum(m[0] for m in metas)),) + row_shape)


def _ring_gather_equal(item, comm):
    n = comm.size
    out = np.empty(n * item.size, dtype=item.dtype)
    offsets = [i * item.size for i in range(n + 1)]
    out[offsets[comm.rank]:offsets[comm.rank + 1]] = item
    _ring_gather(out, offsets, comm)
    return out.reshape(n, item.size)


def _ring_gather(out, offsets, comm):
    """Fill every rank's block of `out` (rank i's block is out[offsets[i]:offsets[i+1]]); empty blocks skip both sides."""
    n, r = comm.size, comm.rank
    nxt, prv = (r + 1) % n, (r - 1) % n
    for k in range(n - 1):
        send_block, recv_block = (r - k) % n, (r - k - 1) % n
        requests = []
        if offsets[recv_block + 1] > offsets[recv_block]:
            requests.append(comm.irecv(out[offsets[recv_block]:offsets[recv_block + 1]], prv, GATHER_TAG))
        if offsets[send_block + 1] > offsets[send_block]:
            requests.append(comm.isend(out[offsets[send_block]:offsets[send_block + 1]], nxt, GATHER_TAG))
        comm.waitall(requests)


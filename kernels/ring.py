"""Pipelined ring allreduce (reduce-scatter, then allgather) over the communicator protocol.

The buffer is cut into N chunks (N = world size; the first `len % N` are one element longer) and every chunk into the
same number of segments. Rank r only ever receives from prev = r-1 and sends to next = r+1 (mod N), so the job is one
stream of 2(N-1) steps x segments arriving from prev, in order:

    reduce-scatter step t = 0..N-2:  send chunk (r-t) % N,   receive chunk (r-t-1) % N into scratch, reduce into it
    allgather     step k = 0..N-2:   send chunk (r+1-k) % N, receive chunk (r-k) % N in place (already reduced)

The chunk received at step t is exactly the chunk sent at step t+1, so each segment is forwarded the moment it is
reduced (or, in the allgather, received): segment j of step t+1 is on the wire while segment j+1 of step t is still
being reduced. Receives are posted `depth` segments ahead into a reused scratch ring; empty segments skip both the send
and its matching receive. A buffer region is never received into while a send from it is pending: the allgather
receive into chunk (r-k) first waits for the reduce-scatter send of that chunk (step k).
Every rank sends and receives 2(N-1)/N of the buffer.
"""

import bisect

import numpy as np

TAG = 0x5249  # "RI"
SEGMENT_BYTES = 1 << 20  # measured best of 64K..4M at 256K..64M messages, 2 ranks (BENCHMARKS.md)
DEPTH = 2


class Joined:
    """Arrays of one dtype (1-D, contiguous) seen as one buffer: `joined[a:b]` is a view of the array holding
    [a, b), which must not cross one of the `cuts` (the offsets where an array ends and the next begins)."""

    __slots__ = ("pieces", "starts", "cuts", "size", "dtype", "itemsize")

    def __init__(self, pieces):
        self.pieces = [p for p in pieces if p.size]
        self.starts = [0]
        for piece in self.pieces:
            self.starts.append(self.starts[-1] + piece.size)
        self.cuts = self.starts[1:-1]
        self.size = self.starts[-1]
        self.dtype = self.pieces[0].dtype if self.pieces else np.dtype("float32")
        self.itemsize = self.dtype.itemsize

    def __getitem__(self, span):
        i = bisect.bisect_right(self.starts, span.start) - 1
        offset = self.starts[i]
        assert span.stop <= self.starts[i + 1], "a segment crosses two arrays"
        return self.pieces[i][span.start - offset:span.stop - offset]

    def spans(self, a, b):
        """[(view, offset)]: the views of the arrays that hold [a, b), each with its offset from a."""
        i = bisect.bisect_right(self.starts, a) - 1
        origin, result = a, []
        while a < b:
            stop = min(b, self.starts[i + 1])
            result.append((self.pieces[i][a - self.starts[i]:stop - self.starts[i]], a - origin))
            a, i = stop, i + 1
        return result


def bounds(length, parts):
    """Offsets [0, ..., length] of `parts` near-equal pieces; the first `length % parts` are one longer."""
    base, extra = divmod(length, parts)
    return [i * base + min(i, extra) for i in range(parts + 1)]


def _cut(a, b, cuts):
    """[a, b) split at every offset of the sorted `cuts` strictly inside it."""
    inside = cuts[bisect.bisect_right(cuts, a):bisect.bisect_left(cuts, b)]
    edges = [a, *inside, b]
    return list(zip(edges, edges[1:]))


def ring_allreduce(flat, ufunc, comm, segment_bytes=SEGMENT_BYTES, depth=DEPTH):
    """Reduce `flat` in place across `comm` with `ufunc`. Every rank ends with the same values.

    flat: a 1-D contiguous array, or a `Joined` (several arrays reduced as one buffer, none copied: segments are also
    cut at its `cuts`, so that every segment is a view of one array)."""
    n, r = comm.size, comm.rank
    if n == 1 or flat.size == 0:
        return flat
    nxt, prv = (r + 1) % n, (r - 1) % n
    chunk = bounds(flat.size, n)
    longest = chunk[1] - chunk[0]
    parts = max(1, -(-longest * flat.itemsize // segment_bytes))
    seg_elems = -(-longest // parts)
    # segments[c] = [(start, stop), ...] of chunk c; the same split on every rank, so messages match.
    cuts = getattr(flat, "cuts", ())
    segments = []
    for c in range(n):
        inner = bounds(chunk[c + 1] - chunk[c], parts)
        segments.append([piece for j in range(parts) if inner[j + 1] > inner[j]
                         for piece in _cut(chunk[c] + inner[j], chunk[c] + inner[j + 1], cuts)])
    steps = 2 * (n - 1)

    def sent_chunk(t):
        return (r - t) % n if t < n - 1 else (r + 1 - (t - (n - 1))) % n

    # The receive stream: (step, start, stop) in the order prev sends them.
    stream = [(t, a, b) for t in range(steps) for a, b in segments[(sent_chunk(t) - 1) % n]]
    scratch = np.empty(depth * seg_elems, dtype=flat.dtype)
    rs_sends = {}  # segment start -> its reduce-scatter send, until an allgather receive into it waits for it
    ag_sends = []
    posted = {}
    next_post = 0

    def pump(limit):
        """Post receives up to stream index `limit` (exclusive), stopping at one whose region is not sent yet."""
        nonlocal next_post
        while next_post < min(limit, len(stream)):
            t, a, b = stream[next_post]
            if t < n - 1:
                slot = (next_post % depth) * seg_elems
                target = scratch[slot:slot + (b - a)]
            else:
                if a not in rs_sends:
                    return  # its reduce-scatter send is issued when an earlier item is processed
                rs_sends.pop(a).wait()
                target = flat[a:b]
            posted[next_post] = (comm.irecv(target, prv, TAG), target)
            next_post += 1

    for a, b in segments[sent_chunk(0)]:
        rs_sends[a] = comm.isend(flat[a:b], nxt, TAG)
    for i, (t, a, b) in enumerate(stream):
        pump(i + depth)
        request, target = posted.pop(i)
        request.wait()
        segment = flat[a:b]
        if t < n - 1:
            ufunc(segment, target, out=segment)
        if t + 1 < n - 1:
            rs_sends[a] = comm.isend(segment, nxt, TAG)
        elif t + 1 < steps:
            ag_sends.append(comm.isend(segment, nxt, TAG))
    comm.waitall(list(rs_sends.values()) + ag_sends)
    return flat

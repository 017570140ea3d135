"""The measured floor of an allreduce on one host: the memory traffic it cannot avoid, and nothing else.

Every rank reads its slice of every rank's input once (N slices of S/N: S bytes), reduces them in cache, and writes
the result once to every rank's copy of that slice (S bytes) - as if it could reach the other ranks' memory directly,
which is the least any allreduce must do. Here the N inputs are the N slices of this rank's own buffer, reduced and
written back in place, so nothing is exchanged and nothing can be verified: it is a yardstick, timed like the
allreduce impls and run in the same ranks at the same time (so it meets the same memory-bandwidth contention), and
fed as they are: the bench's next buffer of its rotating pool (bench/rank.py `Pool`), which comes from memory, not
the caches, when the pool is larger than them. `ringrun bench` adds it to every allreduce run.
"""

WORLD = "mpi"
CHUNK_BYTES = 256 << 10  # a partial result this large stays in cache while it is written N times


def floor(world):
    """The floor on `world`'s ranks: run(buf) reads buf's N slices (standing for slice j of every rank's input),
    reduces them chunk by chunk in cache and writes the result to every slice, in place."""
    import numpy as np

    n = world.size
    held = {}

    def run(buf):
        if buf.dtype not in held:
            held.clear()
            held[buf.dtype] = np.empty(max(1, CHUNK_BYTES // buf.itemsize), dtype=buf.dtype)
        scratch, flat = held[buf.dtype], buf.reshape(-1)
        length = -(-flat.size // n)  # the longest slice (the first); the last ones may be shorter or empty
        for start in range(0, length, scratch.size):
            stop = min(start + scratch.size, length)
            part = scratch[:stop - start]
            cut = [(min(k * length + start, flat.size), min(k * length + stop, flat.size)) for k in range(n)]
            (a, b), (c, d) = cut[0], cut[min(1, n - 1)]
            if n > 1 and d - c == part.size:
                np.add(flat[a:b], flat[c:d], out=part)
            else:
                part[...] = flat[a:b]
                if n > 1:
                    np.add(part[:d - c], flat[c:d], out=part[:d - c])
            for c, d in cut[2:]:
                np.add(part[:d - c], flat[c:d], out=part[:d - c])
            for c, d in cut:
                flat[c:d] = part[:d - c]
        return buf
    run.reference = True  # not an allreduce: timed, never verified
    return run


IMPLS = {"allreduce": {"floor": floor}}

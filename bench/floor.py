"""The measured floor of an allreduce on one host: the memory traffic it cannot avoid, and nothing else.

Every rank reads its slice of every rank's input once (N slices of S/N: S bytes), reduces them in cache, and writes
the result once to every rank's copy of that slice (S bytes) - as if it could reach the other ranks' memory directly,
which is the least any allreduce must do. Here all of it is this rank's private memory, so nothing is exchanged and
nothing can be verified: it is a yardstick, timed like the allreduce impls and run in the same ranks at the same time
(so it meets the same memory-bandwidth contention). `ringrun bench` adds it to every allreduce run.
"""

WORLD = "mpi"
CHUNK_BYTES = 256 << 10  # a partial result this large stays in cache while it is written N times


def floor(world):
    import numpy as np

    n = world.size
    held = {}

    def run(buf):
        key = (buf.size, buf.dtype)
        if key not in held:
            held.clear()  # one size at a time: the inputs are as large as the buffer
            length = -(-buf.size // n)  # the longest slice; the inputs are padded to n of them
            held[key] = (np.ones(n * length, dtype=buf.dtype), np.empty(max(1, CHUNK_BYTES // buf.itemsize),
                                                                         dtype=buf.dtype), length)
        inputs, scratch, length = held[key]
        flat = buf.reshape(-1)
        for start in range(0, length, scratch.size):
            stop = min(start + scratch.size, length)
            part = scratch[:stop - start]
            if n == 1:
                part[...] = inputs[start:stop]
            else:
                np.add(inputs[start:stop], inputs[length + start:length + stop], out=part)
            for k in range(2, n):
                np.add(part, inputs[k * length + start:k * length + stop], out=part)
            for k in range(n):
                a, b = min(k * length + start, flat.size), min(k * length + stop, flat.size)
                flat[a:b] = part[:b - a]
        return buf
    run.reference = True  # not an allreduce: timed, never verified
    return run


IMPLS = {"allreduce": {"floor": floor}}

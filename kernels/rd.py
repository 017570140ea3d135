"""Recursive-doubling allreduce: log2(N) exchanges of the whole buffer, latency-optimal for small messages.

For a world size that is not a power of two, the first 2*rem ranks (rem = N - largest power of two) pair up: each even
rank hands its data to the odd rank above it and sits out; the remaining power-of-two group runs recursive doubling;
the odd ranks then hand the result back. Each exchange combines "lower rank's partial op higher rank's partial", so
every rank computes the same tree and ends with bitwise identical values.
"""

import numpy as np

TAG = 0x5244  # "RD"


def recursive_doubling_allreduce(flat, ufunc, comm):
    n, r = comm.size, comm.rank
    if n == 1 or flat.size == 0:
        return flat
    p2 = 1 << (n.bit_length() - 1)
    rem = n - p2
    scratch = np.empty_like(flat)
    if r < 2 * rem:
        if r % 2 == 0:
            comm.waitall([comm.isend(flat, r + 1, TAG)])
            newrank = -1
        else:
            comm.waitall([comm.irecv(scratch, r - 1, TAG)])
            ufunc(scratch, flat, out=flat)
            newrank = r // 2
    else:
        newrank = r - rem
    if newrank >= 0:
        mask = 1
        while mask < p2:
            partner_new = newrank ^ mask
            partner = partner_new * 2 + 1 if partner_new < rem else partner_new + rem
            comm.waitall([comm.irecv(scratch, partner, TAG), comm.isend(flat, partner, TAG)])
            if partner_new < newrank:
                ufunc(scratch, flat, out=flat)
            else:
                ufunc(flat, scratch, out=flat)
            mask <<= 1
    if r < 2 * rem:
        if r % 2 == 1:
            comm.waitall([comm.isend(flat, r - 1, TAG)])
        else:
            comm.waitall([comm.irecv(flat, r + 1, TAG)])
    return flat

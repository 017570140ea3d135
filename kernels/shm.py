"""Shared-memory allreduce for the ranks of one host, composed with the ring between hosts (hierarchical).

The ranks of a host share one MPI-3 window (`MPI_Win_allocate_shared` over `Split_type(COMM_TYPE_SHARED)`): every
local rank owns `SLOTS` slots of `SLOT_BYTES` and one row of progress counters. The buffer is reduced in rounds of
one slot; round i uses slot i % SLOTS, and local rank j of L owns slice j of every round:

    1. copy in:  wait until every local rank is done with round i - SLOTS (the last user of this slot), then copy
                 this round's part of the buffer into my slot, all but slice j (which only I read); publish
                 COPIED = i + 1.
    2. reduce:   wait for every COPIED >= i + 1; reduce slice j of my buffer with slice j of every other slot (local
                 rank j+1 first, then the rest in rank order) into slice j of my slot; with several hosts, allreduce
                 that slice with local rank j of every other host (the ring, over a communicator of one rank per
                 host); copy it into my buffer; publish REDUCED = i + 1.
    3. copy out: wait for every REDUCED >= i + 1; copy slice k of local rank k's slot into my buffer, for every
                 k != j; publish DONE = i + 1.

Nothing else synchronizes: no barrier, so a rank copies round i + 1 in while a slower one still copies round i out.
A slot stays in the cores' caches, so the buffer itself is read once and written once from memory and the slots are
touched in cache: the memory traffic of the floor `ringrun bench` measures (read every input once, write the result
once). A ring through MPI's shared-memory transport reads and writes each byte it moves more often (BENCHMARKS.md
has both). A slice is reduced by exactly one rank and copied by all, so every rank ends with bitwise identical
values. Counters only grow (across calls too), so nothing is reset between calls; every call must be collective over
the communicator, with the same length, as for any allreduce.

Two more paths share the arena and its counters (the round numbers run on across all three):
- a message of at most SMALL_BYTES takes one round: every rank copies it whole into its slot, publishes COPIED,
  waits for every rank's, reduces all the slots in rank order into its buffer and publishes DONE; the next use of
  the slot, two rounds on, waits for that DONE (double-buffered: nearly always already seen). One flag round trip,
  no barrier; every rank reduces in the same order, so all end bitwise identical.
- where the ranks may copy straight between each other's memory (`kernels/cma.py`, probed once when the arena is
  made, collectively), a larger plain array takes the single-copy round: every rank publishes its buffer's address
  (COPIED); for each chunk of its own slice, rank j reads the others' part into a cache-sized scratch, reduces it
  into its buffer and writes the result into the others' buffers; then DONE, and no rank returns before every rank's
  DONE. Each byte of every buffer is read once and written once - the floor's traffic - and no slot is touched.

Waiting spins on the counters and yields the core after a few tries (ranks may outnumber cores). x86 keeps stores
in order, but a counter is still published after an `MPI_Win_sync` and read before one, as MPI's memory model asks.
The window lives as long as the process (freeing it is collective, and a rank may exit early).
"""

import os

import numpy as np

from . import cma
from .ring import bounds, ring_allreduce

SLOT_BYTES = 512 << 10  # measured best of 128K-2M x 2-4 slots at 1-64 MiB, 2 ranks (BENCHMARKS.md)
SLOTS = 2
SMALL_BYTES = 64 << 10  # up to this, one round of `Arena.small` (every rank reduces it all): measured, BENCHMARKS.md
ROW = 8  # int64 counters per local rank: one 64-byte cache line each, so ranks never write the same line
COPIED, REDUCED, DONE, ADDRESS, PID, PROBE, TOKEN = 0, 1, 2, 3, 4, 5, 6
CHUNK_BYTES = 256 << 10  # the single-copy path's unit: a peer's part read into cache, reduced, written back
SPINS_BEFORE_YIELD = 32


class Topology:
    """How a communicator's ranks lie on hosts: `node` (mpi4py, the ranks sharing memory with this one) and `cross`
    (a protocol communicator of the ranks with this local rank on every host; None on one host). `arena` is made on
    first use. `usable` is False when the hosts have different numbers of ranks (the ring is used instead)."""

    def __init__(self, node, cross, usable):
        self.node, self.cross, self.usable = node, cross, usable
        self.local = node.Get_size()
        self._arena = None

    def arena(self):
        if self._arena is None:
            self._arena = Arena(self.node)
        return self._arena


def topology(comm):
    """The `Topology` of an `MPIComm` (collective over comm the first time; cached on it). The hosts are the groups
    of `MPI_Comm_split_type(COMM_TYPE_SHARED)`, unless the MPIComm was made with an explicit `node` communicator."""
    if comm.topology is None:
        from mpi4py import MPI

        from .comm import MPIComm

        raw = comm.comm
        node = comm.node if comm.node is not None else raw.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
        local, per_host = node.Get_rank(), node.Get_size()
        equal = len(set(raw.allgather(per_host))) == 1
        cross = None
        if equal and per_host < comm.size:
            cross = MPIComm(raw.Split(local, comm.rank))
        comm.topology = Topology(node, cross, equal and comm.size > 1)
    return comm.topology


def single_copy(comm):
    """Whether the host's ranks of `comm` copy straight between their buffers (collective the first time: it makes
    the arena); False where shared memory cannot be used at all."""
    where = topology(comm) if getattr(comm, "comm", None) is not None else None
    return bool(where is not None and where.usable and where.local > 1 and where.cross is None
                and where.arena().single_copy)


def available(comm):
    """Whether `comm` (a protocol communicator) can run the shared-memory allreduce; collective for an MPIComm."""
    return getattr(comm, "comm", None) is not None and topology(comm).usable


class Arena:
    """The shared window of one host's ranks: every rank's slots and counters, as numpy views."""

    def __init__(self, node):
        from mpi4py import MPI

        self.size, self.rank = node.Get_size(), node.Get_rank()
        self.slot_bytes, self.nslots = SLOT_BYTES, SLOTS
        self.small_bytes = SMALL_BYTES
        header = self.size * ROW * 8 if self.rank == 0 else 0  # every rank's counters live in local rank 0's part
        self.win = MPI.Win.Allocate_shared(header + SLOTS * SLOT_BYTES, 8, comm=node)
        memory = []
        for k in range(self.size):
            buffer, _ = self.win.Shared_query(k)
            memory.append(np.frombuffer(buffer, dtype=np.uint8))
        # counters: a memoryview of int64, rank k's counter c at k * ROW + c (indexing one costs ~50 ns, numpy ~1 us)
        self.counters = memoryview(memory[0][:self.size * ROW * 8]).cast("q")
        starts = [self.size * ROW * 8] + [0] * (self.size - 1)
        self.slots = [[memory[k][starts[k] + s * SLOT_BYTES:starts[k] + (s + 1) * SLOT_BYTES] for s in range(SLOTS)]
                      for k in range(self.size)]
        self.typed = {}  # dtype -> [slot][rank] -> the slot as an array of that dtype
        self.cut = {}  # (dtype, slot, count) -> [rank] -> the first count elements of that slot
        self.rows = [range(c, self.size * ROW, ROW) for c in range(ROW)]  # counter -> its index of every rank
        self.win.Lock_all(MPI.MODE_NOCHECK)  # a passive epoch for the lifetime of the window: Win_sync is legal
        for c in range(ROW):  # MPI does not zero the window; nobody reads a counter before the barrier
            self.counters[self.rank * ROW + c] = 0
        # the single-copy probe: a random token in my private memory (not the window, which every rank maps), its
        # address in my own map, and my pid
        self.probe = np.array([int.from_bytes(os.urandom(7), "little")], dtype=np.int64)
        self.counters[self.rank * ROW + TOKEN] = int(self.probe[0])
        self.counters[self.rank * ROW + PID] = os.getpid()
        self.counters[self.rank * ROW + PROBE] = self.probe.ctypes.data
        self.win.Sync()
        node.Barrier()
        self.round = 0
        self.pids = [self.counters[k * ROW + PID] for k in range(self.size)]
        self.abort = node.Abort
        self.copier, self.single_copy, self.scratch = None, False, {}
        copier = cma.Copier() if cma.SUPPORTED else None
        if copier is not None:
            copier.allow_peers()
            node.Barrier()  # every rank allows before any probes
            # the token read and written back through the peer's pid and address proves both name the peer and both
            # calls are allowed: a pid of another pid namespace (ranks of one host in different containers) names
            # another process or none, and one equal to mine names me
            works = len(set(self.pids)) == self.size and all(
                copier.works(self.pids[k], self.counters[k * ROW + PROBE],
                             self.counters[k * ROW + TOKEN].to_bytes(8, "little"))
                for k in range(self.size) if k != self.rank)
            if node.allreduce(works, op=MPI.LAND):
                self.copier, self.single_copy = copier, True

    def small(self, flat, ufunc):
        """One round for a message that fits a slot (see the module's doc): copy it into my slot, publish COPIED,
        wait for every rank's, reduce every slot in rank order into my buffer, publish DONE. Every rank reduces the
        whole message, in the same order, so all end bitwise identical; the slot is free again once every rank has
        published DONE for this round, which the next use of the slot, two rounds on, waits for (and has nearly
        always already seen): one flag round trip per call, no barrier."""
        i, slot = self.round, self.round % self.nslots
        self.round += 1
        count = flat.size
        views = self.views(flat.dtype, slot, count)
        if i >= self.nslots:
            self.wait(DONE, i - self.nslots + 1)
        parts = [(flat, 0)] if flat.__class__ is np.ndarray else spans(flat, 0, count)
        mine = views[self.rank]
        for view, offset in parts:
            mine[offset:offset + view.size] = view
        self.publish(COPIED, i + 1)
        self.wait(COPIED, i + 1)
        first, second, rest = views[0], views[1], views[2:]
        for view, offset in parts:
            if offset or view.size != count:
                end = offset + view.size
                first, second, rest = views[0][offset:end], views[1][offset:end], [v[offset:end] for v in views[2:]]
            ufunc(first, second, out=view)
            for other in rest:
                ufunc(view, other, out=view)
        self.publish(DONE, i + 1)
        return flat

    def direct(self, flat, ufunc):
        """One round straight between the ranks' buffers (see the module's doc): publish my buffer's address, wait for
        every rank's; for each chunk of my slice, read every other rank's part of it into a cache-sized scratch and
        reduce it into my buffer, then write the result into every other rank's buffer; publish DONE and wait for
        every rank's (no rank returns while another may still read or write its buffer)."""
        n, r, counters = self.size, self.rank, self.counters
        i = self.round
        self.round += 1
        counters[r * ROW + ADDRESS] = flat.ctypes.data
        self.publish(COPIED, i + 1)
        self.wait(COPIED, i + 1)
        cut = bounds(flat.size, n)
        a, b = cut[r], cut[r + 1]
        if b > a:
            peers = [(self.pids[k % n], counters[(k % n) * ROW + ADDRESS]) for k in range(r + 1, r + n)]
            scratch = self.scratch.get(flat.dtype)
            if scratch is None:
                scratch = self.scratch[flat.dtype] = np.empty(CHUNK_BYTES // flat.itemsize, dtype=flat.dtype)
            read, write, here, item = self.copier.read, self.copier.write, scratch.ctypes.data, flat.itemsize
            base, step = flat.ctypes.data, scratch.size
            try:
                for start in range(a, b, step):
                    stop = min(start + step, b)
                    view, nbytes, offset = flat[start:stop], (stop - start) * item, start * item
                    part = scratch[:stop - start]
                    for pid, address in peers:
                        read(pid, here, address + offset, nbytes)
                        ufunc(view, part, out=view)
                    for pid, address in peers:
                        write(pid, base + offset, address + offset, nbytes)
            except OSError as exc:  # the others wait for my DONE: end the job, as an MPI error would, not hang it
                import sys

                print(f"ringrun: single-copy allreduce failed on local rank {r}: {exc}", file=sys.stderr, flush=True)
                self.abort(1)
                raise
        self.publish(DONE, i + 1)
        self.wait(DONE, i + 1)
        return flat

    def publish(self, which, value):
        """Set my counter `which` to `value`, after every store before it (Win_sync: a memory barrier)."""
        self.win.Sync()
        self.counters[self.rank * ROW + which] = value

    def wait(self, which, value):
        """Until every local rank's counter `which` is at least `value`; no load after it is served earlier."""
        counters, spins = self.counters, 0
        for index in self.rows[which]:
            while counters[index] < value:
                spins += 1
                if spins >= SPINS_BEFORE_YIELD:
                    os.sched_yield()
                self.win.Sync()
        self.win.Sync()

    def views(self, dtype, slot, count):
        """Every local rank's `slot` as `count` elements of `dtype` (kept for the last few sizes: a training loop
        reduces the same ones every step)."""
        key = (dtype, slot, count)
        held = self.cut.get(key)
        if held is not None:
            return held
        table = self.typed.get(dtype)
        if table is None:
            table = self.typed[dtype] = [[self.slots[k][s].view(dtype) for k in range(self.size)]
                                         for s in range(self.nslots)]
        full = table[slot]
        held = full if count == full[0].size else [view[:count] for view in full]
        if len(self.cut) >= 64:
            self.cut.clear()
        self.cut[key] = held
        return held

    def allreduce(self, flat, ufunc, cross=None):
        """Reduce `flat` (1-D contiguous, or a `ring.Joined`) in place over the host's ranks, and over `cross`."""
        if cross is None and flat.size * flat.itemsize <= self.small_bytes:
            return self.small(flat, ufunc)
        if cross is None and self.single_copy and isinstance(flat, np.ndarray):
            return self.direct(flat, ufunc)
        n, r = self.size, self.rank
        per = self.slot_bytes // flat.itemsize
        for start in range(0, flat.size, per):
            stop = min(start + per, flat.size)
            count = stop - start
            i, slot = self.round, self.round % self.nslots
            self.round += 1
            views = self.views(flat.dtype, slot, count)
            mine = views[r]
            cut = bounds(count, n)
            a, b = cut[r], cut[r + 1]
            if i >= self.nslots:
                self.wait(DONE, i - self.nslots + 1)
            copy(flat, start, start + a, mine[:a], into_buffer=False)  # the slices the others reduce; mine is
            copy(flat, start + b, stop, mine[b:], into_buffer=False)   # read from the buffer itself
            self.publish(COPIED, i + 1)
            self.wait(COPIED, i + 1)
            if b > a:
                out = mine[a:b]
                for view, offset in spans(flat, start + a, start + b):
                    part, partner = out[offset:offset + view.size], (r + 1) % n
                    ufunc(view, views[partner][a + offset:a + offset + view.size], out=part)
                for k in range(n):
                    if k != r and k != (r + 1) % n:
                        ufunc(out, views[k][a:b], out=out)
                if cross is not None:
                    ring_allreduce(out, ufunc, cross)
                copy(flat, start + a, start + b, out, into_buffer=True)
            self.publish(REDUCED, i + 1)
            self.wait(REDUCED, i + 1)
            for k in range(n):
                if k != r and cut[k + 1] > cut[k]:
                    copy(flat, start + cut[k], start + cut[k + 1], views[k][cut[k]:cut[k + 1]], into_buffer=True)
            self.publish(DONE, i + 1)
        return flat


def spans(flat, start, stop):
    """[(view, offset)]: the arrays' views holding flat[start:stop], each with its offset from start."""
    return flat.spans(start, stop) if hasattr(flat, "spans") else [(flat[start:stop], 0)]


def copy(flat, start, stop, other, into_buffer):
    """Copy `flat[start:stop]` to `other` (an array of stop - start), or back when `into_buffer`; `flat` may be a
    `ring.Joined`, whose range can span several arrays."""
    for view, offset in spans(flat, start, stop):
        part = other[offset:offset + view.size]
        if into_buffer:
            view[...] = part
        else:
            part[...] = view


def shm_allreduce(flat, ufunc, comm):
    """Shared memory inside each host, the ring between hosts; the ring alone where shared memory cannot help (no MPI,
    hosts with different numbers of ranks, one rank per host)."""
    if comm.size == 1 or flat.size == 0:
        return flat
    where = topology(comm) if getattr(comm, "comm", None) is not None else None
    if where is None or not where.usable or where.local == 1:
        return ring_allreduce(flat, ufunc, comm)
    return where.arena().allreduce(flat, ufunc, where.cross)

"""An in-process communicator world: one thread per rank, one FIFO queue per (source, dest, tag).

It exists so the collectives can be tested at world sizes a 2-core machine cannot host as MPI processes (5, 7, 8,
16). It is stricter than MPI where that finds bugs: a receive must be exactly the size of the matching send, a send
buffer changed before its request completes is reported, and a receive that waits longer than `timeout` seconds
(a deadlock) raises instead of hanging.
"""

import queue
import threading

import numpy as np


class FakeError(RuntimeError):
    """A protocol violation or deadlock seen by the fake communicator."""


class _Send:
    __slots__ = ("view", "copy", "comm", "where")

    def __init__(self, view, copy, comm, where):
        self.view, self.copy, self.comm, self.where = view, copy, comm, where

    def wait(self):
        # The data left at isend time (eager); a buffer changed since then was modified while "in flight".
        if not np.array_equal(self.view, self.copy):
            raise FakeError(f"rank {self.comm.rank}: send buffer {self.where} modified before its request completed")


class _Recv:
    __slots__ = ("buf", "box", "comm", "where", "done")

    def __init__(self, buf, box, comm, where):
        self.buf, self.box, self.comm, self.where, self.done = buf, box, comm, where, False

    def wait(self):
        if self.done:
            return
        try:
            data = self.box.get(timeout=self.comm.world.timeout)
        except queue.Empty:
            raise FakeError(f"rank {self.comm.rank}: receive {self.where} timed out (deadlock?)") from None
        if data.nbytes != self.buf.nbytes:
            raise FakeError(f"rank {self.comm.rank}: receive {self.where} expects {self.buf.nbytes} bytes, "
                            f"the matching send has {data.nbytes}")
        self.buf.view(np.uint8).reshape(-1)[:] = data
        self.done = True


class FakeComm:
    """One rank's endpoint. Receives complete in posting order per (source, tag), as in MPI."""

    def __init__(self, world, rank):
        self.world, self.rank, self.size = world, rank, world.size
        self.sent_bytes = 0
        self._pending = {}  # (source, tag) -> receives posted and not yet completed, in posting order

    def _check_peer(self, peer):
        if not 0 <= peer < self.size or peer == self.rank:
            raise FakeError(f"rank {self.rank}: bad peer {peer}")

    def isend(self, buf, dest, tag):
        self._check_peer(dest)
        raw = buf.view(np.uint8).reshape(-1)
        copy = raw.copy()
        self.sent_bytes += copy.nbytes
        self.world.box(self.rank, dest, tag).put(copy)
        return _Send(raw, copy, self, f"to {dest} tag {tag}")

    def irecv(self, buf, source, tag):
        self._check_peer(source)
        # Pending receives on one channel complete in order: wait for earlier ones first.
        channel = (source, tag)
        request = _Recv(buf, self.world.box(source, self.rank, tag), self, f"from {source} tag {tag}")
        pending = self._pending.setdefault(channel, [])
        pending.append(request)
        return _Ordered(request, pending)

    def waitall(self, requests):
        for request in requests:
            request.wait()


class _Ordered:
    """Waiting on a receive first completes the receives posted before it on the same channel."""

    __slots__ = ("request", "pending")

    def __init__(self, request, pending):
        self.request, self.pending = request, pending

    def wait(self):
        while not self.request.done:
            self.pending[0].wait()
            self.pending.pop(0)


class ThreadWorld:
    """`size` ranks as threads. `run(fn)` calls fn(comm) on every rank and returns the results in rank order."""

    def __init__(self, size, timeout=60.0):
        self.size, self.timeout = size, timeout
        self._boxes = {}
        self._lock = threading.Lock()

    def box(self, source, dest, tag):
        key = (source, dest, tag)
        with self._lock:
            if key not in self._boxes:
                self._boxes[key] = queue.SimpleQueue()
            return self._boxes[key]

    def run(self, fn):
        comms = [FakeComm(self, r) for r in range(self.size)]
        results, errors = [None] * self.size, [None] * self.size

        def body(rank):
            try:
                results[rank] = fn(comms[rank])
            except BaseException as exc:  # reported below, in the caller's thread
                errors[rank] = exc

        threads = [threading.Thread(target=body, args=(r,), daemon=True) for r in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for rank, exc in enumerate(errors):
            if exc is not None:
                exc.add_note(f"raised on rank {rank} of {self.size}")
                raise exc
        return results


def run_world(size, fn, timeout=60.0):
    """Run fn(comm) on `size` in-process ranks; results in rank order."""
    return ThreadWorld(size, timeout).run(fn)

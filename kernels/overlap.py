"""Gradients reduced while backward still runs: buckets, a hook per parameter, one background thread.

The parameters are cut into buckets of at most `bucket_bytes`, in REVERSE registration order (backward produces the
last layers' gradients first, so the first bucket fills first). Each parameter's post-accumulate-grad hook counts it;
when every parameter of a bucket has been counted `passes` times (gradient accumulation: `passes` backward calls per
step), the bucket is handed to the thread. The thread reduces buckets strictly in bucket order - every rank issues
the same collectives in the same order, whatever order its hooks fired in - through a `Fusion` on a duplicate of the
communicator, so its collectives never interleave with the caller's own on the original. `finish()` (called by the
optimizer's step) hands over the buckets still incomplete (parameters this step did not reach: their present
gradients, the same on every rank as without overlap), waits for the thread, and starts the next step's count.

Needs MPI_THREAD_MULTIPLE (mpi4py asks for it by default): `usable()` says whether the communicator allows it.

`close()` removes the hooks and ends the thread once it has reduced every bucket already complete (the same buckets
on every rank, so no rank is left in a collective alone). A new Overlap over parameters
an older one still hooks closes the older one first: a model's second DistributedOptimizer replaces its first.
"""

import threading
import weakref

_LIVE = weakref.WeakSet()  # the Overlaps not closed yet


class Overlap:
    def __init__(self, cut, comm, fusion, arrays, op="average", passes=1):
        """cut: the parameters in buckets, as `buckets()` returns them; comm: an `MPIComm` the thread alone uses;
        fusion: its `Fusion`; arrays(named) -> numpy views of the named gradients (raises TypeError for one it cannot
        reduce)."""
        self.comm, self.fusion, self.arrays, self.op, self.passes = comm, fusion, arrays, op, passes
        self.buckets = cut
        self.where = {id(p): b for b, bucket in enumerate(self.buckets) for p in bucket}
        for older in list(_LIVE):
            if older.where.keys() & self.where.keys():
                older.close()
        self.closed = False
        self.names = {}
        self.lock = threading.Condition()
        self._reset()
        self.error = None
        self.held = None
        self.handles = [p.register_post_accumulate_grad_hook(self._hook) for bucket in self.buckets for p in bucket]
        self.thread = threading.Thread(target=self._run, name="ringrun-overlap", daemon=True)
        self.thread.start()
        _LIVE.add(self)

    def _reset(self):
        self.counts = {}  # id(param) -> hooks seen this step
        self.missing = [len(bucket) * self.passes for bucket in self.buckets]  # hooks a bucket still waits for
        self.closing = False  # step() called: reduce what is there
        self.next = 0  # the bucket the thread reduces next
        self.done = False

    def _hook(self, param):
        with self.lock:
            seen = self.counts.get(id(param), 0)
            if seen >= self.passes:
                name = self.names.get(id(param), "a parameter")
                raise RuntimeError(f"ringrun DistributedOptimizer: gradient of {name} computed more than "
                                   f"backward_passes_per_step={self.passes} times before step()")
            self.counts[id(param)] = seen + 1
            self.missing[self.where[id(param)]] -= 1
            self.lock.notify_all()

    def _run(self):
        while True:
            with self.lock:
                while not (self.next < len(self.buckets) and (self.missing[self.next] == 0 or self.closing)):
                    if self.closed:
                        return
                    self.lock.wait()
                bucket = self.buckets[self.next]
            self.held = None
            try:
                named = [(self.names.get(id(p), "a parameter"), p.grad) for p in bucket if p.grad is not None]
                arrays = self.arrays(named)
                if arrays:
                    self.fusion.allreduce_many(arrays, self.op, comm=self.comm)
                # the bucket's gradients stay referenced until the next bucket is taken: the last bucket's across
                # zero_grad(), which keeps glibc from giving the freed gradient memory back to the kernel, so the
                # next backward reuses it instead of faulting in ~70 MB of fresh pages a step for ResNet-50's
                # gradients (BENCHMARKS.md, "Training step"); the cost is at most one bucket held a little longer
                self.held = named
            except BaseException as exc:  # reported by finish(); the step goes on so no rank hangs waiting
                self.error = self.error or exc
            with self.lock:
                self.next += 1
                if self.next == len(self.buckets):
                    self.done = True
                self.lock.notify_all()

    def finish(self):
        """Reduce what is left, wait for every bucket, get ready for the next step. Re-raises the thread's error."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()
            while not self.done:
                self.lock.wait()
            error, self.error = self.error, None
            self._reset()
        if error is not None:
            raise error


    def close(self):
        """Remove the hooks and end the thread (after the buckets already complete). Idempotent. (Its duplicate
        communicator stays until MPI finalizes: freeing one is collective, and its shared-memory state with it.)"""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.lock.notify_all()
        for handle in self.handles:
            handle.remove()
        self.thread.join()
        _LIVE.discard(self)


def buckets(params, bucket_bytes):
    """The parameters that need a gradient, in reverse order, cut into lists of at most `bucket_bytes` (a parameter
    larger than that is a bucket of its own)."""
    cut, size = [[]], 0
    for param in reversed([p for p in params if p.requires_grad]):
        nbytes = param.numel() * param.element_size()
        if cut[-1] and size + nbytes > bucket_bytes:
            cut.append([])
            size = 0
        cut[-1].append(param)
        size += nbytes
    return cut


def usable(comm):
    """Whether `comm` (a protocol communicator) can take collectives from a second thread: an MPI communicator in
    a library initialised with MPI_THREAD_MULTIPLE."""
    if getattr(comm, "comm", None) is None:
        return False
    from mpi4py import MPI

    return MPI.Query_thread() == MPI.THREAD_MULTIPLE

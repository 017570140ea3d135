"""Per-rank timing of allreduce implementations, run by every rank (`ringrun bench` starts the ranks):

    mpirun -np 2 python -m ringrun.kernels.bench allreduce --impl ring,mpi,horovod --sizes 4K,4M --out R.json
    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python -m ringrun.kernels.bench allreduce --world gloo ...
    mpirun -np 2 python -m ringrun.kernels.bench fusion --impl fused,flat,mpi_per_tensor,horovod_grouped

Every (case, impl) is first verified - its result on rank- and index-dependent input must equal the exact sum - and
only then timed: `warmup` untimed calls, then for each iteration a barrier and one timed call; an iteration's time is
the slowest rank's. Rank 0 writes one JSON document (every sample, and the impls that are unavailable with the reason)
to `--out` and a progress line per case to stderr. An impl that cannot run here (Horovod not installed) is reported as
unavailable, never dropped.
"""

import argparse
import json
import sys
import time

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    """'4K' -> 4096, '64MiB' -> 67108864, '100' -> 100."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text and text[-1] in UNITS else ""
    return int(float(text[:-1] if unit else text) * UNITS[unit])


def parse_sizes(text):
    """'4K,64M' as listed; 'A:B' is every power of two from A to B."""
    if ":" in text:
        low, high = (parse_size(p) for p in text.split(":", 1))
        sizes, size = [], low
        while size <= high:
            sizes.append(size)
            size *= 2
        return sizes
    return [parse_size(p) for p in text.split(",") if p.strip()]


def format_size(nbytes):
    """4096 -> '4K'; a size that is no whole number of units keeps one decimal: 102228128 -> '97.5M'."""
    for unit in ("G", "M", "K"):
        if nbytes >= UNITS[unit]:
            whole, rest = divmod(nbytes, UNITS[unit])
            return f"{whole}{unit}" if not rest else f"{nbytes / UNITS[unit]:.1f}{unit}"
    return str(nbytes)


class Unavailable(Exception):
    """An implementation that cannot run in this environment; the message says why."""


class MPIWorld:
    """Ranks started by mpirun: timing and verification over mpi4py."""

    def __init__(self):
        from mpi4py import MPI

        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._horovod = None

    def library(self):
        return self.MPI.Get_library_version().splitlines()[0].strip()

    def close(self):
        if self._horovod is not None and not isinstance(self._horovod, Unavailable):
            self._horovod.shutdown()

    def barrier(self):
        self.comm.Barrier()

    def slowest(self, seconds):
        return self.comm.allreduce(seconds, op=self.MPI.MAX)

    def all_true(self, flag):
        return self.comm.allreduce(bool(flag), op=self.MPI.LAND)

    def horovod(self):
        """horovod.torch, initialised once on these MPI ranks (Horovod's MPI mode), or Unavailable."""
        if self._horovod is None:
            try:
                import horovod.torch as hvd
            except Exception as exc:  # ImportError, or a horovod built against another MPI or torch
                self._horovod = Unavailable(f"cannot import horovod.torch: {exc}".splitlines()[0])
            else:
                hvd.init()
                self._horovod = hvd if hvd.size() == self.size else Unavailable(
                    f"horovod sees {hvd.size()} ranks, mpirun started {self.size} (built against another MPI?)")
        if isinstance(self._horovod, Unavailable):
            raise self._horovod
        return self._horovod

    def allreduce_impls(self):
        """impl -> factory() -> fn(buf) -> the sum over ranks: buf itself (in place) or an output array.

        `mpi` is MPI_Allreduce from a send to a receive buffer, as IMB-MPI1 and the OSU benchmarks time it (Intel
        MPI's in-place allreduce is up to 3x slower at 64 MiB); `mpi_inplace` is the same call with MPI_IN_PLACE."""
        import numpy as np

        from .allreduce import allreduce
        from .comm import as_communicator

        comm, MPI = as_communicator(self.comm), self.MPI

        def out_of_place():
            outputs = {}

            def run(buf):
                out = outputs.get((buf.size, buf.dtype))
                if out is None:
                    out = outputs[(buf.size, buf.dtype)] = np.empty_like(buf)
                self.comm.Allreduce(buf, out, op=MPI.SUM)
                return out
            return run

        def horovod():
            hvd = self.horovod()
            import torch

            def run(buf):
                hvd.allreduce_(torch.from_numpy(buf), op=hvd.Sum)
                return buf
            return run

        def in_place(algorithm):
            return lambda: lambda buf: allreduce(buf, comm=comm, algorithm=algorithm)

        def mpi_inplace(buf):
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            return buf

        return {
            "ring": in_place("auto"),
            "ring_only": in_place("ring"),
            "recursive_doubling": in_place("recursive_doubling"),
            "mpi": out_of_place,
            "mpi_inplace": lambda: mpi_inplace,
            "horovod": horovod,
        }

    def fusion_impls(self):
        """impl -> factory() -> fn(list of arrays, flat buffer of the same total size) reducing in place."""
        from .allreduce import allreduce
        from .comm import as_communicator
        from .fusion import Fusion

        comm, MPI = as_communicator(self.comm), self.MPI

        def fused():
            fusion = Fusion()
            return lambda arrays, flat: fusion.allreduce_many(arrays, comm=comm)

        def per_tensor():
            return lambda arrays, flat: [self.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM) for a in arrays]

        def horovod_grouped():
            hvd = self.horovod()
            import torch

            return lambda arrays, flat: hvd.grouped_allreduce_([torch.from_numpy(a) for a in arrays], op=hvd.Sum)

        return {
            "fused": fused,
            "flat": lambda: lambda arrays, flat: allreduce(flat, comm=comm, algorithm="ring"),
            "mpi_per_tensor": per_tensor,
            "horovod_grouped": horovod_grouped,
        }


class GlooWorld:
    """Plain processes joined by torch.distributed's env:// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)."""

    def __init__(self):
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method="env://")
        self.torch, self.dist = torch, dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def library(self):
        return f"torch {self.torch.__version__} gloo"

    def close(self):
        self.dist.destroy_process_group()

    def barrier(self):
        self.dist.barrier()

    def slowest(self, seconds):
        value = self.torch.tensor([seconds], dtype=self.torch.float64)
        self.dist.all_reduce(value, op=self.dist.ReduceOp.MAX)
        return float(value[0])

    def all_true(self, flag):
        value = self.torch.tensor([0 if flag else 1], dtype=self.torch.int64)
        self.dist.all_reduce(value, op=self.dist.ReduceOp.SUM)
        return int(value[0]) == 0

    def allreduce_impls(self):
        torch, dist = self.torch, self.dist

        def run(buf):
            dist.all_reduce(torch.from_numpy(buf), op=dist.ReduceOp.SUM)
            return buf
        return {"gloo": lambda: run}

    def fusion_impls(self):
        return {}


WORLDS = {"mpi": MPIWorld, "gloo": GlooWorld}


def rank_input(count, dtype, rank, salt=0):
    """Rank- and index-dependent values whose sum over ranks is exact in every supported dtype."""
    import numpy as np

    return ((np.arange(count) + salt) % 61 + rank).astype(dtype)


def exact_sum(count, dtype, size, salt=0):
    import numpy as np

    return (size * ((np.arange(count) + salt) % 61) + size * (size - 1) // 2).astype(dtype)


def time_calls(world, call, iters, warmup):
    """Per-iteration times (seconds, slowest rank) of call() after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iters):
        world.barrier()
        start = time.perf_counter()
        call()
        samples.append(world.slowest(time.perf_counter() - start))
    return samples


def prepare(world, factories, name):
    """(fn, None) for impl `name`, or (None, the reason it is unavailable here)."""
    try:
        return factories[name](), None
    except Unavailable as exc:
        return None, str(exc)


def bench_allreduce(world, args, report):
    import numpy as np

    dtype = np.dtype(args.dtype)
    factories = world.allreduce_impls()
    impls, unavailable = {}, {}
    for name in args.impl:
        impls[name], reason = prepare(world, factories, name)
        if reason:
            unavailable[name] = reason
    results = []
    for nbytes in args.sizes:
        count = max(1, nbytes // dtype.itemsize)
        # Ones, written (np.zeros would leave the pages unmapped: an out-of-place send would read the kernel's one
        # zero page). Values double per in-place sum on 2 ranks; an overflow to inf costs no time (denormals would).
        buf = np.ones(count, dtype=dtype)
        expected = exact_sum(count, dtype, world.size)
        for name, fn in impls.items():
            if fn is None:
                continue
            verified = world.all_true(np.array_equal(fn(rank_input(count, dtype, world.rank)), expected))
            row = {"impl": name, "bytes": count * dtype.itemsize, "count": count, "verified": verified, "samples": []}
            if verified:
                row["samples"] = time_calls(world, lambda: fn(buf), args.iters, args.warmup)
            results.append(row)
        report(f"{format_size(nbytes)} done: " + ", ".join(
            f"{r['impl']} {median(r['samples']) * 1e6:.1f} us" if r["verified"] else f"{r['impl']} WRONG"
            for r in results if r["bytes"] == count * dtype.itemsize))
    return {"dtype": str(dtype), "results": results, "unavailable": unavailable}


def bench_fusion(world, args, report):
    import numpy as np

    from .models import RESNET50_SHAPES

    factories = world.fusion_impls()
    sizes = [int(np.prod(s)) for s in RESNET50_SHAPES]
    total = sum(sizes)
    results, unavailable = [], {}
    for name in args.impl:
        fn, reason = prepare(world, factories, name)
        if reason:
            unavailable[name] = reason
            continue
        # verification: every tensor its own rank/index-dependent values (salted by position), the flat buffer too
        arrays = [rank_input(n, np.float32, world.rank, salt=i).reshape(s)
                  for i, (n, s) in enumerate(zip(sizes, RESNET50_SHAPES))]
        flat = rank_input(total, np.float32, world.rank)
        fn(arrays, flat)
        ok = (np.array_equal(flat, exact_sum(total, np.float32, world.size)) if name == "flat" else
              all(np.array_equal(a.ravel(), exact_sum(n, np.float32, world.size, salt=i))
                  for i, (a, n) in enumerate(zip(arrays, sizes))))
        verified = world.all_true(ok)
        row = {"impl": name, "tensors": len(sizes), "bytes": total * 4, "count": total, "verified": verified,
               "samples": []}
        if verified:
            arrays = [np.ones(s, dtype=np.float32) for s in RESNET50_SHAPES]
            flat = np.ones(total, dtype=np.float32)
            row["samples"] = time_calls(world, lambda: fn(arrays, flat), args.iters, args.warmup)
        results.append(row)
        report(f"fusion {name}: " + (f"{median(row['samples']) * 1e3:.2f} ms" if verified else "WRONG"))
    return {"dtype": "float32", "results": results, "unavailable": unavailable}


def median(samples):
    """The median of `samples` (the mean of the middle two for an even count); None for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


BENCHES = {"allreduce": bench_allreduce, "fusion": bench_fusion}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ringrun.kernels.bench", description=__doc__.split("\n")[0])
    parser.add_argument("bench", choices=tuple(BENCHES))
    parser.add_argument("--world", choices=tuple(WORLDS), default="mpi")
    parser.add_argument("--impl", required=True, type=lambda text: text.split(","))
    parser.add_argument("--sizes", default="4K,64K,4M,64M", type=parse_sizes)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", help="JSON results (rank 0); default: standard output")
    args = parser.parse_args(argv)
    world = WORLDS[args.world]()

    def report(line):
        if world.rank == 0:
            print(f"bench: {line}", file=sys.stderr, flush=True)

    try:
        document = BENCHES[args.bench](world, args, report)
    finally:
        world.close()
    document.update({"world": args.world, "ranks": world.size, "library": world.library()})
    if world.rank == 0:
        text = json.dumps(document)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            print(text)
    return 0 if all(r["verified"] for r in document["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())

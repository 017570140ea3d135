"""Per-rank timing of allreduce implementations, run by every rank (`ringrun bench` starts the ranks):

    mpirun -np 2 python -m ringrun.bench.rank allreduce --impl ring,mpi,horovod --sizes 4K,4M --out R.json
    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python -m ringrun.bench.rank allreduce --world gloo ...
    mpirun -np 2 python -m ringrun.bench.rank fusion --impl fused,flat,mpi_per_tensor,horovod_grouped

Every (case, impl) is first verified - its result on rank- and index-dependent input must equal the exact sum - and
only then timed: `warmup` untimed calls, then for each iteration a barrier and one timed call; an iteration's time is
the slowest rank's. Each call of an allreduce (and of the floor) gets the next buffer of a rotating pool (`Pool`,
`--pool` bytes per rank), so none is timed on a buffer its previous call left in the caches. Rank 0 writes one JSON
document (every sample, and the impls that are unavailable with the reason) to `--out` and a progress line per case
to stderr. An impl that cannot run here (Horovod not installed, or one whose
ranks are of another kind) is reported as unavailable, never dropped.
"""

import argparse
import json
import sys
import time
from statistics import median

from .gloo import GlooWorld
from .mpi import MPIWorld
from .options import add_options, format_size
from .registry import Unavailable, factories

WORLDS = {"mpi": MPIWorld, "gloo": GlooWorld}


def rank_input(count, dtype, rank, salt=0):
    """Rank- and index-dependent values whose sum over ranks is exact in every supported dtype."""
    import numpy as np

    return ((np.arange(count) + salt) % 61 + rank).astype(dtype)


def exact_sum(count, dtype, size, salt=0):
    import numpy as np

    return (size * ((np.arange(count) + salt) % 61) + size * (size - 1) // 2).astype(dtype)


class Pool:
    """The buffers the timed calls get: consecutive page-aligned views of one array of `nbytes`, in turn, so a call's
    buffer was last touched a pool ago (out of the caches when the pool is larger than them); with nbytes 0, or a
    buffer over half the pool, one buffer per size, reused. Filled with ones, written (np.zeros would leave the pages
    unmapped: an out-of-place send would read the kernel's one zero page). Values double per in-place sum on 2 ranks;
    an overflow to inf costs no time (denormals would)."""

    ALIGN = 4096

    def __init__(self, nbytes, dtype):
        import numpy as np

        self.dtype, self.at, self.own = np.dtype(dtype), 0, {}
        self.data = None
        if nbytes:
            count, pad = nbytes // self.dtype.itemsize, self.ALIGN // self.dtype.itemsize
            raw = np.ones(count + pad, dtype=self.dtype)
            skip = (-raw.ctypes.data % self.ALIGN) // self.dtype.itemsize  # malloc's header: start on a page
            self.data = raw[skip:skip + count]

    def take(self, count):
        """The next buffer of `count` elements."""
        import numpy as np

        if self.data is None or 2 * count > self.data.size:
            if count not in self.own:
                self.own.clear()  # one size at a time
                self.own[count] = np.ones(count, dtype=self.dtype)
            return self.own[count]
        if self.at + count > self.data.size:
            self.at = 0
        view = self.data[self.at:self.at + count]
        step = -(-count * self.dtype.itemsize // self.ALIGN) * self.ALIGN // self.dtype.itemsize
        self.at += max(step, 1)
        return view


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


def prepare(impls):
    """({impl: fn}, {impl: why}): each impl built from its factory, or the reason it is unavailable here."""
    built, unavailable = {}, {}
    for name, factory in impls.items():
        try:
            built[name] = factory()
        except Unavailable as exc:
            unavailable[name] = str(exc)
    return built, unavailable


def bench_allreduce(world, impls, args, report):
    """Every size of args.sizes with each of `impls` ({impl: factory() -> fn(buf) -> the sum over ranks: buf itself,
    in place, or an output array})."""
    import numpy as np

    dtype = np.dtype(args.dtype)
    world.pool = Pool(args.pool, dtype)  # the floor takes its inputs from it too
    built, unavailable = prepare(impls)
    results = []
    for nbytes in args.sizes:
        count = max(1, nbytes // dtype.itemsize)
        expected = exact_sum(count, dtype, world.size)
        for name, fn in built.items():
            row = {"impl": name, "bytes": count * dtype.itemsize, "count": count, "samples": []}
            if getattr(fn, "reference", False):  # the floor: nothing to verify (bench/floor.py)
                verified = row["reference"] = True
            else:
                verified = world.all_true(np.array_equal(fn(rank_input(count, dtype, world.rank)), expected))
            row["verified"] = verified
            if verified:
                buffers = iter([world.pool.take(count) for _ in range(args.warmup + args.iters)])
                row["samples"] = time_calls(world, lambda: fn(next(buffers)), args.iters, args.warmup)
            results.append(row)
        report(f"{format_size(nbytes)} done: " + ", ".join(
            f"{r['impl']} {median(r['samples']) * 1e6:.1f} us" if r["verified"] else f"{r['impl']} WRONG"
            for r in results if r["bytes"] == count * dtype.itemsize))
    return {"dtype": str(dtype), "results": results, "unavailable": unavailable}


def bench_fusion(world, impls, args, report):
    """ResNet-50's gradients with each of `impls` ({impl: factory() -> fn(list of arrays, flat buffer of the same
    total size) reducing in place})."""
    import numpy as np

    from .models import RESNET50_SHAPES

    sizes = [int(np.prod(s)) for s in RESNET50_SHAPES]
    total = sum(sizes)
    built, unavailable = prepare(impls)
    results = []
    for name, fn in built.items():
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


BENCHES = {"allreduce": bench_allreduce, "fusion": bench_fusion}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m ringrun.bench.rank", description=__doc__.split("\n")[0])
    kinds = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for kind in BENCHES:
        p = kinds.add_parser(kind)
        add_options(p, kind)
        p.add_argument("--world", choices=tuple(WORLDS), default="mpi", help="how the ranks were started (default mpi)")
        p.add_argument("--out", help="JSON results (rank 0); default: standard output")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    world = WORLDS[args.world]()

    def report(line):
        if world.rank == 0:
            print(f"bench: {line}", file=sys.stderr, flush=True)

    try:
        document = BENCHES[args.bench](world, factories(args.bench, args.impl, world), args, report)
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

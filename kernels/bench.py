"""Per-rank allreduce timing, run by every rank under mpirun:

    mpirun -np 2 python -m ringrun.kernels.bench --sizes 4K,4M,64M --impl ring,recursive_doubling,mpi

Each size: warm-up iterations, then a barrier before each timed iteration; the time of an iteration is the slowest
rank's. Rank 0 prints one line per (size, impl): median and min time, algbw = S/t and busbw = algbw * 2(N-1)/N.
Results are checked against MPI's own allreduce before anything is timed. Starting the ranks is the caller's job.
"""

import argparse
import sys
import time

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text):
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text and text[-1] in UNITS else ""
    return int(float(text[:-1] if unit else text) * UNITS[unit])


def format_size(nbytes):
    for unit in ("G", "M", "K"):
        if nbytes >= UNITS[unit] and nbytes % UNITS[unit] == 0:
            return f"{nbytes // UNITS[unit]}{unit}"
    return str(nbytes)


def implementations(comm):
    """impl name -> function(buf) reducing buf in place with op sum."""
    from mpi4py import MPI

    from .allreduce import allreduce

    return {
        "ring": lambda buf: allreduce(buf, comm=comm, algorithm="ring"),
        "recursive_doubling": lambda buf: allreduce(buf, comm=comm, algorithm="recursive_doubling"),
        "auto": lambda buf: allreduce(buf, comm=comm),
        "mpi": lambda buf: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
    }


def time_impl(fn, buf, comm, iters, warmup):
    """Per-iteration times (seconds, slowest rank) of fn(buf) after `warmup` untimed calls."""
    from mpi4py import MPI

    for _ in range(warmup):
        fn(buf)
    samples = []
    for _ in range(iters):
        comm.Barrier()
        start = time.perf_counter()
        fn(buf)
        elapsed = time.perf_counter() - start
        samples.append(comm.allreduce(elapsed, op=MPI.MAX))
    return samples


def verify(fn, count, dtype, comm):
    """Whether fn's result equals MPI's own allreduce on rank- and index-dependent input."""
    import numpy as np
    from mpi4py import MPI

    buf = ((np.arange(count) % 251) + comm.Get_rank()).astype(dtype)
    expected = buf.copy()
    comm.Allreduce(MPI.IN_PLACE, expected, op=MPI.SUM)
    fn(buf)
    ok = bool(np.allclose(buf, expected, rtol=1e-5))
    return comm.allreduce(ok, op=MPI.LAND)


def main(argv=None):
    import numpy as np
    from mpi4py import MPI

    parser = argparse.ArgumentParser(prog="python -m ringrun.kernels.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="4K,64K,4M,64M", help="comma-separated message sizes in bytes (4K, 64M)")
    parser.add_argument("--impl", default="ring,mpi", help="comma-separated: ring, recursive_doubling, auto, mpi")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    impls = implementations(comm)
    names = args.impl.split(",")
    unknown = [n for n in names if n not in impls]
    if unknown:
        if rank == 0:
            print(f"unknown impl {', '.join(unknown)} (known: {', '.join(impls)})", file=sys.stderr)
        return 2
    dtype = np.dtype(args.dtype)
    if rank == 0:
        print(f"# {size} ranks, {MPI.Get_library_version().splitlines()[0].strip()}, dtype {dtype}")
        print(f"{'size':>6} {'count':>10} {'impl':>18} {'median_ms':>10} {'min_ms':>9} {'algbw_GB/s':>10} "
              f"{'busbw_GB/s':>10} {'vs_mpi':>7}")
    status = 0
    for nbytes in (parse_size(s) for s in args.sizes.split(",")):
        count = max(1, nbytes // dtype.itemsize)
        buf = np.zeros(count, dtype=dtype)  # stays finite however often it is reduced in place
        medians = {}
        for name in names:
            if not verify(impls[name], count, dtype, comm):
                status = 1
                if rank == 0:
                    print(f"{format_size(nbytes):>6} {count:>10} {name:>18} WRONG RESULT - not timed")
                continue
            samples = sorted(time_impl(impls[name], buf, comm, args.iters, args.warmup))
            median = samples[len(samples) // 2]
            medians[name] = median
            if rank == 0:
                algbw = count * dtype.itemsize / median / 1e9
                busbw = algbw * 2 * (size - 1) / size
                ratio = f"{median / medians['mpi']:.2f}" if "mpi" in medians else "-"
                print(f"{format_size(nbytes):>6} {count:>10} {name:>18} {median * 1e3:>10.3f} {samples[0] * 1e3:>9.3f} "
                      f"{algbw:>10.2f} {busbw:>10.2f} {ratio:>7}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Does `ringrun bench` measure what an independent benchmark measures? Intel MPI's own allreduce timed both ways,
interleaved in rounds on 2 ranks: IMB-MPI1 Allreduce (t_avg of 30 back-to-back repetitions, out of place) and
`ringrun bench allreduce --mpi intel --impl mpi` (30 iterations, each after a barrier; median and mean), at 4 MiB
and 64 MiB. Prints every round and the ratio of the medians over rounds. A benchmark, not a test: it always exits 0
unless a program fails.

    make bench-imb        (= .venv/bin/python scripts/imb_check.py --rounds 5)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {4 << 20: "4M", 64 << 20: "64M"}


def imb(prefix):
    """{bytes: t_avg seconds} from one IMB-MPI1 Allreduce run."""
    # glibc's malloc asks for transparent huge pages as numpy does for its arrays (this kernel gives them only on
    # request): without, IMB's 64 MiB buffers land in a mode 2-3x slower about half the time (BENCHMARKS.md)
    env = dict(os.environ, PATH=f"{prefix}/bin:{os.environ['PATH']}", LD_LIBRARY_PATH=f"{prefix}/lib",
               GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    argv = ["mpirun", "-n", "2", "IMB-MPI1", "Allreduce", "-msglog", "22:26", "-iter", "30", "-iter_policy", "off",
            "-mem", "4"]
    text = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=600).stdout
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0].isdigit() and int(fields[0]) in SIZES:
            found[int(fields[0])] = float(fields[4]) * 1e-6
    return found


def ringrun_bench(ringrun):
    """{bytes: (median, mean) seconds} of the `mpi` rows of one `ringrun bench` run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        subprocess.run([ringrun, "bench", "allreduce", "-np", "2", "--mpi", "intel", "--impl", "mpi", "--sizes",
                        ",".join(SIZES.values()), "--iters", "30", "--json", out], capture_output=True, check=True,
                       timeout=600)
        with open(out, encoding="utf-8") as handle:
            rows = json.load(handle)["results"]
    return {r["bytes"]: (statistics.median(r["samples"]), statistics.mean(r["samples"])) for r in rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prefix", default=os.path.join(ROOT, ".venv-intelmpi"))
    args = parser.parse_args(argv)
    ringrun = os.path.join(os.path.dirname(sys.executable), "ringrun")
    rounds = []
    print(f"{'round':>5} {'size':>5} {'IMB t_avg ms':>13} {'bench median ms':>16} {'bench mean ms':>14}")
    for i in range(args.rounds):
        theirs, ours = imb(args.prefix), ringrun_bench(ringrun)
        rounds.append((theirs, ours))
        for size, label in SIZES.items():
            print(f"{i + 1:>5} {label:>5} {theirs[size] * 1e3:>13.3f} {ours[size][0] * 1e3:>16.3f} "
                  f"{ours[size][1] * 1e3:>14.3f}", flush=True)
    for size, label in SIZES.items():
        imb_median = statistics.median(r[0][size] for r in rounds)
        ours_median = statistics.median(r[1][size][0] for r in rounds)
        ratio = ours_median / imb_median
        print(f"{label}: IMB {imb_median * 1e3:.3f} ms, ringrun bench {ours_median * 1e3:.3f} ms (medians over "
              f"{args.rounds} rounds): ratio {ratio:.2f}, {'within' if abs(ratio - 1) <= 0.2 else 'NOT within'} 20%")
    return 0


if __name__ == "__main__":
    sys.exit(main())

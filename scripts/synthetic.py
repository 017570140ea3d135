"""Horovod's own pytorch_synthetic_benchmark.py on Horovod and on ringrun, and its procedure on DDP, side by side.

    python scripts/synthetic.py --script PATH/pytorch_synthetic_benchmark.py [-np 2] [--rounds 2] [--json F] \\
        -- --batch-size 8 --num-warmup-batches 2 --num-batches-per-iter 3 --num-iters 5

PATH is Horovod's example (examples/pytorch/ in Horovod's source at v0.28.1; it is not in the sdist on PyPI, and
ringrun does not ship it). Each backend runs under `ringrun launch -np N`, in turn, `--rounds` times:
- horovod: the script unchanged;
- ringrun: the script with its one line `import horovod.torch as hvd` changed to `import ringrun.kernels.horovod as
  hvd` (ringrun's DistributedOptimizer behind Horovod's API);
- ddp: scripts/synthetic_ddp.py, the same procedure on torch DistributedDataParallel over gloo.
Where torchvision cannot be imported (PyPI's torchvision wheels need CUDA torch; this machine's torch is the CPU
wheel), a stand-in `torchvision` whose `models.resnet50` is ringrun's (bench/resnet.py: the same architecture) is put
first on the ranks' PYTHONPATH, for every backend alike. Prints each run's `Img/sec per CPU` (the script's mean over
its iterations) and the medians; exit 1 when a run fails.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))
IMPORT = "import horovod.torch as hvd"
DROP_IN = "import ringrun.kernels.horovod as hvd"
RATE = re.compile(r"Img/sec per CPU: ([0-9.]+) \+-([0-9.]+)")


def prepare(script, workdir):
    """{backend: argv tail} and the PYTHONPATH entries the ranks need."""
    with open(script, encoding="utf-8") as handle:
        text = handle.read()
    if text.count(IMPORT) != 1:
        raise SystemExit(f"synthetic: {script} must have exactly one line {IMPORT!r}")
    changed = os.path.join(workdir, "ringrun_" + os.path.basename(script))
    with open(changed, "w", encoding="utf-8") as handle:
        handle.write(text.replace(IMPORT, DROP_IN))
    path = []
    probe = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, check=False)
    if probe.returncode != 0:
        stand_in = os.path.join(workdir, "standin", "torchvision")
        os.makedirs(stand_in)
        with open(os.path.join(stand_in, "__init__.py"), "w", encoding="utf-8") as handle:
            handle.write("# ringrun's stand-in for torchvision.models.resnet50 (scripts/synthetic.py)\n"
                         "from ringrun.bench.resnet import models\n")
        path.append(os.path.dirname(stand_in))
    return {"horovod": [script], "ringrun": [changed], "ddp": [os.path.join(HERE, "synthetic_ddp.py")]}, path


def free_port():
    """A TCP port free on 127.0.0.1 now, for gloo's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(backend, tail, args, path):
    """(img/s, +-) of one run, or raise SystemExit with its output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in (env.get("PYTHONPATH"),) if p])
    ringrun = shutil.which("ringrun") or os.path.join(os.path.dirname(sys.executable), "ringrun")
    extra = ["--port", str(free_port())] if backend == "ddp" else []
    argv = [ringrun, "launch", "-np", str(args.np), "--", sys.executable] + tail + args.script_args + extra
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"synthetic: {backend} ran past --timeout {args.timeout} s") from None
    found = RATE.search(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(f"synthetic: {backend} failed (exit {done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    return float(found.group(1)), float(found.group(2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--script", required=True, help="Horovod's pytorch_synthetic_benchmark.py")
    parser.add_argument("-np", type=int, default=2)
    parser.add_argument("--backends", default="horovod,ringrun,ddp")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each backend, interleaved (default 1)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds for one run (default 1200)")
    parser.add_argument("--json", help="write every run's result here")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="-- then the script's arguments")
    args = parser.parse_args(argv)
    args.script_args = args.script_args[1:] if args.script_args[:1] == ["--"] else args.script_args
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    backends = [b for b in args.backends.split(",") if b]
    results = {b: [] for b in backends}
    with tempfile.TemporaryDirectory(prefix="ringrun-synthetic-") as workdir:
        tails, path = prepare(args.script, workdir)
        unknown = [b for b in backends if b not in tails]
        if unknown:
            parser.error(f"unknown backend {', '.join(unknown)} (known: {', '.join(tails)})")
        for round_ in range(args.rounds):
            for backend in backends if round_ % 2 == 0 else backends[::-1]:
                rate, conf = run(backend, tails[backend], args, path)
                results[backend].append({"img_per_sec": rate, "conf": conf})
                print(f"round {round_ + 1} {backend}: {rate:.1f} +-{conf:.1f} img/sec per CPU", flush=True)
    best = {b: median(r["img_per_sec"] for r in runs) for b, runs in results.items()}
    for backend, rate in best.items():
        print(f"{backend}: median {rate:.2f} img/sec per CPU, {args.np * rate:.2f} in all")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"np": args.np, "script_args": args.script_args, "stand_in_torchvision": bool(path),
                       "results": results, "median": best}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

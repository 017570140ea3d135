"""`ringrun bench start`: one job run both ways, every replica a local process and every replica a container of its
image (`--containers`), trials interleaved, side by side in one run.

Per trial: the time from the call of `run_job` until every replica has written its first line of output (its
program runs: a container's engine client, image and network set-up are behind it) and the job's wall time to its
end; the job must succeed. Without SPEC the job is a PyTorchJob of `--replicas` replicas (a master and workers of
`ringrun:latest`), each `echo up; sleep 1`. `--set` edits the spec for both ways, `--local-set` for the process runs
only (a program's path on this machine rather than in the image). Medians and the containers/processes ratio are
printed; --json keeps every sample and the machine.
"""

import io
import json
import os
import statistics
import threading
import time

from ringrun.runtime import select_job
from ringrun.runtime.local import apply_sets
from ringrun.runtime.parse import load_documents, parse_objects

from .containers import ContainerOptions
from .local import Options, run_job

MODES = ("processes", "containers")


def replicas_job(replicas, seconds=1):
    """A PyTorchJob: a master and replicas-1 workers, each printing `up` and sleeping `seconds`."""
    def spec(count):
        container = {"name": "pytorch", "image": "ringrun:latest", "imagePullPolicy": "Never",
                     "command": ["sh", "-c", f"echo up; sleep {seconds}"]}
        return {"replicas": count, "restartPolicy": "Never", "template": {"spec": {"containers": [container]}}}
    specs = {"Master": spec(1), **({"Worker": spec(replicas - 1)} if replicas > 1 else {})}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "start"},
            "spec": {"pytorchReplicaSpecs": specs}}


# ringrun's own lines about a replica that come before its program runs (launcher/execute.py's notes)
NOTES = ("running ", "warning: ")


class FirstLines(io.TextIOBase):
    """A text sink (stdout and stderr) that notes when each `[replica] ` prefix is first seen on a line that is the
    replica's own output, not ringrun's note about starting it."""

    def __init__(self, clock=time.monotonic):
        self.first, self.clock, self.lock = {}, clock, threading.Lock()

    def write(self, text):
        if text.startswith("[") and "] " in text:
            name, _, rest = text[1:].partition("] ")
            if not rest.startswith(NOTES):
                with self.lock:
                    self.first.setdefault(name, self.clock())
        return len(text)


def trial(job, obj, mode, environ):
    """(seconds until every replica's first line, wall seconds, exit code, replicas seen)."""
    lines = FirstLines()
    containers = ContainerOptions(owner="ringrun-bench") if mode == "containers" else None
    options = Options(grace=3, is_root=os.geteuid() == 0, containers=containers)
    started = time.monotonic()
    code, _ = run_job(job, environ, options, lines, lines, signals=False, obj=obj)
    wall = time.monotonic() - started
    running = max(lines.first.values()) - started if lines.first else None
    return running, wall, code, sorted(lines.first)


def _job(text, source, sets):
    objects = load_documents(text, source)
    if sets:
        objects = [apply_sets(o, sets) for o in objects]
    job = select_job(parse_objects(objects))
    return job, next(o for o in objects if (o.get("metadata") or {}).get("name") == job.name)


def main(args, environ, out, err):
    from .bench import machine

    if args.spec:
        with open(args.spec, encoding="utf-8") as handle:
            text, source = handle.read(), args.spec
    else:
        text, source = json.dumps(replicas_job(args.replicas)), "<bench start>"
    jobs = {"containers": _job(text, source, args.set or []),
            "processes": _job(text, source, (args.set or []) + (args.local_set or []))}
    samples = {mode: [] for mode in MODES}
    for i in range(args.trials):
        for mode in MODES if i % 2 == 0 else MODES[::-1]:  # interleaved: neither way always goes first
            running, wall, code, seen = trial(*jobs[mode], mode, environ)
            if code != 0:
                err.write(f"ringrun bench start: the {mode} run failed with exit code {code}\n")
                return 1
            samples[mode].append({"all_running_s": running, "wall_s": wall, "replicas": seen})
    result = {}
    for mode in MODES:
        running = [s["all_running_s"] for s in samples[mode] if s["all_running_s"] is not None]
        result[mode] = {"all_running_median_s": statistics.median(running) if running else None,
                        "wall_median_s": statistics.median(s["wall_s"] for s in samples[mode]),
                        "replicas": samples[mode][0]["replicas"], "samples": samples[mode]}
    job = jobs["containers"][0]
    out.write(f"{job.kind} {job.name}, {args.trials} trials each way, interleaved\n")
    out.write(f"{'':<12}{'replicas':>9}{'all running (s)':>17}{'wall (s)':>10}\n")
    for mode in MODES:
        r = result[mode]
        shown = "-" if r["all_running_median_s"] is None else f"{r['all_running_median_s']:.2f}"
        out.write(f"{mode:<12}{len(r['replicas']):>9}{shown:>17}{r['wall_median_s']:>10.2f}\n")
    if result["processes"]["all_running_median_s"] and result["containers"]["all_running_median_s"]:
        out.write(f"containers / processes: all running {result['containers']['all_running_median_s'] / result['processes']['all_running_median_s']:.1f}x, "
                  f"wall {result['containers']['wall_median_s'] / result['processes']['wall_median_s']:.2f}x\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "spec": source,
                       "trials": args.trials, "result": result}, handle, indent=2)
    return 0

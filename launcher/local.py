"""`ringrun run`: a whole job on this machine, every replica a local process - a policy on the execution core.

What one machine adds to the core: the plans made local (ringrun.runtime.local: replica names are 127.0.0.1, MPI
workers are slots of the launcher's mpirun), a private run directory removed at the end, each replica's output
prefixed `[role-index]` (and written per replica with --log-dir), the job's restartPolicy, backoffLimit, deadline
(activeDeadlineSeconds or --timeout) and cleanPodPolicy as ringrun.runtime.policy describes them, and the status
object written to --status as it changes. A suspended or paused job starts nothing: `run` says so and exits 7.
Fields accepted but not acted on here (ttlSecondsAfterFinished, schedulingPolicy, ...) are named in a warning.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from ringrun.runtime import Context, Identity, build_plan
from ringrun.runtime.effects import ignored_locally
from ringrun.runtime.local import localize, processes
from ringrun.runtime.policy import deciders, job_policy
from ringrun.runtime.status import job_status

from . import files
from .execute import Execution, ReplicaSpec
from .supervise import DEFAULT_GRACE_SECONDS, Supervisor, stop_signals


@dataclass(frozen=True)
class Options:
    """status_path: where the status document is kept current; timeout: seconds (DeadlineExceeded); log_dir: per
    replica stdout/stderr files; grace: SIGTERM -> SIGKILL seconds; is_root: whether this process runs as root."""

    status_path: str | None = None
    timeout: float | None = None
    log_dir: str | None = None
    grace: float = DEFAULT_GRACE_SECONDS
    is_root: bool = False


def local_plans(job, run_dir):
    """{(role, index): Plan} of every replica that runs as a local process, in start order."""
    context = Context(run_dir=run_dir, environ={})
    return {key: localize(job, build_plan(job, Identity(key[0], key[1], "local"), context))
            for key in processes(job)}


def document(job, state):
    """The job object with its status, as `ringrun run` prints it and writes it to --status."""
    return {"apiVersion": job.api_version, "kind": job.kind,
            "metadata": {"name": job.name, "namespace": job.namespace}, "status": job_status(job, state)}


def run_job(job, environ, options, out, err):
    """Run `job` to the end on this machine; returns (exit code, status document)."""
    for field, why in ignored_locally(job):
        err.write(f"ringrun run: warning: {field} has no effect in a local run: {why}\n")
    run_dir = tempfile.mkdtemp(prefix=f"ringrun-{job.name}-")
    try:
        roles = deciders(job)
        specs = [ReplicaSpec(plan, job.replica(role).restart_policy, role in roles)
                 for (role, _), plan in local_plans(job, run_dir).items()]
        if options.log_dir:
            os.makedirs(options.log_dir, exist_ok=True)
        supervisor = Supervisor(out, err, log_dir=options.log_dir, grace=options.grace)

        def publish(state):
            if options.status_path:
                text = json.dumps(document(job, state), indent=2)
                files.write_atomic(options.status_path, text.encode("utf-8"), mode=0o644)

        def log(plan, message):
            err.write(f"[{plan.name}] {message}\n")
            err.flush()

        execution = Execution(specs, supervisor, job_policy(job, options.timeout), environ, is_root=options.is_root,
                              on_state=publish, log=log)
        with stop_signals(execution.interrupt):
            outcome = execution.run()
        if outcome.how == "held":
            held = next(s.plan.held for s in specs if s.plan.held)
            err.write(f"ringrun run: {job.kind} {job.namespace}/{job.name} is not started: {held} (exit code "
                      f"{outcome.code})\n")
        return outcome.code, document(job, outcome.state)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

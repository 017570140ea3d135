"""`ringrun run`: a whole job on this machine, every replica a local process - a policy on the execution core.

What one machine adds to the core: the plans made local (ringrun.runtime.local: replica names are 127.0.0.1, MPI
workers are slots of the launcher's mpirun), a private run directory removed at the end, each replica's output
prefixed `[role-index]` (and written per replica with --log-dir), the job's restartPolicy, backoffLimit, deadline
(activeDeadlineSeconds or --timeout) and cleanPodPolicy as ringrun.runtime.policy describes them, and the status
object written to --status as it changes. A suspended or paused job starts nothing: `run` says so and exits 7.
Fields accepted but not acted on here (ttlSecondsAfterFinished, schedulingPolicy, ...) are named in a warning.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from ringrun.runtime import Context, Identity, UsageError, build_plan
from ringrun.runtime.errors import SetupError
from ringrun.runtime.effects import ignored_locally
from ringrun.runtime.local import localize, processes, with_port
from ringrun.runtime.policy import deciders, job_policy
from ringrun.runtime.kinds import frameworks
from ringrun.runtime.kinds.registry import of as kind_of_job

from . import files
from .execute import Execution, ReplicaSpec
from .logfiles import Rotation
from .readiness import free_loopback_port
from .supervise import DEFAULT_GRACE_SECONDS, RunAs, Supervisor, stop_signals


@dataclass(frozen=True)
class Options:
    """status_path: where the status document is kept current; timeout: seconds (DeadlineExceeded); log_dir: per
    replica stdout/stderr files; grace: SIGTERM -> SIGKILL seconds; is_root: whether this process runs as root."""

    status_path: str | None = None
    timeout: float | None = None
    log_dir: str | None = None
    grace: float = DEFAULT_GRACE_SECONDS
    is_root: bool = False
    run_parent: str | None = None  # where the job's private run directory is made (default: the temp folder)
    log_rotation: Rotation | None = None  # one rotated <replica>.log (stdout and stderr), as the server serves them
    run_as: RunAs | None = None  # the user every replica runs as (a root server's jobs); None: this process's
    working_dir: str | None = None  # where a replica without a workingDir runs (a relative one is below it)
    containers: object | None = None  # a containers.ContainerOptions: every replica a container of its image


def _in_working_dir(plan, base):
    """`plan` with its workingDir made absolute from `base` (the job's own folder); `base` when it gives none."""
    if base is None:
        return plan
    return dataclasses.replace(plan, working_dir=os.path.join(base, plan.working_dir or ""))


def local_plans(job, run_dir, port=None):
    """{(role, index): Plan} of every replica that runs as a local process, in start order; `port`: the job's own
    rendezvous port (PyTorch master, MXNet scheduler), else the spec's."""
    if port is not None:
        job = with_port(job, port)
    context = Context(run_dir=run_dir, environ={})
    return {key: localize(job, build_plan(job, Identity(key[0], key[1], "local"), context))
            for key in processes(job)}


def document(job, state):
    """The job object with its status, as `ringrun run` prints it and writes it to --status."""
    return {"apiVersion": job.api_version, "kind": job.kind,
            "metadata": {"name": job.name, "namespace": job.namespace}, "status": kind_of_job(job).status.build(job, state)}


def run_job(job, environ, options, out, err, on_state=None, attach=None, signals=True, obj=None):
    """Run `job` to the end on this machine; returns (exit code, status document).

    on_state(JobState): called on every change (after the --status file is written); attach(Execution): called
    before the job starts, for a caller that stops it (`interrupt`) or changes its policy while it runs (the
    server); signals: stop the job on SIGINT/SIGTERM/SIGHUP/SIGQUIT (only from the main thread); obj: the job's
    object, which its containers read (options.containers)."""
    for field, why in ignored_locally(job):
        err.write(f"ringrun run: warning: {field} has no effect in a local run: {why}\n")
    run_dir = tempfile.mkdtemp(prefix=f"ringrun-{job.name}-", dir=options.run_parent)
    lock = processes = None
    try:
        lock = _lock_log_dir(options.log_dir) if options.log_dir else None
        if options.containers is not None:  # the engine's client runs as this process; the pods as their images say
            supervisor = Supervisor(out, err, log_dir=options.log_dir, grace=options.grace,
                                    rotation=options.log_rotation)
            held = any(plan.held for plan in local_plans(job, run_dir).values())
            specs, processes = _container_specs(job, obj, run_dir, options, supervisor, err, held)
            policy = dataclasses.replace(job_policy(job, options.timeout), framework=None)
        else:
            specs = _process_specs(job, run_dir, options)
            processes = Supervisor(out, err, log_dir=options.log_dir, grace=options.grace,
                                   rotation=options.log_rotation, run_as=options.run_as)
            policy = job_policy(job, options.timeout)

        def publish(state):
            if options.status_path:
                text = json.dumps(document(job, state), indent=2)
                try:
                    files.write_atomic(options.status_path, text.encode("utf-8"), mode=0o644)
                except OSError as exc:
                    raise SetupError(f"cannot write the status to {options.status_path}: "
                                     f"{exc.strerror or exc}; every replica was stopped") from None
            if on_state is not None:
                on_state(state)

        def log(plan, message):
            err.write(f"[{plan.name}] {message}\n")
            err.flush()

        if options.containers is not None and options.containers.environ is not None:
            environ = options.containers.environ  # the engine client's (a server's own), not the job's
        execution = Execution(specs, processes, policy, environ, is_root=options.is_root, on_state=publish, log=log,
                              note=log, run_as=None if options.containers is not None else options.run_as)
        if attach is not None:
            attach(execution)
        with stop_signals(execution.interrupt) if signals else contextlib.nullcontext():
            outcome = execution.run()
        if outcome.how == "held":
            err.write(f"ringrun run: {job.kind} {job.namespace}/{job.name} is not started: {outcome.state.held} "
                      f"(exit code {outcome.code})\n")
        return outcome.code, document(job, outcome.state)
    finally:
        try:
            if hasattr(processes, "close"):  # containers and the job's network
                processes.close()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)  # its private key and env files
            if lock is not None:
                lock.close()


def _process_specs(job, run_dir, options):
    """Every replica a local process (runtime/local.py)."""
    if options.run_as is not None:  # the job's user reads its hostfile there; no one else may
        os.chown(run_dir, -1, options.run_as.gid)
        os.chmod(run_dir, 0o750)
    roles = deciders(job)
    # a rendezvous port of this job's own: two jobs on one machine never meet at the default 23456 / 9091
    port = free_loopback_port() if frameworks.of(job).rendezvous else None
    plans = local_plans(job, run_dir, port)
    if frameworks.of(job).own_folders:
        plans = {key: _own_folder(job, plan, options) for key, plan in plans.items()}
    return [ReplicaSpec(_in_working_dir(plan, options.working_dir), job.replica(role).restart_policy, role in roles,
                        after=job.replica(role).depends_on)
            for (role, _), plan in plans.items()]


def _own_folder(job, plan, options):
    """A replica that names no workingDir runs in a folder of its own, named like its pod, below the job's working
    folder (pods share no file system: two that write the same file name must not meet)."""
    if plan.working_dir:
        return plan
    base = options.working_dir or os.getcwd()
    folder = os.path.join(base, kind_of_job(job).pod_name(job.name, plan.role, plan.index))
    os.makedirs(folder, exist_ok=True)
    if options.run_as is not None:
        os.chown(folder, options.run_as.uid, options.run_as.gid)
    return dataclasses.replace(plan, working_dir=folder)


def _container_specs(job, obj, run_dir, options, supervisor, err, held):
    """Every replica a container of its image (launcher/containers.py); a held job (suspended, paused) gets plans
    that start nothing, and no engine is asked for anything."""
    from . import containers

    if held:  # its plans say why (runtime/plan.py); nothing runs them
        return _process_specs(job, run_dir, options), None
    if obj is None:
        raise UsageError("--containers: the job's object is needed (its pods read it)")
    return containers.prepare(job, obj, run_dir, options.containers, supervisor,
                              lambda message: err.write(f"ringrun run: {message}\n"))


def _lock_log_dir(log_dir):
    """Hold `log_dir` for this run (an exclusive lock on its `.ringrun.lock`, released when the run ends): two runs
    never write into the same log files at once. Raises UsageError when another run holds it."""
    os.makedirs(log_dir, exist_ok=True)
    lock = os.path.join(log_dir, ".ringrun.lock")
    try:
        return files.hold_lock(lock, f"--log-dir: another ringrun run is writing its logs into {log_dir!r}")
    except BlockingIOError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--log-dir: cannot lock {lock!r}: {exc.strerror or exc}") from None

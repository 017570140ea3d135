"""`ringrun entrypoint`: a pod's ENTRYPOINT. Executes one replica's Plan: files, ssh keys, the wait, the command.

Handlers are registered per (framework, role).
- MPI worker: sshd in the foreground (as a child, so the entrypoint can stop it); exits when sshd does, when the
  launcher says the job is over (`ringrun entrypoint --finish CODE` over ssh writes `finished` into the run
  directory), or on SIGTERM/SIGINT.
- MPI launcher: waits for every worker's sshd (DNS + TCP, one deadline), runs its command (the container's own
  mpirun command, or ringrun's mpirun argv for TensorStack), forwards SIGTERM/SIGINT, SIGKILLs after the grace
  period, then tells the workers (cleanPodPolicy Running/All) and exits with the command's code - or 6 when a
  worker pod went away during the run and the command still exited 0 (or was still running 10 s later).
- PyTorch and MXNet roles: the framework is checked (a missing extra is named), workers wait for the master /
  scheduler, then the command runs; MXNet processes never see an inherited PORT or DMLC_NODE_HOST.
TensorStack runMode.pause: nothing is started; the entrypoint says so and waits to be stopped.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ringrun.runtime.errors import SetupError

from . import frameworks, readiness, sshsetup
from .supervise import STOP_SIGNALS, Supervisor, on_stop_signals, restore_signals, run_one, with_python_on_path
from .watch import WorkerWatch

FINISHED = "finished"  # marker file in a worker's run directory: the job's exit code
POLL_SECONDS = 0.1
NOTIFY_TIMEOUT = 10.0
EXIT_WORKER_LOST = 6  # a worker pod went away while the launcher's command ran (and the command did not say so)
LOST_GRACE = 10.0  # seconds mpirun gets to notice a lost worker by itself before it is stopped


@dataclass(frozen=True)
class Settings:
    """wait_timeout: the one deadline for the readiness wait; grace: SIGTERM -> SIGKILL; python: the interpreter
    the remote `--finish` runs with (the same image on every pod); is_root: whether this process runs as root."""

    wait_timeout: float = 300.0
    grace: float = 5.0
    python: str = sys.executable
    is_root: bool = False


class Stopped(Exception):
    """A stop signal arrived while waiting."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


HANDLERS = {}


def handles(framework, role=None):
    def register(function):
        HANDLERS[(framework, role)] = function
        return function
    return register


def write_files(files):
    """Each (path, text) written atomically; parent directories made private (0700) when ringrun creates them."""
    for path, text in files:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        try:
            sshsetup.write_atomic(path, text.encode("utf-8"), mode=0o666)
        except OSError as exc:
            raise SetupError(f"cannot write {path}: {exc.strerror}") from None


def child_env(plan, environ):
    """The command's environment: the process's own less the plan's `unset`, then the plan's `env` (operator values
    already won inside it)."""
    return with_python_on_path(plan.process_env(environ))


def execute(job, plan, environ, settings, out, err):
    """Run replica `plan` of `job` to the end; returns the exit code."""
    log = _logger(err, f"{plan.role}-{plan.index}")
    if plan.mode == "pause":
        log(f"runMode.pause is enabled for job {job.name}: nothing is started; waiting to be stopped")
        return _idle()
    os.makedirs(_run_dir(plan), mode=0o700, exist_ok=True)
    write_files(plan.files)
    return HANDLERS[(job.framework, plan.role)](job, plan, environ, settings, out, err, log)


def _run_dir(plan):
    paths = [path for path, _ in plan.files]
    return os.path.dirname(paths[0]) if paths else "."


def _logger(err, name):
    def log(message):
        err.write(f"ringrun entrypoint [{name}]: {message}\n")
        err.flush()
    return log


def _idle():
    """Block until SIGTERM/SIGINT; 128+signal."""
    received = []
    previous = on_stop_signals(received.append)
    try:
        while not received:
            time.sleep(POLL_SECONDS)
        return 128 + received[0]
    finally:
        restore_signals(previous)


def wait(endpoints, settings, log):
    """The readiness wait, interruptible by SIGTERM/SIGINT (raises Stopped). WaitTimeout at the deadline."""
    if not endpoints:
        return
    log(f"waiting up to {settings.wait_timeout:g} s for {', '.join(endpoints)}")

    def stop(signum, frame):
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        readiness.wait_for(endpoints, settings.wait_timeout, log=log)
    finally:
        restore_signals(previous)


def supervise(supervisor, name, argv, env, until=None):
    """`run_one`, with a command that cannot start reported as a SetupError."""
    try:
        return run_one(supervisor, name, argv, env, until=until, poll_seconds=POLL_SECONDS)
    except OSError as exc:
        raise SetupError(f"cannot start {argv[0]}: {exc.strerror}") from None


@handles("mpi", "worker")
def run_mpi_worker(job, plan, environ, settings, out, err, log):
    if plan.ssh is not None and plan.argv[:1] == (plan.ssh.sshd,):
        sshsetup.prepare_server(plan.ssh, settings.is_root)
    marker = os.path.join(_run_dir(plan), FINISHED)
    if os.path.exists(marker):  # left by an earlier run in the same directory
        os.unlink(marker)
    supervisor = Supervisor(out, err, prefix=False, grace=settings.grace)
    log("running " + " ".join(plan.argv))
    code, how = supervise(supervisor, "sshd", plan.argv, child_env(plan, environ), until=lambda: _finished(marker))
    if how == "until":
        log(f"the launcher finished with exit code {code}; stopping")
    elif how == "exited":
        log(f"{plan.argv[0]} exited with code {code}")
    return code


def _finished(marker):
    try:
        with open(marker, encoding="utf-8") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.lstrip("-").isdigit() else 1


def finish(run_dir, code):
    """`--finish CODE`: tell the worker entrypoint supervising this run directory that the job ended with CODE."""
    if not os.path.isdir(run_dir):
        raise SetupError(f"--finish: run directory {run_dir!r} does not exist (is this a ringrun MPI worker?)")
    write_files(((os.path.join(run_dir, FINISHED), f"{code}\n"),))
    return 0


@handles("mpi", "launcher")
def run_mpi_launcher(job, plan, environ, settings, out, err, log):
    if plan.ssh is not None:
        sshsetup.prepare_client(plan.ssh)
    try:
        wait(plan.wait_for, settings, log)
    except Stopped as stop:
        return 128 + stop.signum
    env = child_env(plan, environ)
    if settings.is_root and job.mpi.implementation == "OpenMPI":
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    log("running " + " ".join(plan.argv))
    supervisor = Supervisor(out, err, prefix=False, grace=settings.grace)
    hosts = [readiness.split_endpoint(e)[0] for e in plan.wait_for]
    ssh_config = next((path for path, _ in plan.files if path.endswith("/ssh_config")), None)
    watch = WorkerWatch(hosts, ssh_config, env).start() if hosts and ssh_config else None

    def worker_lost():
        lost = watch.lost() if watch else {}
        return EXIT_WORKER_LOST if lost and max(lost.values()) >= LOST_GRACE else None

    try:
        code, how = supervise(supervisor, "launcher", plan.argv, env, until=worker_lost)
    finally:
        lost = sorted(watch.lost()) if watch else []
        if watch:
            watch.stop()
    if lost:
        log(f"worker(s) lost while the job ran: {', '.join(lost)}"
            + (f"; {plan.argv[0]} was still running {LOST_GRACE:g} s later and was stopped" if how == "until" else ""))
        if code == 0:
            code = EXIT_WORKER_LOST
    if plan.notify:
        notify_workers(plan.notify, ssh_config, env, settings, code, log)
    log(f"exit code {code}")
    return code


def notify_workers(hosts, ssh_config, env, settings, code, log):
    """`ssh HOST python -m ringrun.launcher entrypoint --finish CODE` on every host at once, each bounded in time."""
    failures = []

    def tell(host):
        argv = ["ssh", "-F", ssh_config, host, settings.python, "-m", "ringrun.launcher", "entrypoint", "--finish",
                str(code)]
        try:
            result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=NOTIFY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{host}: {exc}")
            return
        if result.returncode != 0:
            failures.append(f"{host}: exit {result.returncode} {result.stderr.strip()[-200:]}")

    threads = [threading.Thread(target=tell, args=(host,), daemon=True) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(NOTIFY_TIMEOUT + 5)
    for failure in failures:
        log(f"could not tell worker the job ended: {failure}")


def run_framework_role(job, plan, environ, settings, out, err, log):
    """A PyTorch or MXNet role: its framework checked first, then the wait the plan asks for (workers: the master or
    scheduler, one deadline; the roles the others connect to wait for nothing), then the command; its exit code."""
    if not plan.argv:
        raise SetupError(f"{plan.role}: no command to run (give the container a command, or `-- CMD` after "
                         "`ringrun entrypoint`)")
    env = child_env(plan, environ)
    frameworks.check(job.framework, plan.role, plan.argv, env)
    try:
        wait(plan.wait_for, settings, log)
    except Stopped as stop:
        return 128 + stop.signum
    log("running " + " ".join(plan.argv))
    supervisor = Supervisor(out, err, prefix=False, grace=settings.grace)
    code, _ = supervise(supervisor, plan.role, plan.argv, env)
    return code


FRAMEWORK_ROLES = {"pytorch": ("master", "worker"),
                   "mxnet": ("scheduler", "server", "worker", "tunertracker", "tunerserver", "tuner")}
for _framework, _roles in FRAMEWORK_ROLES.items():
    for _role in _roles:
        handles(_framework, _role)(run_framework_role)

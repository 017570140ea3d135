"""`ringrun entrypoint`: a pod's ENTRYPOINT. Executes one replica's Plan: files, ssh keys, the wait, the command.

The execution core (execute.py) runs the plan; a pod adds per role (by the plan's `duty`):
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

import dataclasses
import os
import subprocess
import sys
import threading
from dataclasses import dataclass

from ringrun.runtime.errors import ExitCode, SetupError
from ringrun.runtime.policy import job_policy

from . import files, rundir
from .execute import EXIT_HELD, Execution, ReplicaSpec
from .readiness import DEFAULT_WAIT_SECONDS
from .supervise import DEFAULT_GRACE_SECONDS, Supervisor, stop_signals
from .watch import HostDiscovery, WorkerWatch

FINISHED = "finished"  # marker file in a worker's run directory: the job's exit code
NOTIFY_TIMEOUT = 10.0
EXIT_WORKER_LOST = ExitCode.WORKER_LOST  # a worker pod went away while the launcher's command ran (and the command did not say so)
LOST_GRACE = 10.0  # seconds mpirun gets to notice a lost worker by itself before it is stopped


@dataclass(frozen=True)
class Settings:
    """wait_timeout: the one deadline for the readiness wait; grace: SIGTERM -> SIGKILL; python: the interpreter
    the remote `--finish` runs with (the same image on every pod); is_root: whether this process runs as root."""

    wait_timeout: float = DEFAULT_WAIT_SECONDS
    grace: float = DEFAULT_GRACE_SECONDS
    python: str = sys.executable
    is_root: bool = False


class Role:
    """What a pod adds around the execution core for its role: `before` (set-up), `monitor(env)` (checked while the
    command runs) and `after(outcome)` (the exit code the pod ends with). The default role adds nothing."""

    def __init__(self, job, plan, settings, log):
        self.job, self.plan, self.settings, self.log = job, plan, settings, log

    def before(self):
        pass

    monitor = None

    def after(self, outcome):
        return outcome.code


def execute(job, plan, environ, settings, out, err):
    """Run replica `plan` of `job` in this pod to the end; returns the exit code. A held plan (runMode.pause,
    runPolicy.suspend) starts nothing and waits to be stopped; a pod's restarts are the kubelet's, not ringrun's."""
    log = _logger(err, plan.name)
    role = ROLES[plan.duty](job, plan, settings, log)
    supervisor = Supervisor(out, err, prefix=False, grace=settings.grace)
    policy = dataclasses.replace(job_policy(job), deadline=None)  # the operator keeps the job's deadline
    execution = Execution([ReplicaSpec(plan, monitor=role.monitor)], supervisor, policy, environ,
                          is_root=settings.is_root, wait_timeout=settings.wait_timeout,
                          log=lambda _, message: log(message), note=lambda _, message: log(message))
    with stop_signals(execution.interrupt):
        if not plan.held:
            role.before()
        outcome = execution.run()
        if outcome.how == "held":
            log(f"job {job.name}: {plan.held}: nothing is started; waiting to be stopped")
            return execution.idle()
    return role.after(outcome)


def _logger(err, name):
    def log(message):
        err.write(f"ringrun entrypoint [{name}]: {message}\n")
        err.flush()
    return log


class FinishedMarker:
    """A worker's monitor: the code `ringrun entrypoint --finish CODE` wrote into the run directory, else None."""

    def __init__(self, path):
        self.path = path

    def check(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.lstrip("-").isdigit() else 1

    def close(self):
        pass


class MPIWorker(Role):
    """sshd in the foreground (a child, so the entrypoint can stop it); ends when sshd does, when the launcher says
    the job is over, or on a stop signal."""

    def monitor(self, env):
        """Made when sshd starts, after the run directory was checked."""
        marker = os.path.join(self.plan.run_dir, FINISHED)
        if os.path.lexists(marker):  # left by an earlier run in the same directory
            os.unlink(marker)
        return FinishedMarker(marker)

    def after(self, outcome):
        if outcome.how == "monitor":
            self.log(f"the launcher finished with exit code {outcome.code}; stopping")
        elif outcome.how == "exited" and self.plan.argv:
            self.log(f"{self.plan.argv[0]} exited with code {outcome.code}")
        return outcome.code


class LostWorkers:
    """A launcher's monitor: one idle ssh session per worker (WorkerWatch); EXIT_WORKER_LOST once a worker has been
    gone LOST_GRACE seconds and the command has not ended by itself."""

    def __init__(self, watch):
        self.watch = watch.start()
        self.lost = []

    def check(self):
        lost = self.watch.lost()
        return EXIT_WORKER_LOST if lost and max(lost.values()) >= LOST_GRACE else None

    def close(self):
        self.lost = sorted(self.watch.lost())
        self.watch.stop()


class MPILauncher(Role):
    """Waits for every worker's sshd (and ssh login with WaitForWorkersReady), runs its command, watches the workers,
    then tells them the job ended (cleanPodPolicy Running/All); exit code 6 when a worker was lost and the command
    still exited 0 (or was still running LOST_GRACE seconds later)."""

    watched = None

    def monitor(self, env):
        if not (self.plan.workers and self.plan.ssh_config):
            return None
        self.env = env
        if self.plan.discover_hosts is not None:  # elastic Horovod: workers come and go, listed as they do
            self.watched = HostDiscovery(self.plan.discovery, self.plan.slots, self.plan.discover_hosts,
                                         self.plan.ssh_config, env, self.log)
        else:
            self.watched = LostWorkers(WorkerWatch(self.plan.workers, self.plan.ssh_config, env))
        return self.watched

    def after(self, outcome):
        code = outcome.code
        lost = self.watched.lost if self.watched else []
        if lost:
            self.log(f"worker(s) lost while the job ran: {', '.join(lost)}" + (
                f"; {self.plan.argv[0]} was still running {LOST_GRACE:g} s later and was stopped"
                if outcome.how == "monitor" else ""))
            if code == 0:
                code = EXIT_WORKER_LOST
        if self.plan.notify and self.watched is not None:  # the command ran: the workers may be told
            notify_workers(self.plan.notify, self.plan.ssh_config, self.env, self.settings, code, self.log)
        self.log(f"exit code {code}")
        return code


class FrameworkRole(Role):
    """A replica that runs its own command (PyTorch and MXNet roles): the command is required (the framework is
    checked by the core, then the wait)."""

    def before(self):
        if not self.plan.argv:
            raise SetupError(f"{self.plan.role}: no command to run (give the container a command, or `-- CMD` after "
                             "`ringrun entrypoint`)")


def finish(run_dir, code):
    """`--finish CODE`: tell the worker entrypoint supervising this run directory that the job ended with CODE."""
    if not os.path.isdir(run_dir):
        raise SetupError(f"--finish: run directory {run_dir!r} does not exist (is this a ringrun MPI worker?)")
    rundir.secure(run_dir)
    files.write_files(((os.path.join(run_dir, FINISHED), f"{code}\n"),))
    return 0


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


# a plan's duty -> what the pod adds around its command
ROLES = {"sshd": MPIWorker, "launcher": MPILauncher, "command": FrameworkRole}

__all__ = ["EXIT_HELD", "EXIT_WORKER_LOST", "Settings", "execute", "finish"]

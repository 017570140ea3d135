"""The execution core: runs a job's Plans. `ringrun entrypoint` (one replica in a pod), `ringrun run` (every replica
of a job on this machine), `ringrun launch` (one mpirun) and the job API server are policies on top of it.

Model: torch.distributed.elastic's agent. A `ReplicaSpec` (its WorkerSpec) is a Plan plus the restartPolicy and
whether the replica decides the job's success; `Execution.run()` is the one agent loop, over an abstract process
layer (`Supervisor`, or a fake in tests) and an injected clock:

1. held? A plan in mode pause/suspend starts nothing: the state says why and run() returns how="held" (a pod idles
   until stopped, `ringrun run` exits 7, the server waits for the job to be resumed).
2. prepare: every plan's run directory checked (launcher/rundir.py: nobody else can write there), its files
   written (atomic, never through a planted name), the framework checked once per command.
3. per replica, in order: ssh keys set up, its endpoints waited for (and ssh logins, WaitForWorkersReady), the
   child's environment built (inherited less `unset`, plan env, root-only env, this Python first on PATH), started in
   its workingDir; a monitor made for it if the policy gives one.
4. loop: exits polled and judged (restartPolicy, backoffLimit, deciders), monitors checked, the deadline and stop
   requests (`interrupt`) honoured, every state change published through `on_state`.
5. clean-up: cleanPodPolicy None lets the others finish after success; anything else stops what still runs
   (SIGTERM to each replica's keeper, which ends the replica's tree, SIGKILL after the grace period).
"""

import dataclasses
import functools
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from ringrun.runtime.errors import ExitCode
from ringrun.runtime.plan import Plan
from ringrun.runtime.policy import JobPolicy, should_restart
from ringrun.runtime.status import JobState, ReplicaState

from . import files, frameworks, mpirun, readiness, rundir, sshsetup
from .supervise import DEFAULT_GRACE_SECONDS, Supervisor, stop_signals

EXIT_HELD = ExitCode.HELD  # nothing started: the job is suspended (runPolicy.suspend) or paused (runMode.pause)
EXIT_DEADLINE = ExitCode.DEADLINE
EXIT_NOT_STARTED = ExitCode.NOT_STARTED
POLL_SECONDS = 0.05


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_python_on_path(environ):
    """A copy of `environ` with this Python's bin folder first on PATH (where the venv's mpirun, python and ringrun
    are), as a job image has it."""
    env = dict(environ)
    here = os.path.dirname(sys.executable)
    parts = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    if parts[:1] != [here]:
        env["PATH"] = os.pathsep.join([here] + parts)
    return env


@dataclass(frozen=True)
class ReplicaSpec:
    """One replica to run. monitor(env) -> an object with check() (None, or an exit code that ends the job now) and
    close(), made when the replica starts (e.g. a worker pod's "the launcher finished" marker), or None when there
    is nothing to watch."""

    plan: object
    restart_policy: str = "Never"
    decides: bool = True
    monitor: Callable | None = None
    serves: bool = False  # it serves the others (an MPI worker's sshd): it never holds a finished job open
    # (role, "Ready" | "Complete"): it starts once every replica of each such role runs, or has succeeded (a
    # JobSet's dependsOn: Trainer's initializers complete before its nodes start)
    after: tuple = ()

    @property
    def key(self):
        return (self.plan.role, self.plan.index)


@dataclass(frozen=True)
class Outcome:
    """code: the job's exit code; how: exited | monitor | signal | deadline | held | not-started; state: the last
    observation; stopped_by: the replica whose monitor ended the job (how == monitor)."""

    code: int
    how: str
    state: JobState
    stopped_by: tuple | None = None


def _quiet(plan, message):
    pass


class Execution:
    """Runs `replicas` (ReplicaSpecs) under `policy` (ringrun.runtime.policy.JobPolicy) on `processes` (start(name,
    argv, env, cwd) -> child with .code; poll() -> [(child, code)]; running(); terminate(children=None)).

    environ: the variables every replica inherits; on_state(JobState) on every change; log(plan, message) for
    problems and note(plan, message) for progress; wait_timeout: the one deadline of each readiness wait;
    adjust_argv(plan, argv, env) -> (argv, warnings) for an MPI launcher's command (launcher/mpirun.py: Open MPI 4's
    options under Open MPI 5, an elastic horovodrun's discovery script and ssh); run_as: the supervise.RunAs the
    job's processes run as (the same `processes` starts them so): the programs set-up runs for the job (its
    Python asked for its framework, its mpirun for its version) run as that user too, never as this one.
    """

    def __init__(self, replicas, processes, policy, environ, *, is_root=False,
                 wait_timeout=readiness.DEFAULT_WAIT_SECONDS, on_state=None, log=None, note=None, clock=time.monotonic,
                 sleep=time.sleep, now=utc_now, poll_seconds=POLL_SECONDS, python_on_path=True,
                 adjust_argv=mpirun.for_launcher, run_as=None):
        self.replicas = {spec.key: spec for spec in replicas}
        self.processes, self.policy, self.environ = processes, policy, dict(environ)
        self.is_root, self.wait_timeout = is_root, wait_timeout
        self.on_state, self.log, self.note = on_state, log or _quiet, note or _quiet
        self.clock, self.sleep, self.now, self.poll_seconds = clock, sleep, now, poll_seconds
        self.python_on_path = python_on_path  # False: each replica's env is exactly its plan's (run_commands)
        # (plan, argv, env) -> (argv, [warning]) for an MPI launcher's command
        self.adjust_argv = functools.partial(adjust_argv, run_as=run_as) if run_as else adjust_argv
        self.run_as = run_as
        self.interrupted = None
        self.report_error = None
        self.failures = 0
        self.state = JobState(start_time=now(), replicas=tuple(ReplicaState(*key) for key in self.replicas))
        self._children, self._monitors = {}, {}
        self._waiting = set()  # replicas whose `after` steps do not hold yet

    # -- requests from outside (signal handlers, the server) ----------------------------------------------------
    def interrupt(self, signum):
        """Stop the job: every replica stopped, exit code 128+signum."""
        self.interrupted = signum

    def update_policy(self, **changes):
        """Change the running job's policy (a replace of the job: a new deadline, counted from the start as before,
        or cleanPodPolicy); read by the loop at its next turn and by the clean-up at the end."""
        self.policy = dataclasses.replace(self.policy, **changes)

    def idle(self):
        """Block until `interrupt`; returns 128+signum (a held pod waits to be stopped)."""
        while self.interrupted is None:
            self.sleep(self.poll_seconds * 2)
        return 128 + self.interrupted

    def _env(self, plan):
        env = plan.process_env(self.environ, self.is_root)
        return with_python_on_path(env) if self.python_on_path else env

    # -- state -----------------------------------------------------------------------------------------------
    def _publish(self):
        """Report the state. A report that fails stops the job: the loop sees `report_error`, everything is stopped,
        and run() raises it once nothing runs any more."""
        if self.on_state is not None and self.report_error is None:
            try:
                self.on_state(self.state)
            except Exception as exc:  # noqa: BLE001 - whatever the callback raised, raised again after clean-up
                self.report_error = exc

    def _set(self, key, **changes):
        replicas = tuple(dataclasses.replace(r, **changes) if (r.role, r.index) == key else r
                         for r in self.state.replicas)
        self.state = dataclasses.replace(self.state, replicas=replicas)
        self._publish()

    def _finish(self, outcome, reason, message):
        if self.state.outcome is None:
            self.state = dataclasses.replace(self.state, outcome=outcome, reason=reason, message=message,
                                             completion_time=self.now())

    def _fail(self, message, reason=None):
        self._finish("Failed", reason or f"{self.policy.kind}Failed", message)

    # -- the run ---------------------------------------------------------------------------------------------
    def prepare(self):
        """Write every plan's files and check the framework once per command and search path. Raises SetupError."""
        checked = set()
        for spec in self.replicas.values():
            plan = spec.plan
            if plan.files or plan.ssh is not None:  # trusted before anything is written or read there
                rundir.secure(plan.run_dir, strict=plan.ssh is not None and plan.ssh.is_server)
            files.write_files(plan.files, executable=(plan.discover_hosts,))
            env = self._env(plan)
            key = (plan.argv, env.get("PATH"), env.get("PYTHONPATH"))
            if plan.argv and key not in checked:
                checked.add(key)
                here = plan.working_dir if plan.working_dir and os.path.isdir(plan.working_dir) else None
                frameworks.check(self.policy.framework, plan.role, plan.argv, env, self.run_as, here)

    def run(self):
        """Run to the end; returns an Outcome. Raises SetupError (exit 5) and WaitTimeout (exit 4) from set-up."""
        held = next((s.plan.held for s in self.replicas.values() if s.plan.held), None)
        if held:
            self.state = dataclasses.replace(self.state, held=held)
            self._publish()
            if self.report_error is not None:
                raise self.report_error
            return Outcome(EXIT_HELD, "held", self.state)
        self.prepare()
        self._publish()
        started = self.clock()
        outcome = None
        try:
            outcome = self._start_all()
            if outcome is None:
                outcome = self._loop(started)
        finally:
            self._clean_up(started, outcome.how if outcome is not None else None)
            self._publish()
        if self.report_error is not None:
            raise self.report_error
        return dataclasses.replace(outcome, state=self.state)

    def _due(self, key):
        """Whether replica `key`'s `after` steps hold: every replica of each role running (Ready) or succeeded."""
        wanted = {"Ready": ("Running", "Succeeded"), "Complete": ("Succeeded",)}
        return all(r.phase in wanted[status] for role, status in self.replicas[key].after
                   for r in self.state.replicas if r.role == role)

    def _start_due(self):
        """Start the replicas still waiting for their steps whose steps now hold, in order; an Outcome when one
        cannot start (the job failed), else None."""
        for key in self.replicas:
            if key in self._waiting and self._due(key):
                self._waiting.discard(key)
                try:
                    if not self._start(key):
                        return Outcome(EXIT_NOT_STARTED, "not-started", self.state)
                except readiness.Cancelled:
                    self._fail(f"interrupted by signal {self.interrupted}")
                    return Outcome(128 + self.interrupted, "signal", self.state)
        return None

    def _start_all(self):
        for key in self.replicas:
            if self.replicas[key].after and not self._due(key):
                self._waiting.add(key)  # started by the loop once its steps hold
                continue
            if self.interrupted is not None:  # asked to stop while set-up ran: start nothing more
                self._fail(f"interrupted by signal {self.interrupted}")
                return Outcome(128 + self.interrupted, "signal", self.state)
            try:
                started = self._start(key)
            except readiness.Cancelled:
                self._fail(f"interrupted by signal {self.interrupted}")
                return Outcome(128 + self.interrupted, "signal", self.state)
            if not started:
                return Outcome(EXIT_NOT_STARTED, "not-started", self.state)
        return None

    def _ready(self, spec, env):
        """ssh keys, then the readiness waits (cancelled by `interrupt`)."""
        plan = spec.plan
        if plan.ssh is not None:
            if plan.ssh.is_server:
                sshsetup.prepare_server(plan.ssh, self.is_root)
            else:
                sshsetup.prepare_client(plan.ssh)
        cancelled = lambda: self.interrupted is not None  # noqa: E731
        log = lambda message: self.note(plan, message)  # noqa: E731
        if plan.wait_for:
            self.note(plan, f"waiting up to {self.wait_timeout:g} s for {', '.join(map(str, plan.wait_for))}")
            readiness.wait_for(plan.wait_for, self.wait_timeout, log=log, cancelled=cancelled)
        if plan.wait_for_login and plan.workers:
            self.note(plan, f"launcherCreationPolicy WaitForWorkersReady: waiting up to {self.wait_timeout:g} s "
                            f"for an ssh login to {', '.join(plan.workers)}")
            probe = readiness.ssh_login(plan.ssh_config, env)
            readiness.wait_for_logins(plan.workers, probe, self.wait_timeout, log=log, cancelled=cancelled)

    def _start(self, key, first=True):
        """Start replica `key` (set-up and waits first when `first`). False when it cannot start: the job failed."""
        spec = self.replicas[key]
        plan = spec.plan
        env = self._env(plan)
        if first:
            self._ready(spec, env)
        if not plan.argv:
            self.log(plan, "nothing to run: the spec gives it no command (the image's default): set one with "
                           f"--set {plan.role}.command=...")
            return self._not_started(key, "it has no command")
        if plan.working_dir and not os.path.isdir(plan.working_dir):
            self.log(plan, f"workingDir {plan.working_dir!r}: no such directory")
            return self._not_started(key, f"its workingDir {plan.working_dir!r} does not exist")
        argv = plan.argv
        for line in plan.notes if first else ():
            self.log(plan, f"warning: {line}")
        if plan.hostfile is not None:  # an MPI launcher: its command may be written for another mpirun
            argv, warnings = self.adjust_argv(plan, argv, env)
            for warning in warnings:
                self.log(plan, f"warning: {warning}")
        self.note(plan, "running " + " ".join(argv))  # before each start, restarts too (pod logs are read for it)
        try:
            child = self.processes.start(plan.name, argv, env, cwd=plan.working_dir)
        except OSError as exc:
            self.log(plan, f"cannot start {plan.argv[0]}: {exc.strerror or exc}")
            return self._not_started(key, f"{plan.argv[0]} cannot be started")
        self._children[child] = key
        monitor = spec.monitor(env) if spec.monitor is not None else None
        if monitor is not None:  # None: nothing to watch (an MPI launcher whose ranks no ssh session can follow)
            self._monitors[key] = monitor
        self._set(key, phase="Running")
        return True

    def _not_started(self, key, why):
        self._fail(f"replica {key[0]}-{key[1]} could not be started: {why}")
        self._set(key, phase="Failed", exit_code=EXIT_NOT_STARTED)
        return False

    def _loop(self, started):
        while True:
            deadline = self.policy.deadline  # read each turn: a replace of the job may move it
            outcome = None
            for child, code in self.processes.poll():
                key = self._children.pop(child)
                self._close_monitor(key)
                if outcome is None:
                    outcome = self._exited(key, code)
                else:  # the job ended earlier in this batch: the others' exits are only recorded
                    self._record(key, code)
            if outcome is not None:
                return outcome
            if self._waiting and self.interrupted is None:
                outcome = self._start_due()
                if outcome is not None:
                    return outcome
            for key, monitor in list(self._monitors.items()):
                code = monitor.check()
                if code is not None:
                    self._finish("Succeeded" if code == 0 else "Failed", f"{self.policy.kind}Stopped",
                                 f"replica {key[0]}-{key[1]} was stopped by its monitor with code {code}")
                    return Outcome(code, "monitor", self.state, stopped_by=key)
            if self.interrupted is not None:
                self._fail(f"interrupted by signal {self.interrupted}")
                return Outcome(128 + self.interrupted, "signal", self.state)
            if self.report_error is not None:
                self._fail(f"the job's state could not be reported: {self.report_error}")
                return Outcome(EXIT_NOT_STARTED, "report-failed", self.state)
            if deadline is not None and self.clock() - started >= deadline:
                self._fail(f"{self.policy.name} has run longer than the deadline of {deadline:g} s",
                           reason="DeadlineExceeded")
                return Outcome(EXIT_DEADLINE, "deadline", self.state)
            self.sleep(self.poll_seconds)

    def _exited(self, key, code):
        """Judge an exit; an Outcome when the job is over, else None (the replica restarted, or others still run)."""
        spec = self.replicas[key]
        plan = spec.plan
        if should_restart(spec.restart_policy, code, spec.decides):
            if code != 0:
                self.failures += 1
            if self.failures > self.policy.backoff_limit:
                self.note(plan, f"exited with code {code}: not restarted, the job has reached its backoffLimit "
                                f"({self.policy.backoff_limit})")
                self._fail(f"{self.policy.name} has failed because it has reached the specified backoff limit "
                           f"({self.policy.backoff_limit})", reason="BackoffLimitExceeded")
                self._set(key, phase="Failed", exit_code=code)
                return Outcome(code, "exited", self.state)
            restarts = next(r.restarts for r in self.state.replicas if (r.role, r.index) == key) + 1
            counted = (f"attempt {self.failures + 1} of {self.policy.backoff_limit + 1}" if code != 0
                       else "a success does not count against backoffLimit")
            self.note(plan, f"exited with code {code}: restarting it (restartPolicy {spec.restart_policy}, "
                            f"{counted})")
            self.state = dataclasses.replace(self.state, restarting_since=self.now())
            self._set(key, phase="Pending", exit_code=code, restarts=restarts)
            if not self._start(key, first=False):
                return Outcome(EXIT_NOT_STARTED, "not-started", self.state)
            return None
        self.note(plan, f"exited with code {code}")
        if code != 0:
            self._fail(f"{self.policy.name} has failed: replica {key[0]}-{key[1]} exited with code {code}")
            self._set(key, phase="Failed", exit_code=code)
            return Outcome(code, "exited", self.state)
        self._set(key, phase="Succeeded", exit_code=0)
        deciding = [r for r in self.state.replicas if self.replicas[(r.role, r.index)].decides]
        if all(r.phase == "Succeeded" for r in deciding):
            self._finish("Succeeded", f"{self.policy.kind}Succeeded", f"{self.policy.name} successfully completed.")
            return Outcome(0, "exited", self.state)
        return None

    def _record(self, key, code):
        """An exit that is final (the job is over, or ending)."""
        self.note(self.replicas[key].plan, f"exited with code {code}")
        self._set(key, phase="Succeeded" if code == 0 else "Failed", exit_code=code)

    def _close_monitor(self, key):
        monitor = self._monitors.pop(key, None)
        if monitor is not None:
            monitor.close()

    def _lets_finish(self, how):
        """cleanPodPolicy None, as the operators read it: a job that ended by a replica's exit, succeeded or failed
        (not by its deadline, a stop request, a monitor, a replica that could not start or a status that could not
        be written), leaves its other replicas running to their end."""
        return self.policy.clean_pod_policy == "None" and how == "exited" and self.interrupted is None and \
            self.report_error is None

    def _finishing(self):
        """The running replicas cleanPodPolicy None waits for: all but those that only serve the others."""
        return [c for c in self.processes.running() if c in self._children and
                not self.replicas[self._children[c]].serves]

    def _clean_up(self, started, how):
        """Stop what still runs, as cleanPodPolicy says (None: what still runs finishes, `_lets_finish`); `how`:
        how the job ended (Outcome.how)."""
        deadline = self.policy.deadline
        if self._lets_finish(how):
            for child in self._finishing():
                self.note(self.replicas[self._children[child]].plan, "still running: cleanPodPolicy None lets it "
                                                                      "finish")
            while self._finishing() and self.interrupted is None and self.report_error is None and (
                    deadline is None or self.clock() - started < deadline):
                for child, code in self.processes.poll():
                    key = self._children.pop(child)
                    self._close_monitor(key)
                    self._record(key, code)
                self.sleep(self.poll_seconds)
        stopped = "Deleted" if self.state.outcome == "Succeeded" else "Failed"
        if self.interrupted is not None:
            why = f"interrupted by signal {self.interrupted}"
        elif self.state.reason == "DeadlineExceeded":
            why = "the job passed its deadline"
        else:
            why = f"the job {(self.state.outcome or 'ended').lower()}, cleanPodPolicy {self.policy.clean_pod_policy}"
        for child in self.processes.terminate():
            key = self._children.pop(child, None)
            if key is not None:
                self.note(self.replicas[key].plan, f"stopped ({why}): exit code {child.code}")
                self._set(key, phase=stopped, exit_code=child.code)
        for key in list(self._monitors):
            self._close_monitor(key)


def run_commands(commands, out, err, what="ringrun", grace=DEFAULT_GRACE_SECONDS, cwd=None):
    """Run `commands` [(name, argv, env)] together, each with exactly its env, their output passed through: the
    first failure (or a stop signal) stops the others. Returns the exit code: 0, the first failure's, 128+N, or 127
    when one cannot start (`what: cannot start ...` on err). For `ringrun launch` and the benchmarks."""
    specs = [ReplicaSpec(Plan("Command", name, i, run_dir=cwd or os.getcwd(), env=tuple(env.items()),
                              argv=tuple(argv), working_dir=cwd)) for i, (name, argv, env) in enumerate(commands)]
    execution = Execution(specs, Supervisor(out, err, prefix=False, grace=grace), JobPolicy(name=what, kind="Command"),
                          {}, log=lambda _, message: err.write(f"{what}: {message}\n"), python_on_path=False)
    with stop_signals(execution.interrupt):
        return execution.run().code

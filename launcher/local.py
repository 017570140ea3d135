"""`ringrun run`: a whole job on this machine, every replica a local process, with the operators' job semantics.

- restartPolicy: Never (a failure is final), OnFailure (restart on a non-zero exit), Always (restart on any exit,
  except the replica whose success completes the job), ExitCode (exit codes 1-127 are final, 128 and above retried).
- backoffLimit (default 6, as a Kubernetes Job): the job fails once restarts after failures exceed it.
- activeDeadlineSeconds (and --timeout): the job is stopped and Failed with reason DeadlineExceeded.
- success: MPI launcher; PyTorch master (all workers when there is none); MXNet all workers (all tuners in MXTune).
- cleanPodPolicy / cleanUpWorkers when the job ends: Running and All stop what still runs; None lets it finish.
- SIGINT/SIGTERM stop every replica; the exit code is then 130/143.
"""

import dataclasses
import json
import os
import time
from datetime import datetime, timezone

from ringrun.runtime.status import JobState, ReplicaState, job_status

DEFAULT_BACKOFF_LIMIT = 6
EXIT_DEADLINE = 124
POLL_SECONDS = 0.05


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_files(files):
    """Write a plan's files (parent folders created; each file replaced atomically)."""
    for path, content in files:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        temporary = f"{path}.tmp{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(temporary, path)


def _deciders(job):
    """Roles whose replicas must all succeed for the job to succeed."""
    if job.framework == "mpi":
        return {"launcher"}
    if job.framework == "pytorch":
        return {"master"} if job.replica("master") else {"worker"}
    return {"tuner"} if job.mxnet.job_mode == "MXTune" else {"worker"}


def _retry(policy, code, decides):
    """Whether a replica that exited with `code` under `policy` is started again."""
    if policy == "Always":
        return not (decides and code == 0)
    if code == 0 or policy == "Never":
        return False
    if policy == "ExitCode":
        return code >= 128
    return True  # OnFailure


class LocalJob:
    """Runs `plans` {(role, index): Plan} of `job` under `supervisor`; `run()` returns (exit code, status object)."""

    def __init__(self, job, plans, supervisor, base_env, status_path=None, timeout=None, clock=time.monotonic):
        self.job, self.plans, self.sup, self.base_env = job, plans, supervisor, dict(base_env)
        self.status_path, self.clock = status_path, clock
        limits = [s for s in (job.run_policy.active_deadline_seconds, timeout) if s is not None]
        self.limit = min(limits) if limits else None
        self.backoff_limit = job.run_policy.backoff_limit
        if self.backoff_limit is None:
            self.backoff_limit = DEFAULT_BACKOFF_LIMIT
        self.deciders = _deciders(job)
        self.failures = 0
        self.interrupted = None
        self.state = JobState(start_time=utc_now(), replicas=tuple(ReplicaState(r, i) for r, i in plans))
        self._children = {}
        self.full_name = f"{job.kind} {job.namespace}/{job.name}"

    # -- state ------------------------------------------------------------------------------------------------
    def _set(self, key, **changes):
        replicas = tuple(dataclasses.replace(r, **changes) if (r.role, r.index) == key else r
                         for r in self.state.replicas)
        self.state = dataclasses.replace(self.state, replicas=replicas)
        self._publish()

    def _record(self, key, code):
        """A replica's exit that ends it (no restart)."""
        self._set(key, phase="Succeeded" if code == 0 else "Failed", exit_code=code)

    def _finish(self, outcome, reason, message):
        self.state = dataclasses.replace(self.state, outcome=outcome, reason=reason, message=message,
                                         completion_time=utc_now())

    def status(self):
        return job_status(self.job, self.state)

    def _publish(self):
        if self.status_path:
            temporary = f"{self.status_path}.tmp{os.getpid()}"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(self.document(), handle, indent=2)
            os.replace(temporary, self.status_path)

    def document(self):
        return {"apiVersion": self.job.api_version, "kind": self.job.kind,
                "metadata": {"name": self.job.name, "namespace": self.job.namespace}, "status": self.status()}

    # -- processes --------------------------------------------------------------------------------------------
    def _start(self, key):
        """Start replica `key`. When it cannot be started, the job fails (exit code 127) and None is returned."""
        plan = self.plans[key]
        env = plan.process_env(self.base_env)
        name = f"{key[0]}-{key[1]}"
        if not plan.argv:
            paused = self.job.tensorstack is not None and self.job.tensorstack.pause
            why = "runMode.pause is enabled" if paused else \
                f"the spec gives it no command (the image's default): set one with --set {key[0]}.command=..."
            self.sup.err.write(f"[{name}] nothing to run: {why}\n")
            return self._not_started(key)
        try:
            child = self.sup.start(name, plan.argv, env)
        except OSError as exc:
            self.sup.err.write(f"[{name}] cannot start {plan.argv[0]}: {exc}\n")
            return self._not_started(key)
        self._children[child] = key
        self._set(key, phase="Running")
        return child

    def _not_started(self, key):
        self._set(key, phase="Failed", exit_code=127)
        self._finish("Failed", f"{self.job.kind}Failed", f"replica {key[0]}-{key[1]} could not be started")
        return None

    def interrupt(self, signum):
        self.interrupted = signum

    def run(self):
        """Run to completion. Returns (exit code, status object)."""
        for plan in self.plans.values():
            write_files(plan.files)
        self._publish()
        started = self.clock()
        exit_with = None
        for key in self.plans:
            if self._start(key) is None:
                exit_with = 127
                break
        while exit_with is None:
            for child, code in self.sup.poll():
                if self.state.outcome is None:
                    exit_with = self._exited(self._children.pop(child), code)
                else:  # the job ended earlier in this batch: just record the exit
                    self._record(self._children.pop(child), code)
            if exit_with is not None:
                break
            if self.interrupted is not None:
                self._finish("Failed", f"{self.job.kind}Failed", f"interrupted by signal {self.interrupted}")
                exit_with = 128 + self.interrupted
            elif self.limit is not None and self.clock() - started >= self.limit:
                self._finish("Failed", "DeadlineExceeded",
                             f"{self.full_name} has run longer than the deadline of {self.limit:g} s")
                exit_with = EXIT_DEADLINE
            else:
                time.sleep(POLL_SECONDS)
        self._clean_up(started)
        self._publish()
        return exit_with, self.status()

    def _exited(self, key, code):
        """Record an exit; returns the job's exit code when the job is over, else None."""
        role, index = key
        policy = self.job.replica(role).restart_policy
        decides = role in self.deciders
        if _retry(policy, code, decides):
            if code != 0:
                self.failures += 1
            restarts = next(r.restarts for r in self.state.replicas if (r.role, r.index) == key) + 1
            if self.failures > self.backoff_limit:
                self._set(key, phase="Failed", exit_code=code)
                self._finish("Failed", "BackoffLimitExceeded",
                             f"{self.full_name} has failed because it has reached the specified backoff limit "
                             f"({self.backoff_limit})")
                return code
            self.state = dataclasses.replace(self.state, restarting_since=utc_now())
            self._set(key, phase="Pending", exit_code=code, restarts=restarts)
            return 127 if self._start(key) is None else None
        self._record(key, code)
        if code != 0:
            self._finish("Failed", f"{self.job.kind}Failed",
                         f"{self.full_name} has failed: replica {role}-{index} exited with code {code}")
            return code
        if all(r.phase == "Succeeded" for r in self.state.replicas if r.role in self.deciders):
            self._finish("Succeeded", f"{self.job.kind}Succeeded", f"{self.full_name} successfully completed.")
            return 0
        return None

    def _clean_up(self, started):
        """Stop what still runs, as cleanPodPolicy says; a failed or interrupted job always stops everything."""
        policy = self.job.run_policy.clean_pod_policy
        if self.state.outcome == "Succeeded" and policy == "None":
            while self.sup.running() and self.interrupted is None and (
                    self.limit is None or self.clock() - started < self.limit):
                for child, code in self.sup.poll():
                    self._record(self._children.pop(child), code)
                time.sleep(POLL_SECONDS)
        stopped = "Deleted" if self.state.outcome == "Succeeded" else "Failed"
        for child in self.sup.terminate():
            key = self._children.pop(child, None)
            if key is not None:
                self._set(key, phase=stopped, exit_code=child.code)


"""A job's run semantics as data (pure): which replicas decide success, when a replica is restarted, backoffLimit,
the deadline and the clean-up policy. The execution core (ringrun.launcher.execute) applies them.

- restartPolicy: Never (a failure is final), OnFailure (restart on a non-zero exit), Always (restart on any exit,
  except the replica whose success completes the job), ExitCode (exit codes 1-127 are final, 128 and above retried).
- backoffLimit (default 6, as a Kubernetes Job): the job fails once restarts after failures exceed it.
- activeDeadlineSeconds (and `ringrun run --timeout`): the job is stopped and Failed with reason DeadlineExceeded.
- success: MPI launcher; PyTorch master (all workers when there is none); MXNet all workers (all tuners in MXTune).
- cleanPodPolicy / cleanUpWorkers when the job ends: Running and All stop what still runs; None lets it finish, after
  a success or a failure alike (not after the deadline or a stop request).
"""

from dataclasses import dataclass

from .kinds import frameworks

DEFAULT_BACKOFF_LIMIT = 6


@dataclass(frozen=True)
class JobPolicy:
    """name: `Kind namespace/name` for messages; kind: the prefix of condition reasons (MPIJobFailed); framework:
    checked before anything starts (pytorch, mxnet; None checks nothing); deadline: seconds, or None."""

    name: str
    kind: str
    framework: str | None = None
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    deadline: float | None = None
    clean_pod_policy: str = "None"


def job_policy(job, timeout=None):
    """The JobPolicy of `job`; `timeout` (seconds) adds a deadline, the earlier of the two winning."""
    limits = [s for s in (job.run_policy.active_deadline_seconds, timeout) if s is not None]
    backoff = job.run_policy.backoff_limit
    return JobPolicy(name=f"{job.kind} {job.namespace}/{job.name}", kind=job.kind, framework=job.framework,
                     backoff_limit=DEFAULT_BACKOFF_LIMIT if backoff is None else backoff,
                     deadline=min(limits) if limits else None, clean_pod_policy=job.run_policy.clean_pod_policy)


def deciders(job):
    """Roles whose replicas must all succeed for the job to succeed (its framework's rule)."""
    return frameworks.of(job).deciders(job)


def should_restart(policy, code, decides):
    """Whether a replica that exited with `code` under restartPolicy `policy` is started again; `decides`: whether
    its success completes the job (Always does not restart it then)."""
    if policy == "Always":
        return not (decides and code == 0)
    if code == 0 or policy == "Never":
        return False
    if policy == "ExitCode":
        return code >= 128
    return True  # OnFailure

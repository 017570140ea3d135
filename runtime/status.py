"""Job status objects in the seeds' schema, built from plain observations (pure: the caller passes times).

Kubeflow kinds: `startTime`, `completionTime`, `conditions` (Created / Running / Restarting / Succeeded / Failed, each with
`reason` such as MPIJobSucceeded, `message`, `status`, `lastUpdateTime`, `lastTransitionTime`) and `replicaStatuses`
(`active` / `succeeded` / `failed` per replica type). TensorStack: `phase`, `conditions`, `aggregate`, `tasks`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaState:
    """One replica as the local runner sees it: phase Pending/Running/Succeeded/Failed/Deleted, last exit code,
    restarts."""

    role: str
    index: int
    phase: str = "Pending"
    exit_code: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class JobState:
    """The job as observed: `outcome` None while running, else "Succeeded" or "Failed" with a reason and message;
    `held` says why nothing was started (runPolicy.suspend, runMode.pause), else None."""

    start_time: str
    replicas: tuple[ReplicaState, ...]
    outcome: str | None = None
    reason: str | None = None
    message: str | None = None
    completion_time: str | None = None
    restarting_since: str | None = None
    held: str | None = None


def _condition(type_, status, reason, message, when):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": when, "lastTransitionTime": when}


def kubeflow_status(job, state):
    """The `status` object of a Kubeflow job (MPIJob, PyTorchJob, MXJob)."""
    full = f"{job.kind} {job.namespace}/{job.name}"
    start, end = state.start_time, state.completion_time
    conditions = [_condition("Created", "True", f"{job.kind}Created", f"{full} is created.", start)]
    if state.held:  # as the operators show a suspended job: Created and Suspended, not started
        conditions.append(_condition("Suspended", "True", f"{job.kind}Suspended",
                                     f"{full} is suspended: {state.held}.", start))
        return {"conditions": conditions, "replicaStatuses": replica_statuses(job, state)}
    running = state.outcome is None
    conditions.append(_condition("Running", "True" if running else "False", f"{job.kind}Running",
                                 f"{full} is running.", start))
    if state.restarting_since and running:
        conditions.append(_condition("Restarting", "True", f"{job.kind}Restarting",
                                     f"{full} is restarting a replica.", state.restarting_since))
    if state.outcome == "Succeeded":
        conditions.append(_condition("Succeeded", "True", f"{job.kind}Succeeded",
                                     state.message or f"{full} successfully completed.", end))
    elif state.outcome == "Failed":
        conditions.append(_condition("Failed", "True", state.reason or f"{job.kind}Failed",
                                     state.message or f"{full} has failed.", end))
    status = {"startTime": start, "conditions": conditions, "replicaStatuses": replica_statuses(job, state)}
    if end:
        status["completionTime"] = end
    return status


def replica_statuses(job, state):
    """{ReplicaType: {active, succeeded, failed}} with zero counts left out, as the operators write them."""
    result = {}
    for replica in job.replicas:
        counts = {"active": 0, "succeeded": 0, "failed": 0}
        for r in state.replicas:
            if r.role == replica.role:
                key = {"Running": "active", "Pending": "active", "Succeeded": "succeeded", "Failed": "failed"}.get(r.phase)
                if key:  # a Deleted replica (stopped by the clean-up policy) is no longer counted
                    counts[key] += 1
        result[replica.type] = {k: v for k, v in counts.items() if v}
    return result


_T9K_PHASE = {None: "Running", "Succeeded": "Succeeded", "Failed": "Failed"}


def tensorstack_status(job, state):
    """The `status` object of a TensorStack MPIJob: phase, conditions, aggregate, tasks."""
    from .kinds import registry  # which names the status rules of this module
    start, end = state.start_time, state.completion_time
    conditions = [
        {"type": "Initialized", "status": "True", "reason": "Initialized", "message": "All replicas are created.",
         "lastTransitionTime": start},
        {"type": "Running", "status": "True" if state.outcome is None else "False", "reason": "Running",
         "message": "The job is running.", "lastTransitionTime": start},
    ]
    if state.outcome == "Succeeded":
        conditions.append({"type": "Completed", "status": "True", "reason": "Succeeded",
                           "message": state.message or "The job has finished successfully.", "lastTransitionTime": end})
    elif state.outcome == "Failed":
        conditions.append({"type": "Failed", "status": "True", "reason": state.reason or "Failed",
                           "message": state.message or "The job has failed.", "lastTransitionTime": end})
    if state.held:
        conditions = [conditions[0], {"type": "Paused", "status": "True", "reason": "Paused",
                                      "message": f"The job is paused: {state.held}.", "lastTransitionTime": start}]
    aggregate = {k: 0 for k in ("creating", "pending", "running", "succeeded", "failed", "unknown", "deleted")}
    tasks = []
    for r in state.replicas:
        aggregate[r.phase.lower()] += 1
        container = {"containerPhase": {"Pending": "Waiting", "Running": "Running"}.get(r.phase, "Terminated")}
        if r.exit_code is not None and r.phase in ("Succeeded", "Failed"):
            container["exitCode"] = r.exit_code
        pod = registry.of(job).pod_name(job.name, r.role, r.index)
        tasks.append({"replicaType": r.role, "replicaIndex": r.index, "replicas": [{
            "name": pod, "uid": f"local-{pod}",
            "phase": r.phase, "containers": [container]}]})
    phase = "Paused" if state.held else _T9K_PHASE[state.outcome]
    return {"phase": phase, "conditions": conditions, "aggregate": aggregate, "tasks": tasks}


def _kubeflow_queued(job, when, why):
    full = f"{job.kind} {job.namespace}/{job.name}"
    return {"conditions": [_condition("Created", "True", f"{job.kind}Created", f"{full} is created.", when),
                           _condition("Queued", "True", "InsufficientResources", why, when)],
            "replicaStatuses": {r.type: {} for r in job.replicas}}


def _tensorstack_queued(job, when, why):
    return {"phase": "Pending", "conditions": [
        {"type": "Initialized", "status": "False", "reason": "Queued", "message": why, "lastTransitionTime": when}],
        "aggregate": {}, "tasks": []}


def _kubeflow_lost(job, status, when, why):
    conditions = [({**c, "status": "False"} if c.get("type") == "Running" else c)
                  for c in status.get("conditions", [])]
    conditions.append(_condition("Failed", "True", f"{job.kind}Failed", why, when))
    return {**status, "conditions": conditions, "completionTime": when}


def _tensorstack_lost(job, status, when, why):
    conditions = [c for c in status.get("conditions", []) if c.get("type") != "Running"]
    conditions.append({"type": "Failed", "status": "True", "reason": "Failed", "message": why,
                       "lastTransitionTime": when})
    return {**status, "phase": "Failed", "conditions": conditions}


# -- Trainer v2 TrainJob: metav1.Conditions Suspended / Complete / Failed (from its JobSet's) and jobsStatus -----
# JobSet's reasons and messages (pkg/constants), which Trainer copies into the TrainJob (plugins/jobset/jobset.go)
JOBSET_COMPLETE = ("AllJobsCompleted", "jobset completed successfully")
JOBSET_FAILED = ("FailedJobs", "jobset failed due to one or more job failures")
TRAINJOB_DEADLINE = ("DeadlineExceeded", "TrainJob exceeded its active deadline")


def _metav1_condition(type_, reason, message, when, status="True"):
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": when}


def jobs_status(job, state):
    """[{name, ready, succeeded, failed, active, suspended}] per replicated job, as JobSet counts its child Jobs
    (one Job per replicated job here, every count written, zeros too): active while its pods run (a step waiting
    for the ones before it has no Job yet), ready once every pod runs, succeeded once every pod has, failed once one
    has failed; suspended while the TrainJob is."""
    result = []
    for replica in job.replicas:
        phases = [r.phase for r in state.replicas if r.role == replica.role]
        failed = any(p == "Failed" for p in phases)
        succeeded = bool(phases) and all(p == "Succeeded" for p in phases)
        started = any(p in ("Running", "Succeeded", "Failed") for p in phases)
        done = failed or succeeded or bool(state.held)
        result.append({"name": replica.type, "ready": int(not done and all(p in ("Running", "Succeeded")
                                                                           for p in phases) and started),
                       "succeeded": int(succeeded), "failed": int(failed), "active": int(started and not done),
                       "suspended": int(bool(state.held))})
    return result


def trainer_status(job, state):
    """The `status` of a TrainJob: Trainer v2.3.0 writes no Created or Running condition; Suspended while held,
    then JobSet's Complete or Failed with JobSet's reason and message (Trainer's own for the deadline: why a replica
    failed is in the job's events and pods), and jobsStatus."""
    start, end = state.start_time, state.completion_time
    conditions = []
    if state.held:
        conditions.append(_metav1_condition("Suspended", "Suspended", "TrainJob is suspended", start))
    elif state.outcome == "Succeeded":
        conditions.append(_metav1_condition("Complete", *JOBSET_COMPLETE, end))
    elif state.outcome == "Failed":
        conditions.append(_metav1_condition("Failed", *(TRAINJOB_DEADLINE if state.reason == "DeadlineExceeded"
                                                          else JOBSET_FAILED), end))
    return {"conditions": conditions, "jobsStatus": jobs_status(job, state)}


def _trainer_queued(job, when, why):
    return {"conditions": [], "jobsStatus": [{"name": r.type, "ready": 0, "succeeded": 0, "failed": 0, "active": 0,
                                              "suspended": 0} for r in job.replicas]}


def _trainer_lost(job, status, when, why):
    conditions = [c for c in status.get("conditions", []) if c.get("type") != "Failed"]
    conditions.append(_metav1_condition("Failed", JOBSET_FAILED[0], why, when))
    return {**status, "conditions": conditions}


def _trainer_merge(old, new, when):
    """A TrainJob's new status over the stored one: the progress its pods reported (trainerStatus) is kept, and a
    TrainJob that was suspended and runs again says so (Suspended False, Resumed: the trainjob controller's
    setSuspendedCondition)."""
    result = dict(new)
    if old.get("trainerStatus") is not None and "trainerStatus" not in new:
        result["trainerStatus"] = old["trainerStatus"]
    before = next((c for c in old.get("conditions", []) if isinstance(c, dict) and c.get("type") == "Suspended"),
                  None)
    if before is not None and not any(c.get("type") == "Suspended" for c in new.get("conditions", [])):
        resumed = before if before.get("status") == "False" else _metav1_condition(
            "Suspended", "Resumed", "TrainJob is resumed", when, status="False")
        result["conditions"] = [resumed] + list(new.get("conditions", []))
    return result


@dataclass(frozen=True)
class StatusRules:
    """How one API writes a job's status (a kind's, runtime/kinds/registry.py): build(job, state) -> the status;
    queued(job, when, why) -> waiting to be admitted (too little free cpu or memory: Kubeflow Created plus a
    `Queued` condition saying why, TensorStack phase Pending); lost(job, stored status, when, why) -> Failed, the
    server having stopped while the job ran; merge(stored status, new status, when) -> what is written (what the
    stored one has that the runner does not know)."""

    build: object
    queued: object
    lost: object
    merge: object = lambda old, new, when: new


KUBEFLOW = StatusRules(kubeflow_status, _kubeflow_queued, _kubeflow_lost)
TENSORSTACK = StatusRules(tensorstack_status, _tensorstack_queued, _tensorstack_lost)
TRAINER = StatusRules(trainer_status, _trainer_queued, _trainer_lost, _trainer_merge)


def finished(status):
    """Whether a stored status says the job is over (Succeeded or Failed)."""
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    return any(c.get("type") in ("Succeeded", "Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions", []) if isinstance(c, dict))

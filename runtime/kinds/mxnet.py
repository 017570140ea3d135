"""Kubeflow MXJob: kubeflow.org/v1 (training-operator; the seed's inline cleanPodPolicy as in mxnet-operator)."""

from ..model import JobSpec, MXNetOptions
from . import common

ROLES = {"MXTrain": ("Scheduler", "Server", "Worker"), "MXTune": ("TunerTracker", "TunerServer", "Tuner")}
COORDINATOR = {"MXTrain": "Scheduler", "MXTune": "TunerTracker"}


def parse(doc, api_version, kind):
    name, namespace, spec = common.job_spec(doc)
    if spec is None:
        return None
    mode = spec["jobMode"].string(default="MXTrain", choices=tuple(ROLES)) or "MXTrain"
    known = ROLES[mode]
    replicas_field = spec["mxReplicaSpecs"]
    # Roles of the other mode are named as such, so "Tuner in an MXTrain job" reads as what it is.
    misplaced = {t: f"not a role of jobMode {mode} (roles: {', '.join(known)})"
                 for roles in ROLES.values() for t in roles if t not in known}
    replicas, seen = common.replica_specs(replicas_field, known, {}, misplaced,
                                          default_replicas=dict.fromkeys(known, 1))  # training-operator's
    common.require_single(replicas_field, replicas, seen, COORDINATOR[mode])
    run_policy = common.run_policy(spec)
    if COORDINATOR[mode].lower() not in replicas:
        return None
    common.check_host_names(doc, name, replicas.values())
    return JobSpec(api_version, kind, name, namespace, "mxnet",
                   tuple(replicas[t.lower()] for t in known if t.lower() in replicas), run_policy,
                   mxnet=MXNetOptions(job_mode=mode))

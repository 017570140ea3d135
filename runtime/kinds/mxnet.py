"""Kubeflow MXJob: kubeflow.org/v1 (training-operator; the seed's inline cleanPodPolicy as in mxnet-operator)."""

import copy

from .. import env as envs
from ..model import JobSpec, MXNetOptions, OperatorPod
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
    return JobSpec(api_version, kind, name, namespace, "mxnet",
                   tuple(replicas[t.lower()] for t in known if t.lower() in replicas), run_policy,
                   mxnet=MXNetOptions(job_mode=mode))


def tuner_labels(obj, result, spec_fields, out):
    """A compat rewrite (runtime/compat.py): mxnet-operator's ReplicaSpec had `label` (the TVM tuner server's key);
    training-operator's CRD dropped it and reads the `tuner-server-key` annotation of the template instead
    (pkg/controller.v1/mxnet/mxnet.go), while its MXTune example still writes `label`. Moved there unless the
    annotation is set."""
    replicas = obj["spec"].get("mxReplicaSpecs")
    if not isinstance(replicas, dict):
        return result
    for name, replica in replicas.items():
        if not isinstance(replica, dict) or not isinstance(replica.get("label"), str):
            continue
        result = result or copy.deepcopy(obj)
        moved = result["spec"]["mxReplicaSpecs"][name]
        label = moved.pop("label")
        template = moved.get("template")
        path = f"spec.mxReplicaSpecs.{name}.label"
        meta = template.setdefault("metadata", {}) if isinstance(template, dict) else None
        annotations = meta.setdefault("annotations", {}) if isinstance(meta, dict) else None
        if not isinstance(annotations, dict):
            out.warnings.append((path, "ignored: the replica has no template whose annotations could hold it"))
        elif "tuner-server-key" in annotations:
            out.warnings.append((path, "ignored: the template's tuner-server-key annotation is set and wins"))
        else:
            annotations["tuner-server-key"] = label
            out.warnings.append((path, f"read as template.metadata.annotations['tuner-server-key'] = {label!r} "
                                       "(where training-operator reads it; its MXJob CRD has no `label`)"))
    return result


def operator_pod(job, role, index):
    """What training-operator gives a replica's pod: its variables (runtime/env.py) in the main container; the
    replica is reached by its Service, named like its pod."""
    return OperatorPod(env=tuple(envs.mxnet_env(job, role, index).items()))

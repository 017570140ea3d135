"""Pods as objects (pure): one Pod per replica of each job, as the operators' pods look in a cluster (the operators'
labels, an owner reference to the job, phase, conditions, container statuses with exit codes and start/finish
times), built by the controller from each replica's state and kept in the store, so they are read, listed and
watched like every object. An MPIJob's workers are slots of the launcher's mpirun on this machine (no process of
their own): their ranks' output is in the launcher's log, as mpirun gathers it in a cluster too.

Each replica's log is the file `<role>-<index>.log` in its job's log folder; the pod's labels name both.
"""

import os
import uuid
from dataclasses import dataclass

from ringrun.runtime.kinds.registry import kind_of

_MAIN_ROLES = ("launcher", "master", "scheduler")
TYPE_LABEL, INDEX_LABEL = "training.kubeflow.org/replica-type", "training.kubeflow.org/replica-index"


@dataclass(frozen=True)
class Replica:
    """What the controller knows of one replica: its pod name, role, type, index, phase (Pending, Running,
    Succeeded, Failed, Deleted), exit code, restarts, and when it started and finished (None: not yet)."""

    name: str
    role: str
    type: str
    index: int
    phase: str
    exit_code: int | None
    restarts: int
    started: str | None = None
    finished: str | None = None


def _labels(job_obj, replica):
    name = job_obj["metadata"]["name"]
    labels = {"training.kubeflow.org/job-name": name,
              "training.kubeflow.org/operator-name": kind_of(job_obj["apiVersion"], job_obj["kind"]).operator,
              TYPE_LABEL: replica.role, INDEX_LABEL: str(replica.index),
              "training.kubeflow.org/job-role": "master" if replica.role in _MAIN_ROLES else "worker"}
    labels.update(kind_of(job_obj["apiVersion"], job_obj["kind"]).pod_labels(name, replica.role, replica.index))
    return labels


def _container(job_obj, replica):
    """(name, image) of the replica's main container in the job spec."""
    spec = job_obj.get("spec") or {}
    for key, value in spec.items():
        if key.endswith("ReplicaSpecs") and isinstance(value, dict):
            for type_name, replica_spec in value.items():
                if type_name.lower() == replica.role:
                    containers = (((replica_spec or {}).get("template") or {}).get("spec") or {}).get("containers")
                    if containers:
                        return containers[0].get("name", "main"), containers[0].get("image", "")
    worker = spec.get("worker")
    if isinstance(worker, dict):
        containers = ((worker.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        return containers[0].get("name", "mpi-worker"), containers[0].get("image", "")
    return "main", ""


def _condition(kind, holds, since):
    return {"type": kind, "status": "True" if holds else "False", "lastProbeTime": None,
            "lastTransitionTime": since}


def pod_object(job_obj, replica, created, container=None):
    """The Pod of one replica of the stored job `job_obj`; `created`: when the controller first wrote it;
    `container`: (name, image) of its main container where the job's own spec does not hold it (a TrainJob's
    comes from its runtime)."""
    meta = job_obj["metadata"]
    container, image = container or _container(job_obj, replica)
    job_kind = kind_of(job_obj["apiVersion"], job_obj["kind"])
    phase = {"Deleted": "Failed"}.get(replica.phase, replica.phase)
    running = replica.phase == "Running"
    if running:
        state = {"running": {"startedAt": replica.started}}
    elif replica.phase == "Pending":
        state = {"waiting": {"reason": "ContainerCreating"}}
    else:
        state = {"terminated": {"exitCode": replica.exit_code if replica.exit_code is not None else 137,
                                "reason": "Completed" if replica.phase == "Succeeded" else "Error",
                                "startedAt": replica.started, "finishedAt": replica.finished}}
    ready_since = replica.finished or replica.started or created
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": replica.name, "namespace": meta["namespace"],
                     "uid": str(uuid.uuid5(uuid.UUID(meta["uid"]), replica.name)),
                     "creationTimestamp": created, "labels": _labels(job_obj, replica),
                     **({"annotations": annotations} if (annotations := job_kind.pod_annotations(
                         meta["name"], replica.role, replica.index)) else {}),
                     "ownerReferences": [{"apiVersion": job_obj["apiVersion"], "kind": job_obj["kind"],
                                          "name": meta["name"], "uid": meta["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"containers": [{"name": container, "image": image}], "hostname": replica.name,
                 "nodeName": "localhost", "restartPolicy": "Never", "schedulerName": "default-scheduler"},
        "status": {"phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
                   "startTime": created,
                   "conditions": [_condition("PodScheduled", True, created), _condition("Initialized", True, created),
                                  _condition("ContainersReady", running, ready_since),
                                  _condition("Ready", running, ready_since)],
                   "containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": running,
                                          "restartCount": replica.restarts, "started": running, "state": state}]},
    }


def owner_uid(pod):
    """The uid of the job that owns `pod`, or None."""
    owners = pod["metadata"].get("ownerReferences") or []
    return owners[0].get("uid") if owners else None


def log_base(pod, logs_of):
    """The path of the pod's log without `.log`: `<logs_of(job uid)>/<role>-<index>`."""
    labels = pod["metadata"].get("labels") or {}
    return os.path.join(logs_of(owner_uid(pod)), f"{labels.get(TYPE_LABEL)}-{labels.get(INDEX_LABEL)}")

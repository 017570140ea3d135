"""Pods: one minimal Pod per replica process of each job (name `<job>-<role>-<index>`, the MPI launcher
`<job>-launcher`; the operators' labels; phase, restarts, exit code), and each replica's log, so `kubectl get pods
-l training.kubeflow.org/job-name=NAME` and `kubectl logs` work. An MPIJob's workers are slots of the launcher's
mpirun on this machine (no process of their own): their ranks' output is in the launcher's log, as mpirun gathers
it in a cluster too.
"""

import json
import os
import uuid

_OPERATOR = {"MPIJob": "mpi-operator", "PyTorchJob": "pytorchjob-controller", "MXJob": "mxjob-controller"}
_MAIN_ROLES = ("launcher", "master", "scheduler")
_CONTAINER_PHASE = {"Pending": "waiting", "Running": "running"}


def read_replicas(log_dir):
    """What the controller recorded of a job's replicas (its pods.json: startTime, replicas), or {}."""
    try:
        with open(os.path.join(log_dir, "pods.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _labels(job_obj, replica):
    name = job_obj["metadata"]["name"]
    labels = {"training.kubeflow.org/job-name": name,
              "training.kubeflow.org/operator-name": _OPERATOR.get(job_obj["kind"], "ringrun"),
              "training.kubeflow.org/replica-type": replica["type"].lower(),
              "training.kubeflow.org/replica-index": str(replica["index"]),
              "training.kubeflow.org/job-role": "master" if replica["role"] in _MAIN_ROLES else "worker"}
    if job_obj["kind"] == "MPIJob":  # mpi-operator v1alpha2 / v1 labels too
        labels.update({"mpi_job_name": name, "mpi_role_type": replica["role"]})
    return labels


def _container(job_obj, replica):
    """(name, image) of the replica's main container in the job spec."""
    spec = job_obj.get("spec") or {}
    for key, value in spec.items():
        if key.endswith("ReplicaSpecs") and isinstance(value, dict):
            for type_name, replica_spec in value.items():
                if type_name.lower() == replica["role"]:
                    containers = (((replica_spec or {}).get("template") or {}).get("spec") or {}).get("containers")
                    if containers:
                        return containers[0].get("name", "main"), containers[0].get("image", "")
    worker = spec.get("worker")
    if isinstance(worker, dict):
        containers = ((worker.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        return containers[0].get("name", "mpi-worker"), containers[0].get("image", "")
    return "main", ""


def pods_of(job_obj, recorded):
    """The Pod objects of one stored job, given what the controller recorded (read_replicas)."""
    meta = job_obj["metadata"]
    pods = []
    for replica in recorded.get("replicas", []):
        container, image = _container(job_obj, replica)
        phase = {"Deleted": "Failed"}.get(replica["phase"], replica["phase"])
        state_name = _CONTAINER_PHASE.get(replica["phase"], "terminated")
        state = {"startedAt": recorded.get("startTime")} if state_name == "running" else \
            {"reason": "ContainerCreating"} if state_name == "waiting" else \
            {"exitCode": replica["exitCode"] if replica["exitCode"] is not None else 137,
             "reason": "Completed" if replica["phase"] == "Succeeded" else "Error"}
        pods.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": replica["name"], "namespace": meta["namespace"],
                         "uid": str(uuid.uuid5(uuid.UUID(meta["uid"]), replica["name"])),
                         "resourceVersion": meta["resourceVersion"],
                         "creationTimestamp": recorded.get("startTime") or meta.get("creationTimestamp"),
                         "labels": _labels(job_obj, replica),
                         "ownerReferences": [{"apiVersion": job_obj["apiVersion"], "kind": job_obj["kind"],
                                              "name": meta["name"], "uid": meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": {"containers": [{"name": container, "image": image}], "hostname": replica["name"],
                     "nodeName": "localhost", "restartPolicy": "Never"},
            "status": {"phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                       "startTime": recorded.get("startTime"),
                       "containerStatuses": [{"name": container, "image": image, "imageID": "",
                                              "ready": replica["phase"] == "Running",
                                              "restartCount": replica["restarts"], "started": state_name == "running",
                                              "state": {state_name: state}}]},
            "_log": replica["log"],
        })
    return pods

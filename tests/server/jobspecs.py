"""Small job objects for the server tests: trivial local commands, names given by each test."""

import copy

GROUP = "kubeflow.org"


def mpijob(name, command, version="v2beta1", restart="Never", **spec):
    """An MPIJob whose launcher runs `command` (a list), restartPolicy `restart`; workers are slots of it."""
    container = {"name": "mpi", "image": "local", "command": command}
    job = {"apiVersion": f"{GROUP}/{version}", "kind": "MPIJob", "metadata": {"name": name},
           "spec": {"mpiReplicaSpecs": {
               "Launcher": {"replicas": 1, "restartPolicy": restart,
                            "template": {"spec": {"containers": [container]}}},
               "Worker": {"replicas": 1, "template": {"spec": {"containers": [{"name": "mpi", "image": "local"}]}}}}}}
    run_policy = {k: v for k, v in spec.items() if k in ("activeDeadlineSeconds", "cleanPodPolicy", "suspend",
                                                          "backoffLimit")}
    if run_policy:  # v1alpha2 keeps them in spec itself
        if version == "v1alpha2":
            job["spec"].update(run_policy)
        else:
            job["spec"]["runPolicy"] = run_policy
    if "requests" in spec:
        container["resources"] = {"requests": spec["requests"]}
    return job


def pytorchjob(name, command, workers=1):
    def replica(count):
        return {"replicas": count, "restartPolicy": "Never", "template": {"spec": {"containers": [
            {"name": "pytorch", "image": "local", "command": copy.deepcopy(command)}]}}}
    return {"apiVersion": f"{GROUP}/v1", "kind": "PyTorchJob", "metadata": {"name": name},
            "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(workers)}}}


def condition(obj, kind):
    """The condition of type `kind` that holds, else None."""
    for item in (obj.get("status") or {}).get("conditions", []):
        if item.get("type") == kind and item.get("status") == "True":
            return item
    return None


def finished(obj):
    return condition(obj, "Succeeded") or condition(obj, "Failed")

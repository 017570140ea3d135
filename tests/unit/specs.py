"""Small valid specs of every kind, as Python objects, for tests to vary."""

import copy


def container(name, command=(), **extra):
    return {"name": name, "image": "img", **({"command": list(command)} if command else {}), **extra}


def template(*containers):
    return {"spec": {"containers": list(containers)}}


def mpijob(api="kubeflow.org/v2beta1", workers=2, **spec):
    return {
        "apiVersion": api, "kind": "MPIJob", "metadata": {"name": "job", "namespace": "ns"},
        "spec": {
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": template(container("mpi", ["mpirun", "python", "t.py"]))},
                "Worker": {"replicas": workers, "template": template(container("mpi"))},
            },
            **spec,
        },
    }


def pytorchjob(workers=2, master=True, **spec):
    replicas = {"Worker": {"replicas": workers, "template": template(container("pytorch", ["python", "t.py"]))}}
    if master:
        replicas["Master"] = {"replicas": 1, "template": template(container("pytorch", ["python", "t.py"]))}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "pt"},
            "spec": {"pytorchReplicaSpecs": replicas, **spec}}


def mxjob(servers=1, workers=2, mode="MXTrain"):
    roles = {"Scheduler": 1, "Server": servers, "Worker": workers} if mode != "MXTune" else \
        {"TunerTracker": 1, "TunerServer": 1, "Tuner": 1}
    spec = {"mxReplicaSpecs": {k: {"replicas": n, "template": template(container("mxnet", ["python", "t.py"]))}
                               for k, n in roles.items()}}
    if mode:
        spec["jobMode"] = mode
    return {"apiVersion": "kubeflow.org/v1", "kind": "MXJob", "metadata": {"name": "mx"}, "spec": spec}


def t9kjob(**spec):
    return {"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "MPIJob", "metadata": {"name": "t9k"},
            "spec": {"worker": {"replicas": 2, "cmd": ["python", "t.py"], "template": template(container("mpi-worker"))},
                     **spec}}


ALL = {"mpijob": mpijob, "pytorchjob": pytorchjob, "mxjob": mxjob, "t9kjob": t9kjob}


def deep(obj):
    return copy.deepcopy(obj)

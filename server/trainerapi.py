"""What the server keeps for Kubeflow Trainer v2 besides its kinds (pure): the public ConfigMap that tells clients
which Trainer release is served (Trainer's chart: templates/manager/public-configmap.yaml, readable by every
authenticated user through templates/rbac/public_configmap_role*.yaml), and Trainer's published runtimes
(copied unchanged from the release), installed on a server's first start
as Trainer's runtimes overlay installs them (runtime/trainer_runtimes/, runtime/kinds/trainjob.py)."""

from ringrun.runtime.kinds.trainjob import published_runtimes  # noqa: F401 - what a first start installs

TRAINER_RELEASE = "v2.3.0"  # the kubeflow/trainer tag whose CRDs are vendored (docs/trainer.md says why this one)
TRAINER_NAMESPACE = "kubeflow-system"
TRAINER_PUBLIC = "kubeflow-trainer-public"


def trainer_public(uid, now):
    """The ConfigMap kubeflow-system/kubeflow-trainer-public."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": TRAINER_PUBLIC, "namespace": TRAINER_NAMESPACE, "uid": uid, "creationTimestamp": now,
                         "labels": {"app.kubernetes.io/name": "trainer", "app.kubernetes.io/component": "manager"}},
            "data": {"kubeflow_trainer_version": TRAINER_RELEASE}}


def public_read(resource_plural, verb, namespace, name):
    """Whether a request is the read of the public ConfigMap, which every authenticated user may make."""
    return (resource_plural, verb, namespace, name) == ("configmaps", "get", TRAINER_NAMESPACE, TRAINER_PUBLIC)


def runtime_lookup(store):
    """runtimes(kind, namespace, name) -> the stored TrainingRuntime or ClusterTrainingRuntime, else None: how a
    TrainJob finds the runtime it names (runtime/kinds/trainjob.py)."""
    from .api.resources import job_resource

    keys = {"TrainingRuntime": job_resource("trainer.kubeflow.org", "v1alpha1", "trainingruntimes").key,
            "ClusterTrainingRuntime": job_resource("trainer.kubeflow.org", "v1alpha1", "clustertrainingruntimes").key}

    def runtimes(kind, namespace, name):
        if kind not in keys:
            return None
        return store.get(keys[kind], "" if kind == "ClusterTrainingRuntime" else namespace, name)
    return runtimes

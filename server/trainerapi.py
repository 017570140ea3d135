"""What the server keeps for Kubeflow Trainer v2 besides its kinds (pure): the public ConfigMap that tells clients
which Trainer release is served (Trainer's chart: templates/manager/public-configmap.yaml, readable by every
authenticated user through templates/rbac/public_configmap_role*.yaml), and Trainer's published runtimes
(trainer_runtimes/, copied unchanged from the release: SOURCE says from where), installed on a server's first start
as Trainer's runtimes overlay installs them."""

import importlib.resources

import yaml

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


def published_runtimes():
    """Trainer's published ClusterTrainingRuntimes at TRAINER_RELEASE: [object], by file name."""
    folder = importlib.resources.files("ringrun.server").joinpath("trainer_runtimes")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return [yaml.safe_load(folder.joinpath(name).read_text()) for name in names]

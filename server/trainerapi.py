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


# -- trainerStatus: Trainer's TrainJobStatus gate (pkg/statusserver, plugins/trainjobstatus at v2.3.0) -----------
STATUS_ENV_URL, STATUS_ENV_CA, STATUS_ENV_TOKEN = ("KUBEFLOW_TRAINER_SERVER_URL", "KUBEFLOW_TRAINER_SERVER_CA_CERT",
                                                   "KUBEFLOW_TRAINER_SERVER_TOKEN")
STATUS_FOLDER = ".kubeflow-trainer"  # in the job's own folder: its token and the server's CA certificate
MAX_METRICS, MAX_METRIC_TEXT = 256, 64
_INT32 = 2**31 - 1


def status_path(namespace, name):
    """statusserver.StatusUrl: where a TrainJob's pods POST their progress."""
    return f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs/{name}/status"


def status_target(method, parts):
    """(namespace, name) when a request (its path's parts) is the POST of a TrainJob's progress, else None."""
    if method != "POST" or len(parts) != 8:
        return None
    namespace, name = parts[4], parts[6]
    return (namespace, name) if "/" + "/".join(parts) == status_path(namespace, name) else None


def trainer_status_problems(body):
    """(the request's trainerStatus as it will be stored, or None when it gives none; [problem]) for the body of a
    progress POST (trainer.UpdateTrainJobStatusRequest), checked as the CRD's schema and CEL rule check it."""
    if not isinstance(body, dict):
        return None, ["the body must be a JSON object (UpdateTrainJobStatusRequest)"]
    given = body.get("trainerStatus")
    if given is None:
        return None, []
    if not isinstance(given, dict):
        return None, ["trainerStatus: must be an object"]
    problems, kept = [], {}
    for key, low in (("progressPercentage", 0), ("estimatedRemainingSeconds", 0)):
        value = given.get(key)
        if value is None:
            continue
        high = 100 if key == "progressPercentage" else _INT32
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"trainerStatus.{key}: must be an integer from {low} to {high}, got {value!r}")
        else:
            kept[key] = value
    metrics = given.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
            problems.append(f"trainerStatus.metrics: must be a list of at most {MAX_METRICS} metrics")
        else:
            for i, metric in enumerate(metrics):
                fields = [metric.get(k) if isinstance(metric, dict) else None for k in ("name", "value")]
                if not all(isinstance(f, str) and 1 <= len(f) <= MAX_METRIC_TEXT for f in fields):
                    problems.append(f"trainerStatus.metrics[{i}]: name and value must be strings of 1 to "
                                    f"{MAX_METRIC_TEXT} characters")
            if not problems:
                kept["metrics"] = [{"name": m["name"], "value": m["value"]} for m in metrics]
    when = given.get("lastUpdatedTime")
    if not when:
        problems.append("trainerStatus: lastUpdatedTime is required when trainerStatus is present")
    elif not isinstance(when, str) or not _rfc3339(when):
        problems.append(f"trainerStatus.lastUpdatedTime: must be an RFC 3339 time, got {when!r}")
    else:
        kept["lastUpdatedTime"] = when
    return (None if problems else kept), problems


def _rfc3339(text):
    from datetime import datetime

    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text

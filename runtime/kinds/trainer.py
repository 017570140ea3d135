"""Kubeflow Trainer v2 (trainer.kubeflow.org/v1alpha1, kubeflow/trainer v2.3.0): the rules its CRDs' CEL
validations (`x-kubernetes-validations`, which runtime/schema.py does not evaluate) and its admission webhooks
(pkg/webhooks/*_webhook.go) add to the schemas, for TrainingRuntime and ClusterTrainingRuntime. Pure: each check takes
the object (and the stored one for an update) and returns [(field path, message)], the messages Trainer's own.
"""

# the ancestor label a replicated job carries, and the container each ancestor must have (trainingruntime_webhook.go)
ANCESTOR_LABEL = "trainer.kubeflow.org/trainjob-ancestor-step"
FRAMEWORK_LABEL = "trainer.kubeflow.org/framework"
TRAINER, MODEL_INITIALIZER, DATASET_INITIALIZER = "trainer", "model-initializer", "dataset-initializer"
NODE = "node"
ANCESTOR_CONTAINERS = {TRAINER: NODE, MODEL_INITIALIZER: MODEL_INITIALIZER, DATASET_INITIALIZER: DATASET_INITIALIZER}
POLICIES = ("torch", "mpi", "jax", "xgboost", "flux")
# the JobSet fields a runtime's update may not change (the CRD's `self == oldSelf` rules)
_IMMUTABLE_SPEC = ("failurePolicy", "network", "startupPolicy", "successPolicy", "volumeClaimPolicies")


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _replicated_jobs(obj):
    return _list(_dict(_dict(_dict(_dict(obj.get("spec")).get("template")).get("spec"))).get("replicatedJobs"))


def runtime_problems(obj, old=None):
    """[(path, message)] of a TrainingRuntime or ClusterTrainingRuntime that the schema has passed; `old`: the stored
    object of an update (its immutable fields are compared)."""
    found = []
    spec = _dict(obj.get("spec"))
    policy = _dict(spec.get("mlPolicy"))
    if sum(1 for name in POLICIES if name in policy) > 1:
        found.append(("spec.mlPolicy", "Only one of the policy can be configured"))
    flux = _dict(policy.get("flux"))
    if isinstance(flux.get("numProcPerNode"), int) and flux["numProcPerNode"] < 1:
        found.append(("spec.mlPolicy.flux.numProcPerNode", "NumProcPerNode in fluxPolicy must be >= 1"))
    targets = _list(_dict(_dict(policy.get("torch")).get("envInjection")).get("targets"))
    for i, target in enumerate(targets):
        if NODE in _list(_dict(target).get("containerNames")):
            found.append((f"spec.mlPolicy.torch.envInjection.targets[{i}].containerNames",
                          "containerNames must not include the main node container because PET_* envs are always "
                          "injected into it"))
    jobset = _dict(_dict(spec.get("template")).get("spec"))
    rjobs = _replicated_jobs(obj)
    if _dict(jobset.get("startupPolicy")).get("startupPolicyOrder") == "InOrder" and \
            any("dependsOn" in _dict(r) for r in rjobs):
        found.append(("spec.template.spec", "StartupPolicy and DependsOn APIs are mutually exclusive"))
    for i, claims in enumerate(_list(jobset.get("volumeClaimPolicies"))):
        if any(_dict(_dict(t).get("metadata")).get("namespace") for t in _list(_dict(claims).get("templates"))):
            found.append((f"spec.template.spec.volumeClaimPolicies[{i}]",
                          "namespace cannot be set for VolumeClaimPolicies templates"))
    for i, rjob in enumerate(rjobs):
        rjob = _dict(rjob)
        template = _dict(rjob.get("template"))
        ancestor = _dict(_dict(template.get("metadata")).get("labels")).get(ANCESTOR_LABEL)
        if ancestor not in ANCESTOR_CONTAINERS:
            continue
        path = f"spec.template.spec.replicatedJobs[{i}]"
        if rjob.get("replicas", 1) != 1:
            found.append((f"{path}.replicas", f"{rjob.get('replicas')}: always must be 1"))
        containers = _list(_dict(_dict(_dict(template.get("spec")).get("template")).get("spec")).get("containers"))
        if not any(_dict(c).get("name") == ANCESTOR_CONTAINERS[ancestor] for c in containers):
            found.append((f"{path}.template.spec.template.spec.containers",
                          f"must contain the required container for the ancestor: {ancestor}"))
    if old is not None:
        before = _dict(_dict(_dict(old.get("spec")).get("template")).get("spec"))
        for name in _IMMUTABLE_SPEC:
            if name in before and name in jobset and before[name] != jobset[name]:
                found.append((f"spec.template.spec.{name}", "Value is immutable"))
        old_jobs = {_dict(r).get("name"): _dict(r) for r in _replicated_jobs(old)}
        for i, rjob in enumerate(rjobs):
            was = old_jobs.get(_dict(rjob).get("name"))
            if was is not None and "dependsOn" in was and "dependsOn" in rjob and was["dependsOn"] != rjob["dependsOn"]:
                found.append((f"spec.template.spec.replicatedJobs[{i}].dependsOn", "Value is immutable"))
    return found

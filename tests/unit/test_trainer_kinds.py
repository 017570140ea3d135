"""Trainer v2's runtimes as kept kinds (runtime/kinds/trainer.py, runtime/schema.py's defaults): pure checks."""

import copy

from ringrun.runtime import schema
from ringrun.runtime.kinds import trainer
from ringrun.runtime.kinds.registry import stored_kind_of

API = "trainer.kubeflow.org/v1alpha1"


def runtime(**mpi):
    return {"apiVersion": API, "kind": "ClusterTrainingRuntime", "metadata": {"name": "rt"},
            "spec": {"mlPolicy": {"numNodes": 2, "mpi": dict(mpi)},
                     "template": {"spec": {"replicatedJobs": [
                         {"name": "node", "template": {
                             "metadata": {"labels": {trainer.ANCESTOR_LABEL: "trainer"}},
                             "spec": {"template": {"spec": {"containers": [{"name": "node", "image": "i"}]}}}}}]}}}}


def test_defaults_fill_present_objects_only_and_never_change_the_argument():
    obj = runtime(numProcPerNode=4)
    before = copy.deepcopy(obj)
    out = schema.with_defaults(obj, API, "ClusterTrainingRuntime")
    assert obj == before
    assert out["spec"]["mlPolicy"]["mpi"] == {"numProcPerNode": 4, "mpiImplementation": "OpenMPI",
                                              "sshAuthMountPath": "/root/.ssh", "runLauncherAsNode": False}
    job = out["spec"]["template"]["spec"]["replicatedJobs"][0]
    assert (job["replicas"], job["groupName"]) == (1, "default")
    assert "podGroupPolicy" not in out["spec"] and "failurePolicy" not in out["spec"]["template"]["spec"]
    assert out["metadata"] == {"name": "rt"}


def test_runtime_rules_name_the_field():
    good = schema.with_defaults(runtime(), API, "ClusterTrainingRuntime")
    assert trainer.runtime_problems(good) == []
    two = copy.deepcopy(good)
    two["spec"]["mlPolicy"]["torch"] = {}
    assert trainer.runtime_problems(two) == [("spec.mlPolicy", "Only one of the policy can be configured")]
    wrong = copy.deepcopy(good)
    job = wrong["spec"]["template"]["spec"]["replicatedJobs"][0]
    job["replicas"] = 3
    job["template"]["spec"]["template"]["spec"]["containers"][0]["name"] = "main"
    assert trainer.runtime_problems(wrong) == [
        ("spec.template.spec.replicatedJobs[0].replicas", "3: always must be 1"),
        ("spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers",
         "must contain the required container for the ancestor: trainer")]
    ordered = copy.deepcopy(good)
    ordered["spec"]["template"]["spec"]["startupPolicy"] = {"startupPolicyOrder": "InOrder"}
    ordered["spec"]["template"]["spec"]["replicatedJobs"][0]["dependsOn"] = [{"name": "x", "status": "Ready"}]
    assert trainer.runtime_problems(ordered) == [
        ("spec.template.spec", "StartupPolicy and DependsOn APIs are mutually exclusive")]
    changed = copy.deepcopy(ordered)
    del changed["spec"]["template"]["spec"]["startupPolicy"]
    changed["spec"]["template"]["spec"]["replicatedJobs"][0]["dependsOn"] = [{"name": "y", "status": "Ready"}]
    assert trainer.runtime_problems(changed, old=ordered) == [
        ("spec.template.spec.replicatedJobs[0].dependsOn", "Value is immutable")]


def test_stored_kinds_are_found_by_api_version():
    assert stored_kind_of(API, "TrainingRuntime").namespaced is True
    assert stored_kind_of(API, "ClusterTrainingRuntime").namespaced is False
    assert stored_kind_of("trainer.kubeflow.org/v1", "TrainingRuntime") is None
    assert stored_kind_of("kubeflow.org/v1", "PyTorchJob") is None

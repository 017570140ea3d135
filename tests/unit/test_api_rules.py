"""The job API's pure rules (runtime/): Status bodies, create/replace/status rules, patches, selectors, quantities,
ages, discovery order. Table-driven; every expected value exact."""

import copy
import json
from datetime import datetime, timezone

import pytest
from conftest import fixture_text

from ringrun.server.api import apierrors, objects, resources, table
from ringrun.server.api.apierrors import ApiError
from ringrun.server.api.patch import PatchError, json_patch, merge_patch
from ringrun.runtime.quantity import parse_quantity
from ringrun.server.api.selectors import field_selector, label_selector

MPIJOBS = resources.job_resource("kubeflow.org", "v1alpha2", "mpijobs")


def seed(name):
    return json.loads(fixture_text(name))


def created(name="mpi-test"):
    body = seed("seed-000-request.json")
    body["metadata"]["name"] = name
    obj = objects.for_create(body, MPIJOBS, "v1alpha2", "kube-test", "uid-1", "2026-01-01T00:00:00Z")
    obj["metadata"]["resourceVersion"] = "7"
    return obj


def test_create_sets_server_fields_and_drops_status():
    body = seed("seed-000-request.json")
    body["status"] = {"phase": "forged"}
    body["metadata"].update(uid="client", resourceVersion="99", generation=5)
    before = copy.deepcopy(body)
    obj = objects.for_create(body, MPIJOBS, "v1alpha2", "kube-test", "uid-1", "2026-01-01T00:00:00Z")
    assert body == before  # the argument is never changed
    assert obj["metadata"] == {"name": "mpi-test", "namespace": "kube-test", "uid": "uid-1",
                               "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1}
    assert "status" not in obj and obj["spec"] == body["spec"]


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(apiVersion="kubeflow.org/v1"), "the API version in the data (kubeflow.org/v1) does not "
                                                       "match the expected API version (kubeflow.org/v1alpha2)"),
    (lambda o: o.update(kind="MXJob"), "the kind in the data (MXJob) does not match the expected kind (MPIJob)"),
    (lambda o: o.pop("kind"), "Object 'kind' is missing in the request body"),
    (lambda o: o["metadata"].update(namespace="x"), "the namespace of the provided object does not match the "
                                                    "namespace sent on the request"),
])
def test_create_contradicting_the_url_is_400(change, message):
    body = seed("seed-000-request.json")
    change(body)
    with pytest.raises(ApiError) as error:
        objects.for_create(body, MPIJOBS, "v1alpha2", "kube-test", "u", "t")
    assert (error.value.code, error.value.reason, error.value.message) == (400, "BadRequest", message)


def test_invalid_lines_become_causes():
    error = apierrors.invalid("MPIJob", "kubeflow.org", "x", [
        "spec.a: required field is missing", "spec.b: unknown field (known: c)", "spec.c: must be >= 0, got -1"])
    body = error.status()
    assert body["code"] == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value: required field is missing", "field": "spec.a"},
        {"reason": "FieldValueNotSupported", "message": "Unsupported value: unknown field (known: c)",
         "field": "spec.b"},
        {"reason": "FieldValueInvalid", "message": "Invalid value: must be >= 0, got -1", "field": "spec.c"}]
    assert body["message"].startswith('MPIJob.kubeflow.org "x" is invalid: [spec.a: Required value: ')


def test_replace_rules():
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["cleanPodPolicy"] = "Running"
    new["metadata"]["labels"] = {"app": "test"}
    new["status"] = {"forged": True}
    result = objects.for_replace(old, new, MPIJOBS, "v1alpha2", "kube-test", "mpi-test")
    assert result["metadata"]["generation"] == 2 and "status" not in result
    assert result["metadata"]["uid"] == "uid-1"
    labels_only = copy.deepcopy(old)
    labels_only["metadata"]["labels"] = {"a": "b"}
    assert objects.for_replace(old, labels_only, MPIJOBS, "v1alpha2", "kube-test", "mpi-test")["metadata"][
        "generation"] == 1
    for edit, code, field in [
        (lambda o: o["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0].update(image="y"),
         422, "spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].image"),
        (lambda o: o["metadata"].update(resourceVersion="6"), 409, None),
        (lambda o: o["metadata"].pop("resourceVersion"), 422, "metadata.resourceVersion"),
        (lambda o: o["metadata"].update(uid="other"), 409, None),
    ]:
        bad = copy.deepcopy(old)
        edit(bad)
        with pytest.raises(ApiError) as error:
            objects.for_replace(old, bad, MPIJOBS, "v1alpha2", "kube-test", "mpi-test")
        assert error.value.code == code
        if field:
            assert [c["field"] for c in error.value.details["causes"]] == [field]


def test_replace_rule_names_the_fields_per_kind():
    assert objects.replace_rule(MPIJOBS, "kubeflow.org/v1alpha2") == (
        "metadata.labels, metadata.annotations, spec.activeDeadlineSeconds, spec.cleanPodPolicy, "
        "spec.runPolicy.activeDeadlineSeconds, spec.runPolicy.cleanPodPolicy, spec.runPolicy.suspend")
    assert objects.replace_rule(MPIJOBS, "kubeflow.org/v2beta1") == (
        "metadata.labels, metadata.annotations, spec.runPolicy.activeDeadlineSeconds, spec.runPolicy.cleanPodPolicy, "
        "spec.runPolicy.suspend")
    t9k = resources.job_resource("batch.tensorstack.dev", "v1beta1", "mpijobs")
    assert objects.replace_rule(t9k, "batch.tensorstack.dev/v1beta1") == (
        "metadata.labels, metadata.annotations, spec.runPolicy.cleanUpWorkers")


def test_status_write_takes_only_the_status():
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["slotsPerWorker"] = 9
    new["status"] = {"phase": "X"}
    result = objects.for_status(old, new, MPIJOBS, "v1alpha2", "kube-test", "mpi-test")
    assert result["status"] == {"phase": "X"} and result["spec"] == old["spec"]
    new["metadata"].pop("resourceVersion")
    with pytest.raises(ApiError) as error:
        objects.for_status(old, new, MPIJOBS, "v1alpha2", "kube-test", "mpi-test")
    assert error.value.code == 422


def test_generated_names():
    assert objects.generated_name("pi-", iter([0, 1, 2, 3, 26])) == "pi-bcdf9"
    assert len(objects.generated_name("x" * 80, iter(range(5)))) == 63


def test_requests_sum_replicas_and_default_to_limits():
    assert objects.requests(created()) == (3.0, 3 * 2**30 * 2)
    t9k = {"spec": {"worker": {"replicas": 3, "template": {"spec": {"containers": [
        {"resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}]}}}}}
    assert objects.requests(t9k) == (2.0, 4 * 2**30)  # 3 workers + the implicit launcher


@pytest.mark.parametrize("target, patch, expected", [
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
    ({"a": 1}, "x", "x"),
])
def test_merge_patch(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_json_patch():
    doc = {"a": [1, 2], "b": {"c": 1}}
    assert json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/b/c", "value": 2},
                            {"op": "move", "from": "/b/c", "path": "/d"}, {"op": "remove", "path": "/a/0"},
                            {"op": "test", "path": "/d", "value": 2}, {"op": "copy", "from": "/d", "path": "/e"},
                            {"op": "add", "path": "/x~1y", "value": 0}]) == {
        "a": [2, 3], "b": {}, "d": 2, "e": 2, "x/y": 0}
    assert doc == {"a": [1, 2], "b": {"c": 1}}
    for ops in ([{"op": "remove", "path": "/nope"}], [{"op": "test", "path": "/a", "value": 0}],
                [{"op": "add", "path": "/a/9", "value": 0}], [{"op": "jump", "path": "/a"}], {"op": "add"}):
        with pytest.raises(PatchError):
            json_patch(doc, ops)


@pytest.mark.parametrize("selector, labels, expected", [
    ("", {}, True), ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
    ("a in (x, y)", {"a": "y"}, True), ("a notin (x,y)", {"a": "x"}, False), ("a", {"a": ""}, True),
    ("!a", {"a": "1"}, False), ("a=b,c", {"a": "b"}, False),
    ("training.kubeflow.org/job-name=pi", {"training.kubeflow.org/job-name": "pi"}, True),
])
def test_label_selectors(selector, labels, expected):
    assert label_selector(selector)(labels) is expected


def test_bad_selectors_are_400():
    for bad in ("a in x", "!a=b", "=b"):
        with pytest.raises(ApiError) as error:
            label_selector(bad)
        assert error.value.code == 400
    assert field_selector("metadata.name=x,metadata.namespace!=y")({"metadata": {"name": "x", "namespace": "z"}})
    with pytest.raises(ApiError) as error:
        field_selector("status.phase=Running")
    assert error.value.message == "field label not supported: status.phase"


@pytest.mark.parametrize("text, value", [("1", 1), ("1000m", 1), ("0.5", 0.5), ("2Gi", 2**31), ("512M", 512e6),
                                         ("1e3", 1000), (2, 2), ("100Ki", 102400)])
def test_quantities(text, value):
    assert float(parse_quantity(text)) == value


@pytest.mark.parametrize("bad", ["", "1x", "abc", True, None, "1.2.3"])
def test_bad_quantities(bad):
    with pytest.raises(ValueError):
        parse_quantity(bad)


@pytest.mark.parametrize("seconds, shown", [(5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600, "3h"),
                                            (5 * 3600 + 60, "5h1m"), (20 * 3600, "20h"), (3 * 86400 + 3600, "3d1h"),
                                            (30 * 86400, "30d"), (800 * 86400, "2y")])
def test_ages(seconds, shown):
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    since = datetime.fromtimestamp(now.timestamp() - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert table.age(since, now) == shown


def test_discovery_prefers_ga_then_beta_then_alpha():
    assert resources.group_versions() == {"apiextensions.k8s.io": ["v1"], "events.k8s.io": ["v1"],
                                          "kubeflow.org": ["v1", "v2beta1", "v1alpha2"],
                                          "batch.tensorstack.dev": ["v1beta1"],
                                          "trainer.kubeflow.org": ["v1alpha1"]}
    assert list(resources.group_versions()) == ["apiextensions.k8s.io", "events.k8s.io", "kubeflow.org",
                                                "batch.tensorstack.dev", "trainer.kubeflow.org"]
    assert resources.api_group("kubeflow.org")["preferredVersion"] == {"groupVersion": "kubeflow.org/v1",
                                                                      "version": "v1"}
    assert resources.api_resource_list("kubeflow.org", "v1alpha2")["resources"] == [
        {"name": "mpijobs", "singularName": "mpijob", "namespaced": True, "kind": "MPIJob",
         "verbs": list(resources.JOB_VERBS)},
        {"name": "mpijobs/status", "singularName": "", "namespaced": True, "kind": "MPIJob",
         "verbs": ["get", "patch", "update"]}]
    assert resources.api_resource_list("kubeflow.org", "v9") is None


def test_status_bodies():
    target = apierrors.Target("mpijobs", "kubeflow.org", "pi", "MPIJob")
    assert apierrors.not_found(target).status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'mpijobs.kubeflow.org "pi" not found', "reason": "NotFound", "code": 404,
        "details": {"name": "pi", "group": "kubeflow.org", "kind": "mpijobs"}}
    assert apierrors.unauthorized().status()["message"] == "Unauthorized"
    assert apierrors.expired(3, 10).status()["message"] == "too old resource version: 3 (10)"

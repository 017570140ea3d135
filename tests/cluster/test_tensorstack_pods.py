"""A TensorStack MPIJob as pods: ringrun builds mpirun from mca, extraMPIArgs, mpiHome and ssh; runMode.debug starts
sshd and no training."""

import os
import signal
import time

from conftest import HERE, JOB, MPICluster, flavour, wait_for_text


def t9k_job(venv, secret, sshd, debug=False):
    spec = {
        "worker": {
            "replicas": 2,
            "extraMPIArgs": ["--bind-to", "none", "-x", "RINGRUN_MARK"],
            "cmd": [str(venv / "bin" / "python"), str(HERE / "rankcheck.py"),
                    "--show", "OMPI_MCA_mpi_yield_when_idle", "RINGRUN_MARK"],
            "template": {"spec": {"containers": [{"name": "mpi-worker", "image": "ringrun:test"}]}},
        },
        "mca": {"mpi_yield_when_idle": "1", "btl": "self,tcp"},
        "ssh": {"sshAuthMountPath": str(secret), "sshdPath": sshd},
        "runPolicy": {"cleanUpWorkers": "all"},
        "mpiHome": str(venv),
    }
    if debug:
        spec["runMode"] = {"debug": {"enable": True}}
    return {"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "MPIJob",
            "metadata": {"name": JOB, "namespace": "default"}, "spec": spec}


def sshd_link(tmp_path):
    """sshdPath pointing somewhere other than the default, to see that the spec's path is the one run."""
    path = tmp_path / "bin" / "sshd"
    path.parent.mkdir()
    os.symlink("/usr/sbin/sshd", path)
    return str(path)


def test_tensorstack_mpirun_carries_mca_extra_args_mpi_home_and_ssh(tmp_path, secret):
    _, venv, env = flavour("openmpi5")
    sshd = sshd_link(tmp_path)
    with MPICluster(tmp_path, t9k_job(venv, secret, sshd), venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher({"RINGRUN_MARK": "from-launcher"})
        codes = job.wait_all(timeout=120)
        launcher = job.launcher().log()
        assert set(codes.values()) == {0}, job.logs()
        ran = next(line for line in launcher.splitlines() if "running " in line).split("running ", 1)[1].split()
        assert ran[0] == f"{venv}/bin/mpirun"  # mpiHome
        assert ran[1:3] == ["-np", "2"]
        joined = " ".join(ran)
        assert "--mca mpi_yield_when_idle 1 --mca btl self,tcp" in joined  # mca, in the spec's order
        assert f"--mca plm_rsh_args -F {tmp_path}/{JOB}-launcher.run/ssh_config" in joined
        assert "--bind-to none -x RINGRUN_MARK" in joined  # extraMPIArgs, before the command
        assert ran[-4:] == [str(HERE / "rankcheck.py"), "--show", "OMPI_MCA_mpi_yield_when_idle", "RINGRUN_MARK"]
        # what the ranks saw: the MCA parameter and the exported variable
        for rank in (0, 1):
            assert f"SHOW rank={rank} OMPI_MCA_mpi_yield_when_idle=1" in launcher
            assert f"SHOW rank={rank} RINGRUN_MARK=from-launcher" in launcher
        assert "RANKCHECK size=2 hosts=pi-worker-0,pi-worker-1 allreduce=exact" in launcher
        for pod in job.worker_pods():  # sshdPath and the keys copied from sshAuthMountPath
            assert f"running {sshd} -D -e -f" in pod.log()
            assert oct(os.stat(f"{tmp_path}/{pod.name}.run/ssh/authorized_keys").st_mode & 0o777) == "0o600"


def test_tensorstack_debug_mode_starts_sshd_and_no_training(tmp_path, secret):
    _, venv, env = flavour("openmpi5")
    with MPICluster(tmp_path, t9k_job(venv, secret, "/usr/sbin/sshd", debug=True), venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher()
        assert wait_for_text(job.launcher(), "running sleep inf", timeout=60), job.logs()
        for pod in job.worker_pods():
            assert job.cluster.wait_listening(pod.name, 22), job.logs()
        time.sleep(2)
        comms = {p.name: {comm for _, comm in p.processes()} for p in job.cluster.pods.values()}
        assert comms[f"{JOB}-launcher"] == {"ringrun", "sleep", "ssh"}, comms  # ssh: the worker watch sessions
        for pod in job.worker_pods():
            assert comms[pod.name] <= {"ringrun", "sshd", "cat"} and "sshd" in comms[pod.name], comms
        assert "mpirun" not in job.launcher().log() and "RANKCHECK" not in job.logs()
        job.launcher().signal(signal.SIGTERM)
        assert job.launcher().wait(30) == 128 + signal.SIGTERM

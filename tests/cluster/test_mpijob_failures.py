"""An MPIJob's launcher never hangs and never leaves processes behind: missing workers, a worker killed mid-run (Open
MPI 4 here; the images' libraries in test_mpijob_containers.py, with a launcher started before its workers),
SIGTERM to the launcher."""

import signal
import time

import pytest

from conftest import JOB, MPICluster, flavour, hold_command, launcher_command, mpijob, wait_for_text

FLAVOURS = ["openmpi5", "openmpi4", "mpich", "intel"]
# What may live in a worker pod once the job is stopped: its entrypoint and sshd (the listener and its sessions).
POD_BASE = {"ringrun", "sshd"}


def test_worker_that_never_starts_fails_the_launcher_at_the_deadline_naming_it(tmp_path, secret):
    implementation, venv, env = flavour("openmpi5")
    spec = mpijob(implementation, 1, 2, secret, launcher_command("openmpi5", venv, 2))
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start(f"{JOB}-worker-0", "worker")
        started = time.monotonic()
        job.start_launcher({"RINGRUN_WAIT_TIMEOUT": "4"})
        code = job.launcher().wait(60)
        took = time.monotonic() - started
        log = job.launcher().log()
        assert code == 4, log
        assert 4 <= took < 20, took
        assert f"ringrun entrypoint: gave up after 4 s waiting for 1 endpoint(s): {JOB}-worker-1.{JOB}.default.svc:22" \
            in log, log
        assert "does not accept connections" in log  # the name resolves (the pod's hosts file) but nothing listens
        assert "running mpirun" not in log


@pytest.mark.parametrize("name", ["openmpi4"])  # the others: test_mpijob_containers.py, as containers
def test_worker_killed_mid_run_fails_the_launcher_within_30s(tmp_path, secret, name):
    implementation, venv, env = flavour(name)
    spec = mpijob(implementation, 1, 2, secret, hold_command(name, venv, 2))
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher({"RINGRUN_GRACE_SECONDS": "3"})
        assert wait_for_text(job.launcher(), "HOLDING", count=2, timeout=60), job.logs()
        job.pod(f"{JOB}-worker-1").kill()
        killed = time.monotonic()
        code = job.launcher().wait(60)
        took = time.monotonic() - killed
        assert code != 0, job.logs()
        assert took < 30, (took, job.logs())
        # the surviving worker is told the job failed (cleanPodPolicy Running) and exits with the launcher's code
        assert job.pod(f"{JOB}-worker-0").wait(30) == code, job.logs()


@pytest.mark.parametrize("name", FLAVOURS)
def test_sigterm_to_the_launcher_leaves_no_mpi_process_on_any_pod(tmp_path, secret, name):
    implementation, venv, env = flavour(name)
    # cleanPodPolicy None: the workers stay up, so what is left on them can be checked
    spec = mpijob(implementation, 2, 2, secret, hold_command(name, venv, 4), clean="None")
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher({"RINGRUN_GRACE_SECONDS": "3"})
        assert wait_for_text(job.launcher(), "HOLDING", count=4, timeout=60), job.logs()
        busy = {name: {comm for _, comm in pod.processes()} for name, pod in job.cluster.pods.items()}
        assert all(busy[p.name] - POD_BASE for p in job.worker_pods()), busy  # ranks and daemons were running
        job.launcher().signal(signal.SIGTERM)
        assert job.launcher().wait(30) == 128 + signal.SIGTERM, job.logs()
        assert job.launcher().processes() == []  # the launcher pod's PID 1 exited: the pod is empty
        deadline = time.monotonic() + 10  # after the grace period, the workers' mpirun sessions wind down
        left = None
        while time.monotonic() < deadline:
            left = {p.name: sorted({comm for _, comm in p.processes()} - POD_BASE) for p in job.worker_pods()}
            if not any(left.values()):
                break
            time.sleep(0.2)
        assert not any(left.values()), (left, job.logs())
        for pod in job.worker_pods():  # the workers themselves keep serving (cleanPodPolicy None)
            assert pod.proc.poll() is None
            assert {comm for _, comm in pod.processes()} == POD_BASE

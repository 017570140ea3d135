"""An MPIJob as pods: sshd workers, a launcher that waits and runs mpirun over ssh, workers that exit at the end."""

import pytest

from conftest import JOB, MPICluster, flavour, launcher_command, mpijob


@pytest.mark.parametrize("slots", [1, 2])
@pytest.mark.parametrize("name", ["openmpi5", "openmpi4", "mpich", "intel"])
def test_mpijob_runs_across_pods_and_workers_exit(tmp_path, secret, name, slots):
    implementation, venv, env = flavour(name)
    spec = mpijob(implementation, slots, 2, secret, launcher_command(name, venv, 2 * slots))
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher()
        codes = job.wait_all(timeout=120)
        logs = job.logs()
        assert codes == {f"{JOB}-launcher": 0, f"{JOB}-worker-0": 0, f"{JOB}-worker-1": 0}, logs
        hosts = [f"{JOB}-worker-{i}" for i in range(2) for _ in range(slots)]
        assert f"RANKCHECK size={2 * slots} hosts={','.join(hosts)} allreduce=exact" in logs, logs
        assert "the launcher finished with exit code 0" in job.worker_pods()[0].log()
        assert job.cluster.leftovers() == {}

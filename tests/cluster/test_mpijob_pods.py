"""An MPIJob as network-namespace pods: sshd workers, a launcher that waits and runs mpirun over ssh, workers that
exit at the end. What the job images cover as containers (test_mpijob_containers.py: Open MPI 5, MPICH and Intel MPI
as root, the non-root image) is not repeated here: Open MPI 4 (Debian's, in no image), a non-root user of a uid the
machine lacks with keys in its home on every library, and the launcher's workingDir with WaitForWorkersReady."""

import os

import pytest

from conftest import JOB, NAMESPACE, MPICluster, check_ranks_ran, flavour, launcher_command, mpijob, wait_for_text


@pytest.mark.parametrize("slots", [1, 2])
@pytest.mark.parametrize("name", ["openmpi4"])
def test_mpijob_runs_across_pods_and_workers_exit(tmp_path, secret, name, slots):
    implementation, venv, env = flavour(name)
    spec = mpijob(implementation, slots, 2, secret, launcher_command(name, venv, 2 * slots))
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start_workers()
        job.start_launcher()
        check_ranks_ran(job.wait_all(timeout=120), job.logs(), JOB, slots)
        assert "the launcher finished with exit code 0" in job.worker_pods()[0].log()
        assert job.cluster.leftovers() == {}


USER_UID, USER_GID = 64123, 65534  # a user the machine does not have: it exists only in the pods' /etc/passwd


@pytest.fixture
def user_home():
    """A world-traversable work directory with the home of a non-root user whose keys are under ~/.ssh, and an
    /etc/passwd naming that user (bind-mounted in the pods only). Removed afterwards."""
    import pwd
    import shutil
    import subprocess
    import tempfile

    try:
        pwd.getpwuid(USER_UID)
        pytest.fail(f"uid {USER_UID} exists on this machine; the test needs a free one")
    except KeyError:
        pass
    os.makedirs("/var/lib/ringrun-tests", mode=0o755, exist_ok=True)  # not below /tmp: sshd StrictModes
    work = tempfile.mkdtemp(prefix="ringrun-pods-", dir="/var/lib/ringrun-tests")
    try:
        os.chmod(work, 0o755)
        home = os.path.join(work, "home")
        ssh = os.path.join(home, ".ssh")
        os.makedirs(ssh)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(ssh, "id_ed25519")],
                       check=True)
        shutil.copy(os.path.join(ssh, "id_ed25519.pub"), os.path.join(ssh, "authorized_keys"))
        for path in (home, ssh, *(os.path.join(ssh, n) for n in os.listdir(ssh))):
            os.chown(path, USER_UID, USER_GID)
        passwd = os.path.join(work, "passwd")
        with open("/etc/passwd") as source, open(passwd, "w") as target:
            target.write(source.read() + f"rrpod:x:{USER_UID}:{USER_GID}:ringrun pod test:{home}:/bin/bash\n")
        os.chmod(passwd, 0o644)
        yield work, home, passwd
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("name", ["openmpi4", "mpich", "intel"])
def test_mpijob_as_a_non_root_user_with_keys_in_its_home(user_home, name):
    work, home, passwd = user_home
    implementation, venv, env = flavour(name)
    spec = mpijob(implementation, 2, 2, os.path.join(home, ".ssh"), launcher_command(name, venv, 4))
    with MPICluster(work, spec, venv, env, workers=2, user=f"{USER_UID}:{USER_GID}", passwd=passwd,
                    home=home) as job:
        job.start_workers()
        job.start_launcher()
        check_ranks_ran(job.wait_all(timeout=120), job.logs(), JOB, 2)
        assert "port 2222" in job.worker_pods()[0].log()  # a non-root sshd on its own port
        assert f"for rrpod from {job.launcher().address}" in job.worker_pods()[0].log()
        # the entrypoint ran as that user: its files in the run directory are the user's
        assert os.stat(os.path.join(work, f"{JOB}-worker-0.run", "sshd_config")).st_uid == USER_UID


def test_wait_for_workers_ready_orders_the_launcher_after_ssh_logins_and_working_dir_applies(tmp_path, secret):
    """launcherCreationPolicy WaitForWorkersReady: the launcher's command starts only once every worker accepts an
    ssh login (after their sshd listens); the launcher container's workingDir is where mpirun and its ranks run."""
    implementation, venv, env = flavour("openmpi5")
    work = tmp_path / "work dir"
    work.mkdir()
    spec = mpijob(implementation, 1, 2, secret, launcher_command("openmpi5", venv, 2) + ["--cwd"])
    spec["spec"]["launcherCreationPolicy"] = "WaitForWorkersReady"
    spec["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["workingDir"] = str(work)
    with MPICluster(tmp_path, spec, venv, env, workers=2) as job:
        job.start_launcher()
        assert wait_for_text(job.launcher(), "waiting up to 300 s for", timeout=60), job.logs()
        job.start_workers()
        codes = job.wait_all(timeout=120)
        log = job.launcher().log()
        assert set(codes.values()) == {0}, job.logs()
        logins = log.index("WaitForWorkersReady: waiting up to 300 s for an ssh login to "
                           f"{JOB}-worker-0.{JOB}.{NAMESPACE}.svc, {JOB}-worker-1.{JOB}.{NAMESPACE}.svc")
        ready = [log.index(f"{JOB}-worker-{i}.{JOB}.{NAMESPACE}.svc is up", logins) for i in range(2)]
        assert logins < max(ready) < log.index("running mpirun"), log
        assert f"CWD rank=0 {work}" in log and f"CWD rank=1 {work}" in log, log

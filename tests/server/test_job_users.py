"""A served job never has the server's power (as root): each namespace's jobs run as a uid of their own, in a folder
of their own, with a clean environment; they cannot read the data directory (the admin token), another namespace's
folders, or root's; a workingDir outside the job's folder needs the policy's grant. What set-up runs for a job (its
Python asked for its framework, its mpirun for its version) runs as the job's user too."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import os
import shutil
import subprocess
import sys

from jobspecs import condition, finished, mpijob
from kubernetes import client
from serverproc import ROOT, wait_until

from ringrun.launcher import frameworks, mpirun
from ringrun.launcher.supervise import RunAs

G, V = "kubeflow.org", "v2beta1"
UIDS = (1_234_500, 1_234_509)
SECRET = "ringrun-test-secret-in-the-servers-environment"


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("jobs change user only under a root server: `make test` runs the tests as root")


def run_job(server, namespace, name, command, **container):
    job = mpijob(name, command)
    job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0].update(container)
    api = client.CustomObjectsApi(server.client())
    made = api.create_namespaced_custom_object(G, V, namespace, "mpijobs", job)
    obj = wait_until(lambda: (lambda o: o if finished(o) else None)(
        api.get_namespaced_custom_object(G, V, namespace, "mpijobs", name)), timeout=60, what=f"{name} finished")
    try:
        log = client.CoreV1Api(server.client()).read_namespaced_pod_log(f"{name}-launcher", namespace)
    except client.ApiException as exc:  # a job refused before it started has no pod
        assert exc.status == 404
        log = None
    return made["metadata"]["uid"], obj, log


def lines(log):
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line)


PROBE = ('echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); echo pwd=$(pwd); echo home=$HOME; '
         'echo tmp=$TMPDIR; cat "$1/tokens.csv" >/dev/null 2>&1; echo tokens=$?; ls "$1" >/dev/null 2>&1; echo ls=$?; '
         'touch /root/ringrun-probe 2>/dev/null; echo root=$?; ls "$2" >/dev/null 2>&1; echo other=$?; '
         'echo secret=$(env | grep -c ringrun-test-secret); echo kubeconfig=${KUBECONFIG:-none}')


def test_each_namespace_runs_as_its_own_uid_and_reaches_nothing_of_the_server(fresh_server, as_root):
    server = fresh_server("--job-uids", f"{UIDS[0]}-{UIDS[1]}", env={"RINGRUN_TEST": SECRET,
                                                                     "KUBECONFIG": "/root/.kube/config"})
    jobs = server.jobs_dir
    uid_a, obj, log = run_job(server, "team-a", "probe", ["sh", "-c", PROBE, "probe", server.data_dir, "/nowhere"])
    assert condition(obj, "Succeeded") is not None, log
    seen = lines(log)
    home = os.path.join(jobs, str(UIDS[0]), uid_a)
    assert (seen["uid"], seen["gid"], seen["groups"]) == (str(UIDS[0]), str(UIDS[0]), str(UIDS[0]))
    assert seen["pwd"] == seen["home"] == seen["tmp"] == home
    assert seen["tokens"] != "0" and seen["ls"] != "0" and seen["root"] != "0"  # data directory, /root: refused
    assert (seen["secret"], seen["kubeconfig"]) == ("0", "none")  # nothing of the server's environment
    assert not os.path.exists("/root/ringrun-probe")
    st = os.stat(home)
    assert (st.st_uid, st.st_mode & 0o777) == (UIDS[0], 0o700)
    # another namespace: the next uid, and team-a's folders are closed to it
    uid_b, obj, log = run_job(server, "team-b", "probe", ["sh", "-c", PROBE, "probe", server.data_dir, home])
    seen = lines(log)
    assert seen["uid"] == str(UIDS[0] + 1) and seen["other"] != "0", log
    # the same namespace again: the same uid, every time
    _, _, log = run_job(server, "team-a", "again", ["id", "-u"])
    assert log == f"{UIDS[0]}\n"
    # a deleted job's folder goes with it
    client.CustomObjectsApi(server.client()).delete_namespaced_custom_object(G, V, "team-a", "mpijobs", "probe")
    wait_until(lambda: not os.path.exists(home), timeout=30, what="the deleted job's folder removed")


def test_a_working_dir_outside_the_job_folder_needs_the_policy(fresh_server, as_root, tmp_path, exchange):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules: []\nhostPaths:\n- namespaces: [granted]\n  paths: [{exchange}]\n")
    server = fresh_server("--job-uids", f"{UIDS[0]}-{UIDS[1]}", "--policy", str(policy))
    _, obj, _ = run_job(server, "team-a", "root", ["sh", "-c", "touch here"], workingDir="/root")
    failed = condition(obj, "Failed")
    assert failed is not None and "launcher: workingDir '/root' is outside the job's own folder and no hostPaths " \
                                  "rule of the server's --policy grants it to namespace 'team-a'" in failed["message"]
    assert not os.path.exists("/root/here")
    _, obj, _ = run_job(server, "team-a", "up", ["true"], workingDir="../../..")  # relative: from the job's folder
    assert "outside the job's own folder" in condition(obj, "Failed")["message"]
    _, obj, _ = run_job(server, "granted", "fine", ["sh", "-c", "pwd; touch made-here"], workingDir=str(exchange))
    assert condition(obj, "Succeeded") is not None
    assert os.stat(exchange / "made-here").st_uid == UIDS[0] + 1  # the second namespace to run a job
    uid, obj, _ = run_job(server, "team-a", "sub", ["pwd"], workingDir="work")  # inside its own folder, missing
    home = os.path.join(server.jobs_dir, str(UIDS[0]), uid)
    assert f"its workingDir '{home}/work' does not exist" in condition(obj, "Failed")["message"]


def test_set_up_runs_the_jobs_programs_as_its_user(as_root, exchange):
    """The framework check and mpirun's version are asked as the job's user: a program the job names never runs as
    root."""
    bin_dir = exchange / "bin"
    bin_dir.mkdir()
    for name in ("python3", "mpirun"):
        (bin_dir / name).write_text(f"#!/bin/sh\n/usr/bin/id -u > {exchange}/{name}.uid\necho 'mpirun (Open MPI) 5.0.0'\n")
        (bin_dir / name).chmod(0o755)
    user = RunAs(UIDS[0], UIDS[0])
    frameworks.check("pytorch", "master", ("python3", "train.py"), {"PATH": str(bin_dir)}, run_as=user)
    assert (exchange / "python3.uid").read_text() == f"{UIDS[0]}\n"
    assert mpirun.is_open_mpi_5(str(bin_dir / "mpirun"), {"PATH": str(bin_dir)}, run_as=user)
    assert (exchange / "mpirun.uid").read_text() == f"{UIDS[0]}\n"


def test_a_servers_jobs_cannot_kill_their_keeper(fresh_server, as_root, exchange):
    """The keeper stays root: a job that signals its parent (the keeper) gets EPERM and goes on being kept."""
    server = fresh_server("--job-uids", f"{UIDS[0]}-{UIDS[1]}")
    _, obj, log = run_job(server, "team-a", "parricide",
                          ["python3", "-c", "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                                            "except PermissionError:\n    print('refused')"])
    assert log == "refused\n" and condition(obj, "Succeeded") is not None


def test_not_root_warns_that_jobs_are_the_servers_user(trusted_path, as_root):
    """A non-root server with other users or a policy says at start that its jobs are its own user's processes."""
    folder = trusted_path / "nobody"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    policy = folder / "policy.yaml"
    policy.write_text("rules: []\n")
    proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable,
                             "-m", "ringrun.server", "serve", "--data-dir", str(folder / "data"), "--port", "0",
                             "--policy", str(policy)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert line.startswith("ringrun serve: warning: not running as root, so every job runs as this user "
                           "(uid 65534)"), line


PROBE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/loaded-as-%d", getenv("RINGRUN_PROBE_DIR"), (int)geteuid());
    FILE *file = fopen(path, "w");
    if (file) fclose(file);
}
"""


def test_the_root_keeper_never_runs_with_the_jobs_ld_preload(fresh_server, as_root, exchange):
    """A spec's LD_PRELOAD reaches the job's own command only: root's keeper runs with an environment of its own,
    so no library the job names is ever loaded as root."""
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler for the probe library (the Horovod build of `make test` needs one too)")
    (exchange / "probe.c").write_text(PROBE_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(exchange / "probe.so"), str(exchange / "probe.c")],
                   check=True, timeout=120)
    server = fresh_server("--job-uids", f"{UIDS[0]}-{UIDS[1]}")
    _, obj, _ = run_job(server, "team-a", "preload", ["true"],
                        env=[{"name": "LD_PRELOAD", "value": str(exchange / "probe.so")},
                             {"name": "RINGRUN_PROBE_DIR", "value": str(exchange)}])
    assert condition(obj, "Succeeded") is not None
    loaded = sorted(p.name for p in exchange.iterdir() if p.name.startswith("loaded-as-"))
    assert loaded == [f"loaded-as-{UIDS[0]}"]  # the job's command loaded it, as the job's uid; root never did


def test_a_jobs_folder_made_anew_lets_the_jobs_users_through(as_root, fresh_server, trusted_path):
    jobs_dir = trusted_path / "made" / "below" / "jobs"
    server = fresh_server("--jobs-dir", str(jobs_dir), "--job-uids", f"{UIDS[0]}-{UIDS[1]}")
    assert [os.stat(p).st_mode & 0o7777 for p in (trusted_path / "made", trusted_path / "made" / "below")] == \
        [0o711, 0o711]
    _, obj, log = run_job(server, "fresh-folders", "fresh", ["sh", "-c", "echo ran in $PWD"])
    assert condition(obj, "Succeeded"), obj["status"]
    assert log.startswith(f"ran in {jobs_dir}/")


def test_a_jobs_folder_its_users_cannot_reach_is_refused(as_root, trusted_path):
    closed = trusted_path / "closed"
    closed.mkdir(mode=0o700)
    result = subprocess.run([sys.executable, "-m", "ringrun.server", "serve", "--port", "0", "--data-dir",
                             str(trusted_path / "data"), "--jobs-dir", str(closed / "jobs")],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 5, result.stderr
    assert f"{closed} (mode 0700) does not let the jobs' users through: `chmod o+x` it" in result.stderr

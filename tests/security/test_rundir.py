"""Run directories cannot be hijacked, files are never written through a planted link, and a worker's sshd accepts
only what ringrun put there: StrictModes on, no forwarding or tunnels. The multi-user cases use a second user
(nobody, through setpriv); `make test-security` runs them as root inside `unshare --net --mount`, where nothing they
start can reach a network. Their folders are under /var/lib/ringrun-tests and removed afterwards."""

import os
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli
from ringrun.launcher import files, rundir
from ringrun.runtime.errors import SetupError

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
SSHD = "/usr/sbin/sshd"


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("needs root and a second user: `make test-security` runs it as root")


@pytest.fixture
def shared(trusted_path, as_root):
    """A folder every user may create entries in, sticky like /tmp."""
    folder = trusted_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    return folder


def as_nobody(*argv):
    subprocess.run(NOBODY + list(argv), check=True, capture_output=True, timeout=30)


def worker_spec(tmp_path, mount):
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "apiVersion: batch.tensorstack.dev/v1beta1\nkind: MPIJob\nmetadata: {name: keys}\n"
        "spec:\n  worker:\n    replicas: 1\n    cmd: ['true']\n"
        "    template: {spec: {containers: [{name: mpi-worker, image: x}]}}\n"
        f"  ssh: {{sshAuthMountPath: {mount}}}\n")
    return spec


def test_defaults_are_outside_tmp():
    assert rundir.default_run_dir("pi", {}, 0) == "/run/ringrun/pi"
    assert rundir.default_run_dir("pi", {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"}, 1000) == \
        "/run/user/1000/ringrun/pi"
    assert rundir.default_run_dir("pi", {"HOME": "/home/u"}, 1000) == "/home/u/.ringrun/run/pi"


@pytest.mark.parametrize("role,why", [
    ("worker", "a directory on its path is writable by other users (sshd's StrictModes refuses keys below it)"),
    ("launcher", "belongs to uid 65534, not to this user"),
])
def test_a_run_dir_made_by_another_user_is_refused_and_left_alone(trusted_path, shared, tmp_path, role, why):
    """The attack that worked: another user makes the run directory 0777 and plants authorized_keys, then the root
    worker would let them in over its sshd. Now the worker refuses the directory before reading or writing in it."""
    planted = shared / "hijack"
    as_nobody("mkdir", "-m", "777", str(planted))
    as_nobody("mkdir", "-m", "777", str(planted / "ssh"))
    as_nobody("sh", "-c", f"echo 'ssh-ed25519 AAAA attacker' > {planted / 'ssh' / 'authorized_keys'}")
    mount = trusted_path / "mount"
    mount.mkdir()
    (mount / "authorized_keys").write_text("ssh-ed25519 BBBB ours\n")
    code, out, err = run_cli(["entrypoint", "--spec", str(worker_spec(tmp_path, mount)), "--role", role,
                              "--run-dir", str(planted)], {"RINGRUN_HOSTFILE": "/nonexistent"})
    assert code == 5, err
    assert "ringrun entrypoint: run directory " in err and why in err and "will not use it" in err
    assert (planted / "ssh" / "authorized_keys").read_text() == "ssh-ed25519 AAAA attacker\n"
    assert sorted(os.listdir(planted)) == ["ssh"]  # nothing written there


@pytest.mark.parametrize("make", ["symlink", "world-writable", "ancestor-writable", "link-of-another-user",
                                  "dangling-link", "link-into-writable"])
def test_untrusted_run_dirs_are_refused(trusted_path, as_root, make):
    if make in ("link-of-another-user", "dangling-link", "link-into-writable"):
        (trusted_path / "target").mkdir()
        shared = trusted_path / "shared"
        shared.mkdir()
        shared.chmod(0o1777)
        if make == "link-of-another-user":
            as_nobody("ln", "-s", str(trusted_path / "target"), str(shared / "via"))
            why = "is a symbolic link owned by uid 65534"
        elif make == "dangling-link":
            os.symlink(trusted_path / "nowhere" / "deeper", shared / "via")
            why = "cannot be checked or made"
        else:
            (trusted_path / "open").mkdir()
            (trusted_path / "open").chmod(0o777)
            os.symlink(trusted_path / "open", shared / "via")
            why = "a directory on its path is writable by other users"
        with pytest.raises(SetupError, match=why):
            rundir.secure(str(shared / "via" / "run"))
        return
    if make == "symlink":
        (trusted_path / "elsewhere").mkdir()
        os.symlink(trusted_path / "elsewhere", trusted_path / "run")
        why = "is a symbolic link"
    elif make == "world-writable":
        (trusted_path / "run").mkdir()
        (trusted_path / "run").chmod(0o777)
        why = "it is writable by other users"
    else:
        (trusted_path / "open").mkdir()
        (trusted_path / "open").chmod(0o777)  # not sticky: anyone could rename our folder away and put theirs
        (trusted_path / "open" / "run").mkdir(0o700)
        why = "a directory on its path is writable by other users"
    path = trusted_path / ("open/run" if make == "ancestor-writable" else "run")
    with pytest.raises(SetupError, match=why):
        rundir.secure(str(path))


def test_below_tmp_is_fine_for_files_but_not_for_sshd_keys(as_root):
    import tempfile

    path = tempfile.mkdtemp()  # ours, 0700, in sticky /tmp
    try:
        assert rundir.secure(path) == path
        with pytest.raises(SetupError, match=r"sshd's StrictModes refuses keys below it"):
            rundir.secure(path, strict=True)
    finally:
        shutil.rmtree(path)


def test_a_missing_run_dir_is_made_private(trusted_path, as_root):
    path = trusted_path / "a" / "b"
    rundir.secure(str(path), strict=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_files_are_never_written_through_a_link(trusted_path):
    victim = trusted_path / "victim"
    victim.write_text("root only\n")
    os.symlink(victim, trusted_path / "hostfile")
    files.write_files(((str(trusted_path / "hostfile"), "pi-worker-0 slots=1\n"),))
    assert victim.read_text() == "root only\n"
    assert not os.path.islink(trusted_path / "hostfile")
    assert (trusted_path / "hostfile").read_text() == "pi-worker-0 slots=1\n"
    assert sorted(os.listdir(trusted_path)) == ["hostfile", "victim"]  # no temporary left behind


def test_the_worker_sshd_config_is_strict_and_forwards_nothing(trusted_path, as_root):
    """What sshd itself makes of ringrun's sshd_config (`sshd -T`)."""
    from ringrun.runtime import Context, Identity, build_plan, parse_jobs

    (job,) = parse_jobs(worker_spec(trusted_path, "/root/.ssh").read_text())
    environ = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/lib dir"}
    plan = build_plan(job, Identity("worker", 0, "t"), Context(run_dir=str(trusted_path / "run"), ssh_port=2222,
                                                              environ=environ))
    rundir.secure(plan.run_dir, strict=True)
    files.write_files(plan.files)
    host_key = trusted_path / "run" / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder, as sshsetup makes it
    config = dict(plan.files)[str(trusted_path / "run" / "sshd_config")]
    result = subprocess.run([SSHD, "-T", "-f", str(trusted_path / "run" / "sshd_config")], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    settings = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert {k: settings[k] for k in ("strictmodes", "allowtcpforwarding", "allowagentforwarding",
                                     "allowstreamlocalforwarding", "permittunnel", "x11forwarding", "gatewayports",
                                     "permitemptypasswords", "passwordauthentication", "permituserenvironment",
                                     "port")} == {
        "strictmodes": "yes", "allowtcpforwarding": "no", "allowagentforwarding": "no",
        "allowstreamlocalforwarding": "no", "permittunnel": "no", "x11forwarding": "no", "gatewayports": "no",
        "permitemptypasswords": "no", "passwordauthentication": "no", "permituserenvironment": "no", "port": "2222"}
    assert settings["authorizedkeysfile"] == str(trusted_path / "run" / "ssh" / "authorized_keys")
    assert 'SetEnv PATH=/usr/bin:/bin "LD_LIBRARY_PATH=/opt/lib dir"' in config


def test_a_non_root_launcher_that_cannot_read_its_key_mount_says_so_in_one_line(trusted_path, shared):
    """A non-root launcher pod whose ssh Secret is root's only: exit 5 and one line naming the mount, no
    traceback."""
    mount = trusted_path / "secret"
    mount.mkdir()
    (mount / "id_rsa").write_text("not a key, never read\n")
    mount.chmod(0o711)  # others may pass, never list
    spec = shared / "job.yaml"
    spec.write_text(
        "apiVersion: batch.tensorstack.dev/v1beta1\nkind: MPIJob\nmetadata: {name: keys}\n"
        "spec:\n  worker:\n    replicas: 1\n    cmd: ['true']\n"
        "    template: {spec: {containers: [{name: mpi-worker, image: x}]}}\n"
        f"  ssh: {{sshAuthMountPath: {mount}}}\n")
    run_dir = shared / "run"
    as_nobody("mkdir", "-m", "700", str(run_dir))
    result = subprocess.run(NOBODY + [sys.executable, "-m", "ringrun.launcher", "entrypoint", "--spec", str(spec),
                                      "--role", "launcher", "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "RINGRUN_HOSTFILE": "/nonexistent"})
    assert result.returncode == 5, result.stderr
    assert result.stderr == f"ringrun entrypoint: sshAuthMountPath: cannot read '{mount}' as uid 65534: " \
                            "Permission denied\n"

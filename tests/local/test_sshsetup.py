"""ssh set-up of MPI pods and the launcher's `--finish` message, on this machine: keys copied private from a Secret-like
mount, sshd host key and sshdPath, setup errors as exit 5 naming the field, and a worker that ends on `--finish`."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from conftest import descendants_of, run_cli
from ringrun.launcher import sshsetup
from ringrun.runtime.plan import SSHSetup

EXIT_SETUP = 5


@pytest.fixture
def tmp_path(trusted_path):
    """Workers' run directories must satisfy sshd's StrictModes: not below the world-writable /tmp."""
    return trusted_path


def secret_mount(root, files):
    """A directory laid out like a Kubernetes Secret volume: files in `..2026_data/`, `..data` -> it, and one
    symlink per key; everything mode 0644 (the default a user gets)."""
    data = root / "..2026_data"
    data.mkdir(parents=True)
    for name, text in files.items():
        (data / name).write_text(text)
        (data / name).chmod(0o644)
        os.symlink(f"..data/{name}", root / name)
    os.symlink("..2026_data", root / "..data")
    return root


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def t9k_spec(tmp_path, mount, sshd="/usr/sbin/sshd", debug_worker=None):
    spec = {"worker": {"replicas": 1, "cmd": ["true"],
                       "template": {"spec": {"containers": [{"name": "mpi-worker", "image": "x"}]}}},
            "ssh": {"sshAuthMountPath": str(mount), "sshdPath": sshd},
            "runPolicy": {"cleanUpWorkers": "all"}}
    if debug_worker:
        spec["runMode"] = {"debug": {"enable": True, "replicaSpecs": [{"type": "worker", "command": debug_worker}]}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "MPIJob",
                                "metadata": {"name": "keys"}, "spec": spec}))
    return path


def entrypoint(tmp_path, spec, role, environ=None):
    env = {"RINGRUN_HOSTFILE": str(tmp_path / "no-operator-hostfile"), **(environ or {})}
    return run_cli(["entrypoint", "--spec", str(spec), "--role", role, "--run-dir", str(tmp_path / "run")], env)


def test_keys_are_copied_private_and_secret_internals_skipped(tmp_path):
    mount = secret_mount(tmp_path / "mount", {"id_ed25519": "PRIVATE\n", "id_ed25519.pub": "ssh-ed25519 AAA a\n"})
    key_dir = tmp_path / "run" / "ssh"
    assert sshsetup.copy_keys(str(mount), str(key_dir)) == ["id_ed25519", "id_ed25519.pub"]
    assert mode(key_dir) == 0o700
    assert sorted(os.listdir(key_dir)) == ["id_ed25519", "id_ed25519.pub"]
    for name in os.listdir(key_dir):
        assert mode(key_dir / name) == 0o600 and not os.path.islink(key_dir / name)
    assert (key_dir / "id_ed25519").read_text() == "PRIVATE\n"
    assert mode(mount / "..data" / "id_ed25519") == 0o644  # the mount itself is left as it was


def test_worker_builds_authorized_keys_from_public_keys_and_a_host_key(tmp_path):
    mount = secret_mount(tmp_path / "mount", {"a.pub": "ssh-ed25519 AAA a", "b.pub": "ssh-rsa BBB b\n", "id_rsa": "K"})
    # sshdPath is only checked to be an absolute executable here: any will do
    setup = SSHSetup(str(mount), str(tmp_path / "run" / "ssh"), str(tmp_path / "run" / "host_key"), "/bin/true")
    sshsetup.prepare_server(setup, is_root=False)
    authorized = tmp_path / "run" / "ssh" / "authorized_keys"
    assert authorized.read_text() == "ssh-ed25519 AAA a\nssh-rsa BBB b\n" and mode(authorized) == 0o600
    host_key = (tmp_path / "run" / "host_key").read_text()
    assert host_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    sshsetup.prepare_server(setup, is_root=False)  # a second start keeps the host key
    assert (tmp_path / "run" / "host_key").read_text() == host_key


@pytest.mark.parametrize("files,role,needle", [
    ({"authorized_keys": "ssh-ed25519 AAA a\n"}, "launcher", "holds no private key"),
    ({"id_rsa": "K"}, "worker", "has no authorized_keys and no *.pub key"),
])
def test_missing_keys_exit_5_naming_the_mount(tmp_path, files, role, needle):
    mount = secret_mount(tmp_path / "mount", files)
    code, out, err = entrypoint(tmp_path, t9k_spec(tmp_path, mount), role)
    assert code == EXIT_SETUP, err
    assert f"sshAuthMountPath: {str(mount)!r} {needle}" in err


def test_missing_mount_exits_5(tmp_path):
    code, _, err = entrypoint(tmp_path, t9k_spec(tmp_path, tmp_path / "absent"), "worker")
    assert code == EXIT_SETUP and f"sshAuthMountPath: {str(tmp_path / 'absent')!r} does not exist" in err


def test_bad_sshd_path_exits_5_naming_it(tmp_path):
    mount = secret_mount(tmp_path / "mount", {"authorized_keys": "ssh-ed25519 AAA a\n"})
    code, _, err = entrypoint(tmp_path, t9k_spec(tmp_path, mount, sshd="/nonexistent/sshd"), "worker")
    assert code == EXIT_SETUP and "sshdPath: '/nonexistent/sshd' is not an executable absolute path" in err
    code, _, err = entrypoint(tmp_path, t9k_spec(tmp_path, mount, sshd="sbin/sshd"), "worker")  # refused as a spec
    assert code == 2 and "spec.ssh.sshdPath: must be an absolute path" in err


def test_finish_writes_the_marker(tmp_path):
    code, out, err = run_cli(["entrypoint", "--finish", "3"], {"RINGRUN_RUN_DIR": str(tmp_path)})
    assert (code, out, err) == (0, "", "")
    assert (tmp_path / "finished").read_text() == "3\n"


def test_finish_needs_an_existing_run_dir(tmp_path):
    code, _, err = run_cli(["entrypoint", "--finish", "0"], {})
    assert code == 2 and "--finish: needs --run-dir or RINGRUN_RUN_DIR" in err
    code, _, err = run_cli(["entrypoint", "--finish", "0", "--run-dir", str(tmp_path / "absent")], {})
    assert code == EXIT_SETUP and "does not exist" in err


def test_worker_exits_with_the_code_finish_gives_and_stops_its_child(tmp_path):
    """A worker whose process (here `sleep`, as a debug command) is still running ends within seconds of
    `--finish 3`, with exit code 3, and its child is gone."""
    spec = t9k_spec(tmp_path, tmp_path / "unused", debug_worker=["sleep", "60"])
    run_dir = tmp_path / "run"
    env = {**os.environ, "RINGRUN_GRACE_SECONDS": "2"}
    worker = subprocess.Popen([sys.executable, "-m", "ringrun.launcher", "entrypoint", "--spec", str(spec),
                               "--role", "worker", "--run-dir", str(run_dir)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        children = []
        while time.monotonic() < deadline and not children:  # bounded: the sleep child appears within seconds
            children = [p for p in descendants_of(worker.pid) if _comm(p) == "sleep"]
            time.sleep(0.1)
        assert children, "the worker's child never started"
        finisher = subprocess.run([sys.executable, "-m", "ringrun.launcher", "entrypoint", "--finish", "3",
                                   "--run-dir", str(run_dir)], env=env, capture_output=True, text=True, timeout=30)
        assert finisher.returncode == 0, finisher.stderr
        code = worker.wait(timeout=30)  # a generous bound: it ends at once, or the test fails
        _, err = worker.communicate()
        assert code == 3, err
        assert "the launcher finished with exit code 3; stopping" in err
        assert _comm(children[0]) != "sleep"  # the child was stopped, not left behind
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return None

"""`ringrun serve`'s command line: bad input is one line naming the option or file, exit 2, and nothing served."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")


def serve(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "ringrun.server", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_bad_capacity_token_file_and_policy(tmp_path):
    data = str(tmp_path / "d")
    result = serve("--data-dir", data, "--capacity", "gpu=1")
    assert result.returncode == 2 and "--capacity: expected cpu=N,memory=QUANTITY" in result.stderr
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("only-a-token\n")
    result = serve("--data-dir", data, "--token-auth-file", str(tokens))
    assert result.returncode == 2 and f"{tokens}:1: expected token,user,uid" in result.stderr
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n- user: a\n  namespaces: []\n  verbs: [get]\n")
    result = serve("--data-dir", data, "--policy", str(policy))
    assert result.returncode == 2 and "rules[0].namespaces: must be a non-empty list" in result.stderr
    result = serve("--data-dir", data, "--policy", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    os.chmod(os.path.join(data, "tokens.csv"), 0o600)
    with open(os.path.join(data, "tokens.csv"), "w") as handle:
        handle.write("t,someone,1\n")
    result = serve("--data-dir", data)
    assert result.returncode == 5 and "has no line for the user admin" in result.stderr
    assert not os.path.exists(os.path.join(data, "kubeconfig"))


def test_one_server_per_data_directory(fresh_server):
    server = fresh_server()
    result = serve("--data-dir", server.data_dir)
    assert result.returncode == 2 and "another ringrun serve is using it" in result.stderr


def one_line(result, code, text):
    """The start-up fault `result` is exactly one line holding `text`, exit `code`, and no traceback."""
    assert result.returncode == code and result.stderr.count("\n") == 1 and text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_start_up_faults_are_one_line_naming_the_file(tmp_path):
    data = tmp_path / "data"
    data.write_text("a file")
    one_line(serve("--data-dir", str(data)), 5, f"data directory {data}: is not a directory")
    one_line(serve("--data-dir", str(data / "below")), 5, f"data directory {data}: is not a directory")
    one_line(serve("--data-dir", "/proc/ringrun-data"), 5, "data directory /proc/ringrun-data: cannot be checked or "
                                                           "made")
    data.unlink()
    data.mkdir(mode=0o700)
    (data / "store.db").write_bytes(b"garbage, not SQLite" * 100)
    one_line(serve("--data-dir", str(data)), 5, f"{data / 'store.db'}: not a ringrun store")
    (data / "store.db").unlink()
    (data / "ca.crt").write_text("garbage\n")
    (data / "ca.key").write_text("garbage\n")
    one_line(serve("--data-dir", str(data)), 5, f"{data / 'ca.crt'}: not a PEM certificate")
    (data / "ca.crt").unlink()
    tokens = tmp_path / "tokens.csv"
    tokens.write_bytes(b"\xff\xfe,user,1\n")
    one_line(serve("--data-dir", str(data), "--token-auth-file", str(tokens)), 2, f"{tokens}: not UTF-8 text")


def test_a_data_directory_open_to_others_is_refused(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    one_line(serve("--data-dir", str(loose)), 5, f"data directory {loose}: has mode 0755: other users can enter or "
                                                 "read it (chmod 700 it)")
    assert os.listdir(loose) == []
    writable = tmp_path / "writable"
    writable.mkdir(mode=0o700)
    (writable / "tokens.csv").write_text("x,admin,admin,\"system:masters\"\n")
    (writable / "tokens.csv").chmod(0o666)
    one_line(serve("--data-dir", str(writable)), 5, f"{writable / 'tokens.csv'}: has mode 0666: other users can "
                                                    "write it")


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's folder needs root to make: `make test` runs as root")
def test_a_data_directory_planted_by_another_user_is_refused(trusted_path):
    planted = trusted_path / "planted"
    planted.mkdir()
    planted.chmod(0o777)
    (planted / "tokens.csv").write_text('planter-token,admin,admin,"system:masters"\n')
    os.chown(planted / "tokens.csv", 65534, 65534)
    os.chown(planted, 65534, 65534)
    one_line(serve("--data-dir", str(planted)), 5, f"data directory {planted}: belongs to uid 65534, not to this user")
    os.chown(planted, 0, 0)
    planted.chmod(0o700)
    one_line(serve("--data-dir", str(planted)), 5, f"{planted / 'tokens.csv'}: belongs to uid 65534")
    assert sorted(os.listdir(planted)) == ["tokens.csv"]


def test_under_umask_000_everything_is_private_and_jobs_still_run(fresh_server, tmp_path):
    from kubernetes import client

    from jobspecs import finished, mpijob
    from serverproc import wait_until

    old = os.umask(0)
    try:
        server = fresh_server()
    finally:
        os.umask(old)
    api = client.CustomObjectsApi(server.client())
    api.create_namespaced_custom_object("kubeflow.org", "v2beta1", "umask", "mpijobs", mpijob("private", ["true"]))
    obj = wait_until(lambda: (lambda o: o if finished(o) else None)(api.get_namespaced_custom_object(
        "kubeflow.org", "v2beta1", "umask", "mpijobs", "private")), timeout=60, what="the job finished")
    assert [c["type"] for c in obj["status"]["conditions"]][-1] == "Succeeded", obj["status"]
    modes = {}
    for folder, dirs, names in os.walk(server.data_dir):
        for name in dirs + names:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, server.data_dir)] = os.stat(path).st_mode & 0o777
    assert os.stat(server.data_dir).st_mode & 0o777 == 0o700
    loose = {path: f"{mode:o}" for path, mode in modes.items() if mode & 0o077}
    assert not loose and {"tokens.csv", "store.db", "ca.key", "kubeconfig", "logs"} <= set(modes)

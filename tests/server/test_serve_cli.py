"""`ringrun serve`'s command line: bad input is one line naming the option or file, exit 2, and nothing served."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")


def serve(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "ringrun.launcher", "serve", "--port", "0", *args],
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
    assert result.returncode == 2 and "has no line for the user admin" in result.stderr
    assert not os.path.exists(os.path.join(data, "kubeconfig"))


def test_one_server_per_data_directory(fresh_server):
    server = fresh_server()
    result = serve("--data-dir", server.data_dir)
    assert result.returncode == 2 and "another ringrun serve is using it" in result.stderr

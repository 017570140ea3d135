"""The job images' files, read as docker would (tests/images runs the images that `make images` builds): the
public base by default, the ENTRYPOINT, users, ringrun from the wheelhouse with no index, pins for everything."""

import json
import re
import sys
import tomllib

import pytest

from conftest import ROOT

DOCKER = ROOT / "docker"
sys.path.insert(0, str(ROOT / "scripts"))
import images  # noqa: E402


def instructions(name):
    text = re.sub(r"\\\n", " ", (DOCKER / name).read_text())
    return [line.strip().split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def args_of(steps):
    return dict(a[1].split("=", 1) if "=" in a[1] else (a[1], None) for a in steps if a[0] == "ARG")


@pytest.mark.parametrize("name,user,base,default", [
    ("Dockerfile", None, "BASE", "python:3.11-slim-bookworm"), ("Dockerfile.nonroot", "mpiuser", "RINGRUN",
                                                                 "ringrun:latest"),
    ("Dockerfile.horovod", None, "RINGRUN", "ringrun:torch")])
def test_dockerfile(name, user, base, default):
    steps = instructions(name)
    assert steps[0] == ["ARG", f"{base}={default}"]
    assert steps[1] == ["FROM", "${" + base + "}"]
    assert [json.loads(args) for op, args in steps if op == "ENTRYPOINT"] == [["ringrun", "entrypoint", "--"]]
    assert [args for op, args in steps if op == "USER"] == ([user] if user else [])
    assert not [op for op, _ in steps if op in ("COPY", "ADD")]  # the wheelhouse is mounted, never copied in
    run = " ".join(args for op, args in steps if op == "RUN")
    if user:
        assert f"useradd --create-home --uid 1000 --shell /bin/bash {user}" in run
        assert "RINGRUN_SSH_PORT=2222" in " ".join(args for op, args in steps if op == "ENV")
    else:
        assert "--mount=type=bind,source=build/wheelhouse,target=/wheels" in run
        assert "${WHEELS}" in run  # the wheelhouse's digest is part of the layer's cache key
    if name == "Dockerfile":
        assert '--no-index --find-links /wheels "ringrun[${EXTRAS}]"' in run
        assert set(args_of(steps)) == {"BASE", "EXTRAS", "WHEELS", "PACKAGES"}
    if name == "Dockerfile.horovod":
        assert '--no-index --find-links /wheels "horovod==0.28.1"' in run


def test_every_variant_names_extras_that_exist_and_every_package_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pins = {}
    for line in (DOCKER / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower()] = version
    wanted = set()
    for variant in images.VARIANTS.values():
        for extra in (variant.extras or "").split(",") if variant.extras else ():
            assert extra in extras, extra
            wanted |= {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].lower() for r in extras[extra]}
    wanted |= {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].lower() for r in project["dependencies"]}
    assert wanted - {"numpy"} <= set(pins)  # numpy: per image, in scripts/images.py
    assert "numpy" not in pins


def test_only_the_wheelhouse_and_the_pi_program_are_sent_to_the_engine():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines == ["*", "!build/wheelhouse", "!examples/pi/pi.py"]

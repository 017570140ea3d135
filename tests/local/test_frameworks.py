"""A PyTorch or MXNet role whose Python lacks the framework fails before it starts (exit 5), naming the extra;
torchrun missing likewise; a command that is not Python is not second-guessed."""

import json
import subprocess
import sys

import pytest

import specs
from conftest import run_cli
from ringrun.launcher import frameworks
from ringrun.runtime.errors import SetupError

EXIT_SETUP = 5


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A virtualenv with nothing installed: neither torch nor mxnet."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


def job_with(obj, replicas_key, command, tmp_path):
    for replica in obj["spec"][replicas_key].values():
        replica["template"]["spec"]["containers"][0]["command"] = command
    path = tmp_path / "job.json"
    path.write_text(json.dumps(obj))
    return str(path)


@pytest.mark.parametrize("obj,key,module", [(specs.pytorchjob(), "pytorchReplicaSpecs", "torch"),
                                            (specs.mxjob(), "mxReplicaSpecs", "mxnet")])
def test_run_refuses_a_role_whose_python_lacks_the_framework(tmp_path, bare_python, obj, key, module):
    marker = tmp_path / "ran"
    spec = job_with(obj, key, [bare_python, "-c", f"open({str(marker)!r}, 'w')"], tmp_path)
    code, out, err = run_cli(["run", spec], environ={"PATH": "/usr/bin:/bin"})
    assert code == EXIT_SETUP, err
    packages = {"torch": "torch==2.13.0", "mxnet": "mxnet==1.9.1 'numpy<1.24'"}[module]
    assert f"{bare_python} cannot import {module}: install it where the command runs: {bare_python} -m pip install " \
           f"{packages} (ringrun's `{module}` extra" in err
    assert not marker.exists()  # nothing was started


def test_entrypoint_refuses_too(tmp_path, bare_python):
    # the master: a worker would look its master's name up (no name lookups leave this machine from a test here)
    spec = job_with(specs.pytorchjob(), "pytorchReplicaSpecs", ["python"], tmp_path)
    marker = tmp_path / "ran"
    code, _, err = run_cli(["entrypoint", "--spec", spec, "--role", "master", "--",
                            bare_python, "-c", f"open({str(marker)!r}, 'w')"], environ={"PATH": "/usr/bin:/bin"})
    assert code == EXIT_SETUP and "pytorch master: " in err and "cannot import torch" in err
    assert not marker.exists()


def test_torchrun_missing_names_the_extra(tmp_path, bare_python):
    env = {"PATH": str(tmp_path)}  # no torchrun here
    with pytest.raises(SetupError, match=r"pytorch master: torchrun not found on PATH: install it where the command "
                                         r"runs: pip install torch==2\.13\.0 \(ringrun's `torch` extra"):
        frameworks.check("pytorch", "master", ("torchrun", "--no-python", bare_python, "t.py"), env)


def test_the_command_torchrun_starts_is_checked_too(tmp_path, bare_python):
    (tmp_path / "torchrun").write_text("#!/bin/sh\n")
    (tmp_path / "torchrun").chmod(0o755)
    with pytest.raises(SetupError, match="cannot import torch"):
        frameworks.check("pytorch", "worker", ("torchrun", "--no-python", bare_python, "t.py"),
                         {"PATH": str(tmp_path)})


@pytest.mark.parametrize("argv", [("/bin/true",), ("bash", "-c", "python t.py"), ()])
def test_other_commands_are_not_second_guessed(argv):
    frameworks.check("pytorch", "master", argv, {"PATH": "/usr/bin:/bin"})
    frameworks.check("mpi", "launcher", ("python", "t.py"), {"PATH": "/nowhere"})

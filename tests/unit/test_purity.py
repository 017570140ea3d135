"""runtime/ is pure: it imports no subprocess or socket module and never reads or writes os.environ."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import specs
from conftest import FIXTURES, ROOT

RUNTIME = ROOT / "runtime"
FORBIDDEN_MODULES = {"subprocess", "socket", "multiprocessing", "asyncio", "shutil", "signal"}


def runtime_sources():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) >= 10
    return files


def test_runtime_source_imports_nothing_impure():
    for path in runtime_sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES | {"os"}, f"{path}: imports {name}"
            # No `os.environ` / `os.putenv` / `os.system`, nor the module reached some other way.
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert node.value.id != "os", f"{path}: os.{node.attr}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"__import__", "exec", "eval"}, f"{path}: {node.func.id}"


def test_importing_runtime_loads_no_subprocess_or_socket():
    code = ("import sys; before = set(sys.modules); import ringrun.runtime, ringrun.runtime.summary; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in {'subprocess', 'socket', 'selectors'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


class Forbidden(dict):
    """Stands in for os.environ while runtime code runs: any use fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("runtime touched os.environ")

    __getitem__ = __setitem__ = __delitem__ = __contains__ = __iter__ = __len__ = _fail
    get = setdefault = pop = update = keys = items = values = copy = _fail


def test_parsing_and_planning_never_touch_os_environ(monkeypatch):
    from ringrun.runtime import Context, build_plan, parse_jobs, resolve_identity
    from ringrun.runtime.summary import summary

    texts = [p.read_text() for p in sorted(FIXTURES.iterdir()) if p.is_file()]
    texts += [json.dumps(f()) for f in specs.ALL.values()]
    saved = dict(os.environ)
    monkeypatch.setattr(os, "environ", Forbidden())
    monkeypatch.setattr(os, "putenv", Forbidden()._fail)
    planned = 0
    for text in texts:
        for job in parse_jobs(text):
            summary(job)
            for replica in job.replicas:
                for index in range(replica.replicas):
                    identity = resolve_identity(job, role=replica.role, index=index, env={"X": "1"})
                    build_plan(job, identity, Context(run_dir="/r", environ={"X": "1"}))
                    planned += 1
    monkeypatch.undo()
    assert dict(os.environ) == saved
    assert planned > 30


def test_plan_never_mutates_its_arguments():
    from ringrun.runtime import Context, Identity, build_plan, parse_jobs

    (job,) = parse_jobs(json.dumps(specs.mpijob()))
    environ = {"OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile"}
    context = Context(run_dir="/r", environ=environ)
    before = (repr(job), dict(environ))
    build_plan(job, Identity("launcher", 0, "t"), context)
    assert (repr(job), environ) == before

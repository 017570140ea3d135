"""The folders are the architecture (DESIGN.md): each package imports only the layers below it, so no import
cycle can form. runtime is pure and imports no other part of ringrun; kernels only itself; bench the kernels; the
launcher runtime and bench (it starts the bench's ranks); the server runtime and the launcher, never the reverse.
Read from every module's source (imports inside functions too)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALLOWED = {
    "runtime": {"runtime"},
    "kernels": {"kernels"},
    "bench": {"bench", "kernels"},
    "launcher": {"launcher", "runtime", "bench"},
    "server": {"server", "launcher", "runtime"},
}


def imported(path, depth):
    """The ringrun packages the module at `path` imports (`import ringrun.X`, `from ringrun.X import ...`, anywhere
    in it); `depth`: how many packages deep it sits (runtime/x.py: 1), so a relative import that climbs out of its
    top package is reported as the package "..". """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level > depth:
            found.add("..")
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        found |= {name.split(".")[1] for name in names if name.startswith("ringrun.")}
    return found


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            depth = len(path.relative_to(ROOT).parts) - 1
            extra = imported(path, depth) - allowed
            if extra:
                wrong.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert wrong == []


def test_the_check_sees_imports_inside_functions_and_relative_escapes(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ringrun.server.app import serve\n    import ringrun.kernels.ring\n"
                      "from ... import x\nfrom .y import z\n")
    assert imported(module, 2) == {"server", "kernels", ".."}


def test_the_readme_lists_the_exit_codes_as_the_code_defines_them():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "exit_codes.py"), "--check"])
    assert result.returncode == 0, "README.md's exit codes differ from runtime/errors.py: run scripts/exit_codes.py"


def test_the_keeper_s_own_exit_code_is_the_enum_s():
    from ringrun.launcher import keeper
    from ringrun.runtime.errors import ExitCode

    assert keeper.NOT_STARTED == ExitCode.NOT_STARTED


# What names a kind: its Kind, its API group or apiVersion, its framework. A module outside runtime/kinds/ that
# compares a job's kind, apiVersion or framework (or one of these words) with anything, or keeps a table keyed by
# them, chooses by kind; that choice is its JobKind's or Framework's to make.
def _kind_words():
    from ringrun.runtime.kinds import frameworks, registry
    words = set(frameworks.FRAMEWORKS)
    for kind in registry.KINDS:
        words |= {kind.kind, kind.group, *kind.api_versions, kind.plural}
    return words


KIND_ATTRIBUTES = {"framework", "kind", "api_version", "tensorstack"}
JOB_PACKAGES = ("runtime", "launcher", "server")
# the benchmark runner's "mpi" is the MPI library's own allreduce (an impl), not a framework
NOT_ABOUT_JOBS = {"launcher/bench.py"}


def _constants(node):
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else (node,)
    return [i for i in items if isinstance(i, ast.Constant)]


def kind_choices(path, words):
    """[(line, what)] of the places in the module at `path` that choose by a job's kind."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Compare):
            operands = (node.left, *node.comparators)
            constant = any(_constants(o) for o in operands)  # a lookup compares two variables; a choice a constant
            for operand in operands:
                if constant and isinstance(operand, ast.Attribute) and operand.attr in KIND_ATTRIBUTES:
                    found.append((node.lineno, f"compares .{operand.attr}"))
                found += [(node.lineno, f"compares with {c.value!r}") for c in _constants(operand) if c.value in words]
        if isinstance(node, ast.Dict):
            found += [(node.lineno, f"a table keyed by {k.value!r}") for k in node.keys
                      if isinstance(k, ast.Constant) and k.value in words]
        if isinstance(node, ast.Attribute) and node.attr == "tensorstack":
            found.append((node.lineno, "reads .tensorstack"))
    return found


def test_nothing_outside_the_kinds_folder_chooses_by_kind():
    words = _kind_words()
    wrong = []
    for package in JOB_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "runtime" / "kinds") or str(path.relative_to(ROOT)) in NOT_ABOUT_JOBS:
                continue
            wrong += [f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in kind_choices(path, words)]
    assert not wrong, "\n".join(wrong)


def test_the_kind_check_finds_a_choice_by_kind(tmp_path):
    """The check above is not vacuous: each form it looks for is found."""
    module = tmp_path / "chooses.py"
    module.write_text('if job.framework == "x": pass\nif kind in ("MPIJob",): pass\nTABLE = {"pytorch": 1}\n'
                      "t9k = job.tensorstack\nif a.kind == b.kind: pass\n")
    assert sorted(what for _, what in kind_choices(module, _kind_words())) == [
        "a table keyed by 'pytorch'", "compares .framework", "compares with 'MPIJob'", "reads .tensorstack"]

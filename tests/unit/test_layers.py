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

"""An OCI runtime for podman (`podman --runtime WRAPPER`) where setting a container's rlimits is refused.

podman always asks the runtime to set RLIMIT_NOFILE and RLIMIT_NPROC when it runs as root; a sandbox without
CAP_SYS_RESOURCE refuses that ("error setting rlimit type 7: operation not permitted"). This removes
`process.rlimits` from the bundle's config.json before `runc create` / `runc run`, and `rlimits` from the process
file of `runc exec --process FILE` (`podman exec`), then is runc with the same arguments: the container keeps the
limits it inherits. RUNC names runc (default: the first on PATH).
On an ordinary machine this is not needed; ringrun uses it only where a plain `podman run` fails that way
(launcher/engine.py writes `wrapper_script()` into a private folder and passes it as podman's --runtime).
Standard library only: it runs as `python -ES` for every container podman creates.
"""

import json
import os
import shutil
import sys


def option(args, names, default=None):
    """The value of an option of a runc command line (`--name VALUE` or `--name=VALUE`), else `default`."""
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return default


def without_rlimits(path, where):
    """Delete the rlimits found at `where` (a function of the JSON document) in the JSON file at `path`."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if where(document).pop("rlimits", None) is not None:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(path + ".tmp", path)


def main(args):
    runc = os.environ.get("RUNC") or shutil.which("runc")
    if runc is None:
        sys.stderr.write("runc-without-rlimits: runc not found on PATH\n")
        return 127
    if "create" in args or "run" in args:
        without_rlimits(os.path.join(option(args, ("--bundle", "-b"), "."), "config.json"),
                        lambda config: config.setdefault("process", {}))
    elif "exec" in args and option(args, ("--process", "-p")):
        without_rlimits(option(args, ("--process", "-p")), lambda process: process)
    os.execv(runc, [runc, *args])


def wrapper_script(python):
    """This module's source as an executable script run by `python` (for podman's --runtime)."""
    with open(__file__, encoding="utf-8") as handle:
        return f"#!{python} -ES\n" + handle.read()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

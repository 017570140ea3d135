"""The keeper: one small process per replica that owns the replica's whole process tree, so nothing outlives it.

    python -E -S keeper.py PARENT GRACE [--user UID:GID] [--cwd DIR] [--cgroup DIR] [--env-file F] -- CMD [ARGS...]

The Supervisor starts every replica through a keeper (standard library only, run as a file: it starts in
milliseconds). The keeper
- makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): a descendant that detaches (`setsid`, a daemon's double
  fork) is re-parented to the keeper, not to init, so it stays in the tree the keeper owns;
- asks for SIGTERM when its parent dies (PR_SET_PDEATHSIG): if ringrun itself is killed, even by SIGKILL, every
  keeper stops its replica (PARENT is ringrun's pid: a parent gone before the keeper asked is noticed too);
- starts CMD in a process group of its own, passes its exit code on (128+N when signal N ended it), and when CMD
  ends kills whatever CMD left behind;
- on SIGTERM, SIGINT, SIGHUP or SIGQUIT (or its parent's death), sends SIGTERM to CMD's group and every descendant,
  then SIGKILL to what is left after GRACE seconds, and exits with CMD's code (128+N when the signal ended it).
CMD starts with the default disposition of SIGPIPE and SIGXFSZ (Python itself ignores them). With `--user` (a root
keeper) CMD runs as that uid and gid with no supplementary groups, and enters `--cwd` only after it dropped root, so
the kernel decides whether that user may be there; the keeper stays root, out of the reach of CMD's signals. Such a
keeper runs with an environment of its own (the job's could hold LD_PRELOAD for root's process): CMD's comes from
`--env-file` (JSON, read and removed at once).
With `--cgroup` the keeper first moves itself into that cgroup (launcher/cgroups.py), so that everything CMD starts
can be found and ended even if the keeper itself is killed.
Its name (comm) is `ringrun`. 127 when CMD cannot be started (the reason on stderr).
"""

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG, PR_SET_NAME, PR_SET_CHILD_SUBREAPER = 1, 15, 36
POLL_SECONDS = 0.02
NOT_STARTED = 127  # ExitCode.NOT_STARTED of runtime/errors.py (standard library only here: the number; a test checks)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, *STOP_SIGNALS)  # as a shell would start CMD


def descendants(root):
    """PIDs of every process below `root`, read from /proc (the keeper's own subtree only)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), ()):
            found.append(child)
            queue.append(child)
    return found


def signal_tree(group, sig):
    """`sig` to CMD's process group and to every descendant (detached ones have left the group)."""
    try:
        os.killpg(group, sig)
    except OSError:
        pass
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def reap(main):
    """Reap every exited child; returns the exit code of `main` once it is among them, else None."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == main:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code


def _options(argv):
    """(parent pid, grace, {"--user": (uid, gid), "--cwd": DIR, "--cgroup": DIR} as given, command) from argv."""
    parent, grace, rest = int(argv[0]), float(argv[1]), list(argv[2:])
    options = {}
    while rest and rest[0] != "--":
        flag, value, rest = rest[0], rest[1], rest[2:]
        options[flag] = tuple(int(v) for v in value.split(":")) if flag == "--user" else value
    return parent, grace, options, rest[1:]


def _join(cgroup):
    """Move this process into `cgroup` (its children follow); a cgroup that cannot be joined is left alone: the
    keeper's session stands in (launcher/cgroups.py)."""
    try:
        with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
    except OSError:
        pass


def _leave(cgroup):
    """Back to the parent cgroup, and `cgroup` removed (empty now: the tree is cleared), so that nothing is left
    even when ringrun itself was killed."""
    _join(os.path.dirname(cgroup))
    try:
        os.rmdir(cgroup)
    except OSError:
        pass


def _take_env(path):
    """The environment in JSON file `path`, which is removed."""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    finally:
        os.unlink(path)


def _spawn_as(command, user, cwd, env):
    """Start CMD in a process group of its own as `user` (uid, gid), in `cwd` once it is that user. Raises OSError
    (the child's own failure to change user, enter cwd or exec is reported through a pipe)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: nothing here may return into the keeper's code
        try:
            os.close(read_end)
            os.setpgid(0, 0)
            for sig in DEFAULT_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            if cwd is not None:
                os.chdir(cwd)
            os.execvpe(command[0], command, env)
        except OSError as exc:
            os.write(write_end, f"{exc.errno}:{exc.filename or ''}".encode())
        finally:
            os._exit(NOT_STARTED)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        failure = pipe.read()
    if failure:
        os.waitpid(pid, 0)
        number, _, name = failure.decode().partition(":")
        raise OSError(int(number), os.strerror(int(number)), name or None)
    return pid


def main(argv):
    parent, grace, options, command = _options(argv)
    if "--cgroup" not in options:
        return _keep(parent, grace, options, command)
    _join(options["--cgroup"])
    try:
        return _keep(parent, grace, options, command)
    finally:
        _leave(options["--cgroup"])


def _keep(parent, grace, options, command):
    """Start CMD and keep it (the module doc); returns the keeper's exit code."""
    user, cwd = options.get("--user"), options.get("--cwd")
    env = _take_env(options["--env-file"]) if "--env-file" in options else dict(os.environ)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    libc.prctl(PR_SET_NAME, b"ringrun", 0, 0, 0)
    stop = []
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    if os.getppid() != parent:  # the parent died before PR_SET_PDEATHSIG took effect
        return 128 + signal.SIGTERM
    try:
        if user is None:
            if cwd is not None:
                os.chdir(cwd)
            child = os.posix_spawnp(command[0], command, env, setpgroup=0, setsigdef=DEFAULT_SIGNALS)
        else:
            child = _spawn_as(command, user, cwd, env)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and exc.filename != command[0] else ""
        sys.stderr.write(f"ringrun: cannot start {command[0]}: {exc.strerror}{where}\n")
        return NOT_STARTED
    code, stopped_at = None, None
    while code is None:
        code = reap(child)
        if code is None and stop and stopped_at is None:
            stopped_at = time.monotonic()
            signal_tree(child, signal.SIGTERM)
        if code is None and stopped_at is not None and time.monotonic() - stopped_at >= grace:
            signal_tree(child, signal.SIGKILL)
        time.sleep(POLL_SECONDS)
    # CMD is over: nothing it started may outlive it
    deadline = time.monotonic() + 5
    while descendants(os.getpid()) and time.monotonic() < deadline:
        signal_tree(child, signal.SIGKILL)
        reap(child)
        time.sleep(POLL_SECONDS)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

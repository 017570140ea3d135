"""Finding a replica's processes without its keeper: a cgroup per replica where cgroup v2 lets this process make
one, else the keeper's session.

The keeper ends its replica's tree itself; this is for when the keeper is gone before it could (killed with
SIGKILL): every process the replica started is in the replica's cgroup (the keeper moved itself there before it
started anything, and nothing leaves a cgroup by forking, `setsid` or a double fork), and `cgroup.kill` ends them
all at once. Without a writable cgroup v2 (a container, a user without delegation) the keeper's session stands in:
every process of the replica is in it unless it called `setsid` itself.
"""

import itertools
import os
import secrets
import signal
import time

MOUNTS = "/proc/self/mountinfo"
_NUMBERS = itertools.count(1)  # one sequence per process: every supervisor's cgroups have names of their own
_PROCESS = secrets.token_hex(4)  # and processes of the same pid (pods' PID namespaces are all pid 1) too
STALE_SECONDS = 60  # an empty cgroup of ours older than this was left by a process that was killed


def _own_cgroup(mountinfo=MOUNTS, membership="/proc/self/cgroup"):
    """The directory of this process's cgroup v2, or None."""
    try:
        with open(membership, encoding="ascii") as handle:
            path = next((line.strip()[3:] for line in handle if line.startswith("0::")), None)
        with open(mountinfo, encoding="utf-8") as handle:
            mount = next((line.split()[4] for line in handle if " - cgroup2 " in line), None)
    except OSError:
        return None
    if path is None or mount is None:
        return None
    return os.path.join(mount, path.lstrip("/"))


class Groups:
    """Makes one cgroup per replica below this process's own: `make(name)` -> its path, or None when cgroups cannot
    be made here (then `sweep` uses the keeper's session)."""

    def __init__(self, base=None):
        self.base = _own_cgroup() if base is None else base
        self.usable = self.base is not None and os.access(self.base, os.W_OK)
        if self.usable:
            _clear_stale(self.base)

    def make(self, name):
        if not self.usable:
            return None
        path = os.path.join(self.base, f"ringrun-{os.getpid()}-{_PROCESS}-{next(_NUMBERS)}-{name}"[:200])
        try:
            os.mkdir(path, 0o755)
        except OSError:
            self.usable = False  # read-only here, or no delegation: the session stands in from now on
            return None
        return path


def _clear_stale(base, now=None):
    """Remove the empty `ringrun-*` cgroups below `base` older than STALE_SECONDS (their keeper and supervisor were
    killed together; a young empty one may be another supervisor's, its keeper not yet in it)."""
    now = time.time() if now is None else now
    try:
        entries = [e for e in os.scandir(base) if e.name.startswith("ringrun-") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for entry in entries:
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS and not members(entry.path):
                os.rmdir(entry.path)
        except OSError:
            pass


def members(path):
    """PIDs in cgroup `path` (empty when it is gone)."""
    try:
        with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as handle:
            return [int(line) for line in handle if line.strip()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def session_members(session):
    """PIDs whose session is `session` (from /proc: the keeper's session once the keeper is gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 3 and int(fields[3]) == session:  # state, ppid, pgrp, session
                found.append(int(entry))
    return found


def sweep(path, session, deadline_seconds=5.0):
    """SIGKILL whatever is left of a replica whose keeper exited: in its cgroup `path` (then removed) and in the
    keeper's `session` (None: none). Returns how many processes were found."""
    found = set()
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        # both: a keeper that could not join its cgroup left its replica in its session only
        pids = set(members(path) if path else ()) | set(session_members(session) if session is not None else ())
        pids.discard(os.getpid())
        if not pids:
            break
        found.update(pids)
        if path:
            _write(os.path.join(path, "cgroup.kill"), "1")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    if path:
        try:
            os.rmdir(path)
        except OSError:
            pass
    return len(found)


def _write(path, text):
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(text)
        return True
    except OSError:
        return False

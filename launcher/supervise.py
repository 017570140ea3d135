"""Process supervision, in one place: every child under a keeper, output prefixed per child, SIGTERM then SIGKILL
after a grace period, exit codes normalized (128+signal when killed), no orphans.

Each child runs under its own keeper (keeper.py), started as the leader of a new session: the keeper owns the
child's whole process tree (mpirun, its daemons and ranks, anything that detached with setsid), stops it on SIGTERM
with the same grace, clears it when the child ends, and stops it when ringrun dies, even by SIGKILL.
"""

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from . import cgroups, logfiles

DEFAULT_GRACE_SECONDS = 5.0
KEEPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keeper.py")
LINE_BYTES = 64 * 1024  # the longest piece of output a pump holds at once
KEEPER_MARGIN = 5.0  # past its grace, a keeper still gets this long to clear its tree before it is killed itself


def exit_code(returncode):
    """Popen's returncode as a shell reports it: -N (killed by signal N) becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


# Every signal that asks a process to stop: replicas are stopped, the exit code is 128+signal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


@contextlib.contextmanager
def stop_signals(callback):
    """Within the block, call callback(signum) on SIGINT, SIGTERM, SIGHUP and SIGQUIT instead of dying."""
    previous = {sig: signal.signal(sig, lambda signum, frame: callback(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class RunAs:
    """The user a job's processes run as when ringrun is root and the job must not be (`ringrun serve`'s jobs): a
    uid and gid, and no supplementary groups. The keepers stay root (the job cannot signal them)."""

    uid: int
    gid: int

    def subprocess_args(self):
        """subprocess.run / Popen keyword arguments that start a program as this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


class Child:
    __slots__ = ("name", "proc", "threads", "code", "cgroup")

    def __init__(self, name, proc, cgroup=None):
        self.name, self.proc, self.threads, self.code, self.cgroup = name, proc, [], None, cgroup

    @property
    def pid(self):
        return self.proc.pid


class Supervisor:
    """Starts and watches children. `out`/`err` are text streams for prefixed lines; `log_dir` adds per-child files."""

    def __init__(self, out, err, log_dir=None, grace=DEFAULT_GRACE_SECONDS, prefix=True, rotation=None,
                 run_as=None):
        """rotation: a logfiles.Rotation for one `<name>.log` per child with stdout and stderr together (as `kubectl
        logs` shows a pod), rotated by its bounds; when the child is started again, the last run's file becomes
        `<name>.previous.log`. None: `<name>.stdout.log` and `<name>.stderr.log`, appended to on a restart.
        run_as: a RunAs for every child (its keeper stays this process's user)."""
        self.out, self.err, self.log_dir, self.grace, self.prefix = out, err, log_dir, grace, prefix
        self.run_as = run_as
        self.rotation = rotation
        self.children = []
        self.groups = cgroups.Groups()
        self._lock = threading.Lock()
        self._logged = set()  # log files begun by this supervisor: a restarted child appends, a new run starts anew

    def start(self, name, argv, env, cwd=None):
        """Start argv (a list) as child `name` with exactly `env`, in `cwd`, under a keeper. Raises OSError when it
        cannot be executed (not found on the env's PATH, or not executable)."""
        if not _executable(argv[0], env, cwd):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        keeper = [sys.executable, "-E", "-S", KEEPER, str(os.getpid()), repr(float(self.grace))]
        keeper_env, env_file = dict(env), None
        if self.run_as is not None:  # the command enters cwd as that user: the kernel says whether it may
            env_file = _env_file(env)  # root's keeper never runs with the job's LD_PRELOAD & co: only its command
            keeper += ["--user", f"{self.run_as.uid}:{self.run_as.gid}", "--env-file", env_file]
            keeper += ["--cwd", cwd] if cwd else []
            cwd, keeper_env = None, {"PATH": os.defpath}
        cgroup = self.groups.make(name)
        if cgroup is not None:
            keeper += ["--cgroup", cgroup]
        try:
            proc = subprocess.Popen([*keeper, "--", *argv], env=keeper_env, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError:
            if cgroup is not None:
                cgroups.sweep(cgroup, None)
            if env_file is not None:
                os.unlink(env_file)
            raise
        child = Child(name, proc, cgroup)
        shared = self._combined_log(name) if self.log_dir and self.rotation else None
        for stream, sink, suffix in ((proc.stdout, self.out, "stdout"), (proc.stderr, self.err, "stderr")):
            path = os.path.join(self.log_dir, f"{name}.{suffix}.log") if self.log_dir and not shared else None
            mode = "ab" if path in self._logged else "wb"
            self._logged.add(path)
            thread = threading.Thread(target=self._pump, args=(name, stream, sink, path, mode, shared), daemon=True)
            thread.start()
            child.threads.append(thread)
        self.children.append(child)
        return child

    def _combined_log(self, name):
        path = os.path.join(self.log_dir, f"{name}.log")
        try:
            if path in self._logged:
                logfiles.begin_again(path)
            self._logged.add(path)
            return logfiles.Writer(path, self.rotation, self._lock, users=2)
        except OSError as exc:
            self.err.write(f"ringrun: cannot write the log file {path}: {exc.strerror or exc}\n")
            return None

    def _pump(self, name, stream, sink, path, mode, shared=None):
        tag = f"[{name}] " if self.prefix else ""
        log = shared
        try:
            if path:
                try:
                    log = _open_log(path, mode)
                except OSError as exc:  # the output still flows to `sink`: a replica never blocks on its pipe
                    with self._lock:
                        sink.write(f"{tag}ringrun: cannot write the log file {path}: {exc.strerror or exc}\n")
            for raw in iter(lambda: stream.readline(LINE_BYTES), b""):  # a line without end is cut in pieces
                if log:
                    try:
                        log.write(raw)
                        log.flush()
                    except OSError as exc:  # a full disk: the log stops, the pipe is still drained
                        with self._lock:
                            sink.write(f"{tag}ringrun: the log stops here: {exc.strerror or exc}\n")
                        log.close()
                        log = None
                line = raw.decode("utf-8", "replace")
                with self._lock:
                    sink.write(tag + line if line.endswith("\n") else tag + line + "\n")
                    sink.flush()
        finally:
            stream.close()
            if log:
                log.close()

    def poll(self):
        """Children that exited since the last call, as (child, exit code); each keeper cleared its tree first, and
        what a killed keeper could not clear is ended here (its cgroup, else its session)."""
        finished = []
        for child in self.children:
            if child.code is None and child.proc.poll() is not None:
                child.code = exit_code(child.proc.returncode)
                if cgroups.sweep(child.cgroup, child.pid) and child.code == 0:
                    child.code = 128 + signal.SIGKILL  # its keeper was gone before its replica: never a success
                for thread in child.threads:
                    thread.join(timeout=5)
                finished.append((child, child.code))
        return finished

    def running(self):
        return [c for c in self.children if c.code is None]

    @staticmethod
    def _kill_group(child, sig):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self, children=None):
        """SIGTERM each running child's keeper, which stops the child's tree (SIGKILL after the grace period); a keeper
        still there KEEPER_MARGIN seconds later is killed. Reaps all; returns the children stopped."""
        targets = [c for c in (self.running() if children is None else children) if c.code is None]
        for child in targets:
            self._kill_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace + KEEPER_MARGIN
        while any(c.proc.poll() is None for c in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        for child in targets:
            if child.proc.poll() is None:  # a keeper that could not clear its tree in time (not reaped: pid still its)
                self._kill_group(child, signal.SIGKILL)
            child.proc.wait()
        self.poll()
        return targets


def _env_file(env):
    """A private file (0600, this user's) holding `env` as JSON, for a keeper that changes user to read and remove."""
    import json
    import tempfile

    fd, path = tempfile.mkstemp(prefix="ringrun-env-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(env, handle)
    return path


def _executable(program, env, cwd):
    """Whether `program` names an executable: on the env's PATH, or as a path (relative to `cwd`)."""
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(cwd or os.getcwd(), program)
        return os.path.isfile(path) and os.access(path, os.X_OK)
    return shutil.which(program, path=env.get("PATH", os.defpath)) is not None


def _open_log(path, mode):
    """A replica's log file, never through a link: "wb" starts it anew, "ab" appends."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o644), "wb")

"""Process supervision, in one place: every child in its own process group, output prefixed per child, SIGTERM then
SIGKILL after a grace period, exit codes normalized (128+signal when killed), no orphans.

A child is started as the leader of a new session, so the whole tree it starts (mpirun, its daemons and ranks) shares
its process group and can be signalled at once; when the leader exits, whatever it left in its group is killed.
"""

import os
import signal
import subprocess
import sys
import threading
import time

DEFAULT_GRACE_SECONDS = 5.0


def exit_code(returncode):
    """Popen's returncode as a shell reports it: -N (killed by signal N) becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signals(callback):
    """Call callback(signum) on SIGINT/SIGTERM instead of dying; returns the previous handlers for `restore_signals`."""
    return {sig: signal.signal(sig, lambda signum, frame: callback(signum)) for sig in STOP_SIGNALS}


def restore_signals(previous):
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def with_python_on_path(environ):
    """A copy of `environ` with this Python's bin folder first on PATH (where the venv's mpirun, python and ringrun
    are), as a job image has it."""
    env = dict(environ)
    here = os.path.dirname(sys.executable)
    parts = env.get("PATH", "").split(os.pathsep) if env.get("PATH") else []
    if parts[:1] != [here]:
        env["PATH"] = os.pathsep.join([here] + parts)
    return env


def run_one(supervisor, name, argv, env, until=None, poll_seconds=0.05):
    """`run_all` for a single command."""
    return run_all(supervisor, [(name, argv, env)], until, poll_seconds)


def run_all(supervisor, commands, until=None, poll_seconds=0.05):
    """Start every (name, argv, env) of `commands` under `supervisor` and wait for all of them, for the first to fail,
    for `until()` to return a code, or for SIGTERM/SIGINT.

    Returns (exit code, how): how is "exited" (0, or the first non-zero code, the others then stopped), "until" or
    "signal" (code 128+N). No child is left afterwards: SIGTERM to each process group, SIGKILL after the grace
    period. Raises OSError when an argv cannot start (those already started are stopped first).
    """
    received = []
    previous = on_stop_signals(received.append)
    try:
        try:
            for name, argv, env in commands:
                supervisor.start(name, argv, env)
        except OSError:
            supervisor.terminate()
            raise
        while True:
            failed = [code for _, code in supervisor.poll() if code != 0]
            if failed or not supervisor.running():
                supervisor.terminate()
                return (failed[0] if failed else 0), "exited"
            if received:
                supervisor.terminate()
                return 128 + received[0], "signal"
            code = until() if until else None
            if code is not None:
                supervisor.terminate()
                return code, "until"
            time.sleep(poll_seconds)
    finally:
        restore_signals(previous)


class Child:
    __slots__ = ("name", "proc", "threads", "code")

    def __init__(self, name, proc):
        self.name, self.proc, self.threads, self.code = name, proc, [], None

    @property
    def pid(self):
        return self.proc.pid


class Supervisor:
    """Starts and watches children. `out`/`err` are text streams for prefixed lines; `log_dir` adds per-child files."""

    def __init__(self, out, err, log_dir=None, grace=DEFAULT_GRACE_SECONDS, prefix=True):
        self.out, self.err, self.log_dir, self.grace, self.prefix = out, err, log_dir, grace, prefix
        self.children = []
        self._lock = threading.Lock()

    def start(self, name, argv, env, cwd=None):
        """Start argv (a list) as child `name` with exactly `env`. Raises OSError when it cannot be executed."""
        proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        child = Child(name, proc)
        for stream, sink, suffix in ((proc.stdout, self.out, "stdout"), (proc.stderr, self.err, "stderr")):
            path = os.path.join(self.log_dir, f"{name}.{suffix}.log") if self.log_dir else None
            thread = threading.Thread(target=self._pump, args=(name, stream, sink, path), daemon=True)
            thread.start()
            child.threads.append(thread)
        self.children.append(child)
        return child

    def _pump(self, name, stream, sink, path):
        tag = f"[{name}] " if self.prefix else ""
        log = open(path, "ab") if path else None
        try:
            for raw in iter(stream.readline, b""):
                if log:
                    log.write(raw)
                    log.flush()
                line = raw.decode("utf-8", "replace")
                with self._lock:
                    sink.write(tag + line if line.endswith("\n") else tag + line + "\n")
                    sink.flush()
        finally:
            stream.close()
            if log:
                log.close()

    def poll(self):
        """Children that exited since the last call, as (child, exit code); their leftover group is killed."""
        finished = []
        for child in self.children:
            if child.code is None and child.proc.poll() is not None:
                child.code = exit_code(child.proc.returncode)
                self._kill_group(child, signal.SIGKILL)
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

    def terminate(self, children=None, grace=None):
        """SIGTERM each running child's process group, SIGKILL what is left after `grace` seconds; reap all."""
        targets = [c for c in (self.running() if children is None else children) if c.code is None]
        grace = self.grace if grace is None else grace
        for child in targets:
            self._kill_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(c.proc.poll() is None for c in targets) and time.monotonic() < deadline:
            time.sleep(0.02)
        for child in targets:
            self._kill_group(child, signal.SIGKILL)
            child.proc.wait()
        self.poll()
        return targets

    def signal_all(self, sig):
        for child in self.running():
            self._kill_group(child, sig)

"""Process supervision, in one place: every child in its own process group, output prefixed per child, SIGTERM then
SIGKILL after a grace period, exit codes normalized (128+signal when killed), no orphans.

A child is started as the leader of a new session, so the whole tree it starts (mpirun, its daemons and ranks) shares
its process group and can be signalled at once; when the leader exits, whatever it left in its group is killed.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time

DEFAULT_GRACE_SECONDS = 5.0


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

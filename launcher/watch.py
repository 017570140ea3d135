"""Watch the worker pods while the launcher's command runs: one idle ssh session per worker.

Open MPI 5's mpirun exits 0 after "PRTE has lost communication with a remote daemon" (seen in the pod tests), and
other launchers can hang on a dead host (mpi-operator #152): mpirun's own exit code cannot be trusted to say that a
worker pod went away. Each session runs `cat` on the worker and lasts as long as the pod (or the launcher) does; when
it ends before the watch is stopped, that worker is lost. ServerAlive probes bound how long a silent host takes.
"""

import subprocess
import threading
import time

ALIVE_ARGS = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")


class WorkerWatch:
    """start() opens the sessions; lost() -> {host: seconds since the loss was seen}; stop() closes them all."""

    def __init__(self, hosts, ssh_config, env, clock=time.monotonic):
        self.hosts, self.ssh_config, self.env, self.clock = tuple(hosts), ssh_config, env, clock
        self._procs, self._lost, self._stopping = {}, {}, threading.Event()
        self._threads = []

    def start(self):
        for host in self.hosts:
            argv = ["ssh", "-F", self.ssh_config, *ALIVE_ARGS, host, "exec", "cat"]
            try:
                proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            except OSError:
                self._lost[host] = self.clock()
                continue
            self._procs[host] = proc
            thread = threading.Thread(target=self._wait, args=(host, proc), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _wait(self, host, proc):
        proc.wait()
        if not self._stopping.is_set():
            self._lost.setdefault(host, self.clock())

    def lost(self):
        now = self.clock()
        return {host: now - since for host, since in self._lost.items()}

    def stop(self):
        """Close every session (EOF ends `cat` on the worker); kill a client that does not exit within 5 s."""
        self._stopping.set()
        for proc in self._procs.values():
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in self._procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(5)

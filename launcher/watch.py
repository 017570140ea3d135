"""Watch the worker pods while the launcher's command runs: one idle ssh session per worker.

Open MPI 5's mpirun exits 0 after "PRTE has lost communication with a remote daemon" (seen in the pod tests), and
other launchers can hang on a dead host (mpi-operator #152): mpirun's own exit code cannot be trusted to say that a
worker pod went away. Each session runs `cat` on the worker and lasts as long as the pod (or the launcher) does; when
it ends before the watch is stopped, that worker is lost. ServerAlive probes bound how long a silent host takes.
An elastic Horovod launcher instead keeps a host discovery script listing the workers that are up (HostDiscovery):
there a worker leaving is no failure.
"""

import subprocess
import threading
import time

from ringrun.runtime import topology

from . import files, readiness

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


class HostDiscovery:
    """An elastic Horovod launcher's monitor: keeps its host discovery script listing the workers that are up.

    One thread per worker: it probes the worker's sshd (resolve + TCP connect) every second until it answers, then
    logs in (the worker answers `ready`) and holds that ssh session idle, as WorkerWatch does, for as long as the
    worker lives. The script (mpi-operator's
    `discover_hosts.sh` format, `echo host:slots` per live worker, in the workers' order) is rewritten atomically on
    every change, and each change is logged. It never ends the job: in elastic training workers come and go.
    """

    lost = ()  # for the launcher's end-of-job report: a worker leaving an elastic job is not a loss

    def __init__(self, endpoints, slots, path, ssh_config, env, log, probe=None, interval=1.0):
        self.endpoints, self.slots, self.path = tuple(endpoints), slots, path
        self.ssh_config, self.env, self.log, self.interval = ssh_config, env, log, interval
        self._write = lambda text: files.write_atomic(path, text.encode("utf-8"), mode=0o755)
        self._probe = probe or (lambda e: readiness.connect(*readiness.resolve(e.host, e.port), 1.0))
        self._live, self._lock, self._stopping = set(), threading.Lock(), threading.Event()
        self._procs, self._refused = {}, set()
        self._threads = [threading.Thread(target=self._follow, args=(e,), daemon=True) for e in self.endpoints]
        for thread in self._threads:
            thread.start()

    def _set(self, endpoint, up):
        with self._lock:
            if self._stopping.is_set() or (endpoint.host in self._live) == up:
                return
            (self._live.add if up else self._live.discard)(endpoint.host)
            entries = [f"{e.host}:{self.slots}" for e in self.endpoints if e.host in self._live]
            self._write(topology.discover_hosts(entries))
        self.log(f"{self.path}: {endpoint.host} {'joined' if up else 'left'}; {len(entries)} worker(s) listed")

    def _follow(self, endpoint):
        while not self._stopping.is_set():
            try:
                self._probe(endpoint)
            except (OSError, UnicodeError):
                self._stopping.wait(self.interval)
                continue
            # the worker says `ready` once the login succeeded; the session then lasts as long as the worker
            argv = ["ssh", "-F", self.ssh_config, *ALIVE_ARGS, endpoint.host, "echo ready; exec cat"]
            try:
                proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
            except OSError:
                self._stopping.wait(self.interval)
                continue
            with self._lock:
                closing = self._stopping.is_set()
                if not closing:
                    self._procs[endpoint.host] = proc
            if closing:  # close() has run: this session is not in its list, so it is ended here
                proc.stdin.close()
                proc.wait()
                return
            if proc.stdout.readline() == b"ready\n":
                self._set(endpoint, True)
                proc.wait()
                self._set(endpoint, False)
            else:  # the session ended before the login did: its sshd answers, but it refuses us
                code = proc.wait()
                if endpoint.host not in self._refused and not self._stopping.is_set():
                    self._refused.add(endpoint.host)
                    self.log(f"{endpoint.host}: its sshd answers but the ssh login failed (exit {code}); not "
                             "listed, trying again every second")
            proc.stdout.close()
            self._stopping.wait(self.interval)

    def check(self):
        return None

    def close(self):
        """Stop following: every session closed (EOF ends `cat` on the worker), a client that lingers killed."""
        with self._lock:
            self._stopping.set()
            procs = list(self._procs.values())
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for thread in self._threads:
            thread.join(timeout=5)

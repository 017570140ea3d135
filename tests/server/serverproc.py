"""A `ringrun serve` process for the tests: started on a free loopback port with its own data directory, clients
made from the kubeconfig it writes, stopped by PID (SIGTERM, or SIGKILL to simulate a crash)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_until(predicate, timeout=30.0, interval=0.05, what="the condition"):
    """Poll `predicate` until it returns something true (returned), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


def jobs_folder():
    """A fresh --jobs-dir: as root in a folder every level of which other users may pass through (the jobs run as
    uids of their own) and only root may write, else None (DATA/jobs)."""
    if os.geteuid() != 0:
        return None
    base = "/var/lib/ringrun-tests"
    os.makedirs(base, mode=0o755, exist_ok=True)
    folder = tempfile.mkdtemp(dir=base, prefix="jobs-")
    os.chmod(folder, 0o711)
    return folder


class ServerProcess:
    def __init__(self, data_dir, args=(), jobs_base=None, env=None):
        """jobs_base: an earlier server's (stopped with keep_jobs) to run on its jobs folder, removed at stop; env:
        more variables for the server's environment."""
        self.data_dir, self.args, self.env = str(data_dir), list(args), {**os.environ, **(env or {})}
        self.proc = None
        self.kubeconfig = os.path.join(self.data_dir, "kubeconfig")
        self.jobs_base = jobs_base or (jobs_folder() if "--jobs-dir" not in self.args else None)
        self.jobs_dir = os.path.join(self.jobs_base, "jobs") if self.jobs_base else None
        if self.jobs_dir:
            self.args += ["--jobs-dir", self.jobs_dir]

    def start(self):
        if os.path.exists(self.kubeconfig):
            os.unlink(self.kubeconfig)
        self.log = open(os.path.join(os.path.dirname(self.data_dir), f"serve-{time.monotonic_ns()}.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "ringrun.server", "serve", "--data-dir", self.data_dir,
                                      "--port", "0", "--grace", "2", *self.args], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env)
        wait_until(lambda: os.path.exists(self.kubeconfig) or self.proc.poll() is not None, what="the kubeconfig")
        assert self.proc.poll() is None, self.output()
        return self

    def output(self):
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    @property
    def config(self):
        with open(self.kubeconfig, encoding="utf-8") as handle:
            return yaml.safe_load(handle)

    @property
    def url(self):
        return self.config["clusters"][0]["cluster"]["server"]

    @property
    def token(self):
        return self.config["users"][0]["user"]["token"]

    @property
    def ca(self):
        return os.path.join(self.data_dir, "ca.crt")

    def client(self, token=None):
        """An ApiClient of the official `kubernetes` package, from the kubeconfig (another bearer token if given)."""
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=self.kubeconfig)
        if token is not None:
            api.configuration.api_key = {"authorization": f"Bearer {token}"} if token else {}
            api.configuration.api_key_prefix = {}
            api.configuration.refresh_api_key_hook = None
        return client.ApiClient(api.configuration) if token is not None else api

    def stop(self, sig=signal.SIGTERM, timeout=30, keep_jobs=False):
        """Stop the server with `sig` (its exit code); its jobs folder goes too unless `keep_jobs` (a restart on
        the same data directory follows)."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                return self.proc.returncode if self.proc else None
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(10)
        finally:
            self.log.close()
            if self.jobs_base and not keep_jobs:
                shutil.rmtree(self.jobs_base, ignore_errors=True)


def end(proc, timeout=20):
    """Stop a process the test started (SIGTERM, SIGKILL after `timeout` seconds) and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def alive(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def fixture_text(name):
    with open(os.path.join(ROOT, "tests", "fixtures", name), encoding="utf-8") as handle:
        return handle.read()

"""Pods as containers of ringrun's job images (`make images`), for tests of a job across hosts as a cluster runs it.

Each pod is a podman container of its image with the ENTRYPOINT untouched (`ringrun entrypoint --`), the pod's
`args`, its host name, and the DNS names the operators give it (`<pod>.<job>.<namespace>.svc`, by the dnsname plugin
on a network of the test's own), the job spec mounted read-only where a ConfigMap would be, the ssh Secret mounted
read-only at sshAuthMountPath with the modes Kubernetes gives (0644 files), and the container's exit code as the
pod's. The whole test process runs inside `unshare --net --mount` (conftest.py): the network's bridge and every
packet stay in that namespace, which has no route out. `ContainerCluster.destroy` removes every container and the
network, whatever happened.
"""

import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import images  # noqa: E402  (scripts/images.py: the images and the runtime wrapper this machine needs)
from pods import Harness, isolated, live_processes  # noqa: E402

SPEC_DIR = "/etc/ringrun"  # where the job spec is mounted, as a ConfigMap would be
TESTS = "/opt/ringrun-tests"  # tests/cluster, read-only: the programs the ranks run
IMAGE_PYTHON = "/opt/ringrun/venv/bin/python"

_engine = []


def podman_args():
    """`podman` and the global arguments this machine needs (the runc wrapper where rlimits are refused)."""
    if not _engine:
        engine = images.Engine("podman", open(os.devnull, "w"))
        engine.choose_runtime()
        _engine.append(["podman", *engine.global_args])
    return list(_engine[0])


def podman(*args, check=True, timeout=120):
    result = subprocess.run(podman_args() + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def missing_images(names):
    return [n for n in names if subprocess.run(["podman", "image", "exists", n], capture_output=True).returncode]


def _pid_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class ContainerPod:
    def __init__(self, cluster, name):
        self.cluster, self.name = cluster, name
        self.container = f"{cluster.tag}-{name}"
        self.log_path = os.path.join(cluster.workdir, f"{name}.log")
        self.started = False
        self.namespace = None  # of its PID 1, kept to find its processes
        self._address = None

    def state(self):
        """(status, exit code) as podman sees the container."""
        out = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", self.container).stdout.split()
        return out[0], int(out[1])

    def running(self):
        return self.started and self.state()[0] == "running"

    @property
    def address(self):
        """Its address on the job's network (read when it started: a container that exited has none)."""
        return self._address

    def log(self):
        """stdout and stderr as the pod wrote them (podman's k8s-file log: `TIME STREAM P|F TEXT` per line)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                rows = handle.read().splitlines()
        except FileNotFoundError:
            return ""
        text = []
        for row in rows:
            parts = row.split(" ", 3)
            if len(parts) == 4:
                text.append(parts[3] + ("\n" if parts[2] == "F" else ""))
            elif len(parts) == 3:  # an empty line
                text.append("\n" if parts[2] == "F" else "")
        return "".join(text)

    def wait(self, timeout):
        """The container's exit code (128+N when PID 1 was killed by signal N); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            status, code = self.state()
            if status in ("exited", "stopped"):
                return code
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still {status} after {timeout} s")
            time.sleep(0.2)

    def read(self, path):
        """A file in the running pod, as `podman exec POD cat PATH` prints it."""
        return podman("exec", self.container, "cat", path).stdout

    def signal(self, sig):
        podman("kill", "--signal", signal.Signals(sig).name, self.container)

    def kill(self):
        """What a node failure does: SIGKILL to the pod's PID 1, and with it every process in the pod."""
        if self.running():
            podman("kill", "--signal", "KILL", self.container, check=False)
            self.wait(30)

    def processes(self):
        """(pid, comm) of every live process in the pod (its PID namespace), read from this machine's /proc."""
        if self.namespace is None:
            return []
        return live_processes(lambda pid: _pid_ns(pid) == self.namespace)


class ContainerCluster(Harness):
    """The pods of one job on a podman network of their own. A context manager: everything is removed on exit."""

    def __init__(self, workdir, job, namespace, names, tag="rrc"):
        self.workdir, self.job, self.namespace, self.tag = str(workdir), job, namespace, tag
        self.network = f"{tag}-{job}"
        self.pods = {name: ContainerPod(self, name) for name in names}
        self.made_network = False

    def create(self):
        if not isolated():
            raise RuntimeError("container pods run only inside a network namespace with no route out "
                               "(make test-cluster runs it under unshare --net)")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=30)
        for pod in self.pods.values():  # left by a run that was killed
            podman("rm", "--force", "--time", "0", pod.container, check=False)
        podman("network", "rm", "--force", self.network, check=False)
        podman("network", "create", self.network)
        self.made_network = True

    def start(self, name, image, args=(), env=None, mounts=(), user=None, command=None, dns_search=None,
              aliases=()):
        """Run pod `name`: `image` with its ENTRYPOINT (or `command`, which replaces it as a pod's does) and `args`,
        `env` ({name: value}), `mounts` [(host path, path inside, mode "ro"|"rw")], as `user` (default: the
        image's), with a DNS search domain and more DNS names (`aliases`: a Service named like the pod)."""
        pod = self.pods[name]
        service = f"{name}.{self.job}.{self.namespace}.svc"
        argv = ["run", "--detach", "--name", pod.container, "--hostname", name, "--network", self.network,
                "--network-alias", service, "--network-alias", f"{service}.cluster.local",
                "--log-driver", "k8s-file", "--log-opt", f"path={pod.log_path}",
                "--volume", f"{HERE}:{TESTS}:ro"]
        for alias in aliases:
            argv += ["--network-alias", alias]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        for source, target, mode in mounts:
            argv += ["--volume", f"{source}:{target}:{mode}"]
        argv += ["--user", user] if user else []
        argv += ["--dns-search", dns_search] if dns_search else []
        argv += ["--entrypoint", json.dumps(list(command))] if command else []
        podman(*argv, image, *args)
        pod.started = True
        fmt = "{{.State.Pid}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        pid, _, pod._address = podman("inspect", "--format", fmt, pod.container).stdout.strip().partition(" ")
        pod.namespace = _pid_ns(pid) if pid not in ("", "0") else None
        return pod

    def destroy(self):
        for pod in self.pods.values():
            podman("rm", "--force", "--time", "0", pod.container, check=False)
        if self.made_network:
            podman("network", "rm", "--force", self.network, check=False)
            self.made_network = False

    def leftovers(self):
        """Containers of this cluster podman still has, and processes still alive in any pod."""
        names = podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
        ours = [n for n in names if n.startswith(f"{self.tag}-")]
        procs = {name: pod.processes() for name, pod in self.pods.items() if pod.processes()}
        return {"containers": ours, "processes": procs} if ours or procs else {}

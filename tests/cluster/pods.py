"""Pods as Linux namespaces, for tests of `ringrun entrypoint` across hosts without Kubernetes.

Each pod gets a network namespace (named `rr-<n>`, visible only in the test's own mount namespace) with one veth
interface on a private /24 behind a bridge, its own UTS namespace (host name = pod name), its own PID namespace
(`ringrun entrypoint` is PID 1: killing it kills the pod) and its own mount namespace, in which the job's DNS names are
mapped by a bind-mounted /etc/hosts. The whole test process runs inside `unshare --net --mount` (see conftest.py), so
the bridge, the veths and every packet stay in namespaces the test made, and the named namespaces disappear with it
even if it is killed. `Cluster.destroy` kills every pod and removes every namespace, link and process it made.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUBNET = "10.77.0"
BRIDGE = "rrbr0"


def net_inode(pid="self"):
    """The inode of a process's network namespace, or None when it is gone."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return int(link.split("[", 1)[1].rstrip("]"))


def isolated():
    """Whether this process runs in a network namespace other than the machine's, with no route out of it."""
    if net_inode() == net_inode(1):
        return False
    routes = subprocess.run(["ip", "-o", "route", "show"], capture_output=True, text=True, check=True).stdout
    return not any(line.split()[0] == "default" for line in routes.splitlines() if line.strip())


def live_processes(belongs):
    """(pid, comm) of every process of this machine that is not a zombie and for whose PID (a string) `belongs`
    is true, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and belongs(entry):
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[0] != "Z":
                found.append((int(entry), stat.split("(", 1)[1].rsplit(")", 1)[0]))
    return found


_private_netns_dir = []


def private_netns_dir():
    """Mount a tmpfs on /run/netns in this process's own mount namespace (once): the files `ip netns add` creates
    then live only here and vanish with the test run, even one killed before it could clean up."""
    if not _private_netns_dir:
        if net_inode() == net_inode(1):
            raise RuntimeError("refusing to mount on /run/netns outside the test's own namespaces")
        os.makedirs("/run/netns", exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "ringrun-netns", "/run/netns"],
                       check=True, capture_output=True, timeout=30)
        _private_netns_dir.append(True)


def _die_with_parent():
    """In the pod wrapper before exec: SIGKILL when the test process dies (kept across exec), so a killed test run
    leaves no pod behind (unshare --kill-child then takes the pod's PID 1 with it)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _ip(*args, netns=None):
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


class Pod:
    def __init__(self, name, netns, address, log_path):
        self.name, self.netns, self.address, self.log_path = name, netns, address, log_path
        self.proc = None
        self.inode = None  # of its network namespace, kept to find its processes after the namespace is removed

    @property
    def init_pid(self):
        """The host PID of the pod's PID 1 (unshare's only child), or None."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as handle:
                children = handle.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def wait(self, timeout):
        """The pod's exit code (128+N when PID 1 was killed by signal N); raises TimeoutExpired."""
        code = self.proc.wait(timeout)
        return 128 - code if code < 0 else code

    def signal(self, sig):
        pid = self.init_pid
        if pid:
            os.kill(pid, sig)

    def kill(self):
        """What a node failure does: the pod's PID 1 and with it every process in the pod die at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # unshare --kill-child: its child (PID 1 of the pod) gets SIGKILL
            self.proc.wait(30)

    def processes(self):
        """(pid, comm) of every live process in this pod's network namespace, less the harness's own wrapper."""
        wrapper = str(self.proc.pid) if self.proc else None
        if self.inode is None:
            return []
        return live_processes(lambda pid: pid != wrapper and net_inode(pid) == self.inode)


class Harness:
    """A set of pods as a context manager: `create` on entry (undone by `destroy` if it fails), `destroy` on exit."""

    def __enter__(self):
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()


class Cluster(Harness):
    """A set of pods on one private subnet. Use as a context manager: everything is removed on exit."""

    def __init__(self, workdir, names, aliases=None, tag="rr"):
        """names: pod names (their host names); aliases: {pod name: [other DNS names]} mapped to the pod's address."""
        self.workdir, self.tag = workdir, tag
        self.pods = {name: Pod(name, f"{tag}-{i}", f"{SUBNET}.{10 + i}", os.path.join(workdir, f"{name}.log"))
                     for i, name in enumerate(names)}
        self.aliases = aliases or {}
        self.hosts_file = os.path.join(workdir, "hosts")
        self.resolv_file = os.path.join(workdir, "resolv.conf")
        self.root_home = os.path.join(workdir, "root-home")
        self.made = []

    def create(self):
        if not isolated():
            raise RuntimeError("the pod harness runs only inside a network namespace with no route out "
                               "(make test-cluster runs it under unshare --net)")
        private_netns_dir()
        _ip("link", "set", "lo", "up")
        _ip("link", "add", BRIDGE, "type", "bridge")
        self.made.append(("link", BRIDGE))
        _ip("link", "set", BRIDGE, "up")
        for i, pod in enumerate(self.pods.values()):
            _ip("netns", "add", pod.netns)
            self.made.append(("netns", pod.netns))
            pod.inode = os.stat(f"/run/netns/{pod.netns}").st_ino
            veth = f"{self.tag}v{i}"
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.netns)
            self.made.append(("link", veth))
            _ip("link", "set", veth, "master", BRIDGE, "up")
            _ip("link", "set", "lo", "up", netns=pod.netns)
            _ip("addr", "add", f"{pod.address}/24", "dev", "eth0", netns=pod.netns)
            _ip("link", "set", "eth0", "up", netns=pod.netns)
        lines = ["127.0.0.1 localhost"]
        for name, pod in self.pods.items():
            lines.append(" ".join([pod.address] + list(self.aliases.get(name, ())) + [name]))
        with open(self.hosts_file, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.makedirs(self.root_home, mode=0o700, exist_ok=True)
        if os.path.realpath(self.workdir).startswith("/tmp/"):
            raise RuntimeError("the pods' work directory must not be under /tmp (each pod gets its own /tmp)")
        for pod in self.pods.values():
            pod.tmp = os.path.join(self.workdir, f"{pod.name}.tmp")
            os.makedirs(pod.tmp, exist_ok=True)
            os.chmod(pod.tmp, 0o1777)
        with open(self.resolv_file, "w") as handle:  # no name server: names come from /etc/hosts or not at all
            handle.write("options attempts:1 timeout:1\n")

    def start(self, name, argv, env, user=None, passwd=None):
        """Start argv as PID 1 of pod `name` with exactly `env`; user "UID:GID" drops root, passwd replaces
        /etc/passwd inside the pod (to give that user a name, a home and a shell)."""
        pod = self.pods[name]
        binds = [("--bind", self.hosts_file, "/etc/hosts"), ("--bind", self.resolv_file, "/etc/resolv.conf"),
                 # a clean /root as in an image: this machine's ~/.bashrc (sourced by bash for every ssh command)
                 # must not run in the pods (its `pyenv rehash` takes a lock and can stall mpirun's daemons)
                 ("--bind", self.root_home, "/root"),
                 # its own /tmp, as a container has: MPI session directories are named by host and PID, and PIDs
                 # repeat in every pod's PID namespace; a checkout under /tmp is bound into it first (podinit binds
                 # recursively), so that it stays where it is
                 *self._repo_in_tmp(pod), ("--bind", pod.tmp, "/tmp")]
        if passwd:
            binds.append(("--bind", passwd, "/etc/passwd"))
        init = [sys.executable, os.path.join(HERE, "podinit.py"), "--hostname", name]
        for bind in binds:
            init += list(bind)
        if user:
            init += ["--user", user]
        wrapper = ["nsenter", f"--net=/run/netns/{pod.netns}", "--", "unshare", "--uts", "--pid", "--mount",
                   "--fork", "--kill-child", "--mount-proc", "--propagation", "private", "--"]
        log = open(pod.log_path, "ab")
        try:
            pod.proc = subprocess.Popen(wrapper + init + ["--"] + list(argv), env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        finally:
            log.close()
        return pod

    @staticmethod
    def _repo_in_tmp(pod):
        if not REPO.startswith("/tmp/"):
            return []
        inside = os.path.join(pod.tmp, os.path.relpath(REPO, "/tmp"))
        os.makedirs(inside, exist_ok=True)
        return [("--bind", REPO, inside)]

    def wait_listening(self, name, port, timeout=30):
        """Until something in pod `name` listens on TCP `port` (read from its /proc/net/tcp, no packet sent)."""
        pod = self.pods[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = pod.init_pid
            if pid:
                try:
                    with open(f"/proc/{pid}/net/tcp") as handle:
                        rows = handle.read().splitlines()[1:]
                except OSError:
                    rows = []
                if any(int(r.split()[1].split(":")[1], 16) == port and r.split()[3] == "0A" for r in rows):
                    return True
            if pod.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def destroy(self):
        for pod in self.pods.values():
            try:
                pod.kill()
            except Exception:
                pass
        for kind, name in reversed(self.made):  # deleting a veth removes its peer in the pod's namespace at once
            subprocess.run(["ip", kind, "del", name], capture_output=True, timeout=30)
        self.made.clear()

    def leftovers(self):
        """Processes still alive in any pod: {pod: [(pid, comm)]} (should be empty after destroy)."""
        found = {name: pod.processes() for name, pod in self.pods.items()}
        return {name: procs for name, procs in found.items() if procs}


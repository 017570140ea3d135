"""The container engine layer: podman or docker through its command line, for jobs whose replicas run as containers.

One `Engine` holds the program and the global arguments this machine needs; its methods are the few engine
operations ringrun uses (image present / pull, networks, removal by name or label), each one argv, with a timeout.
`run_argv` builds the `run` command of one pod (launcher/containers.py starts it attached, under the supervisor, as
any replica's process: its output is the pod's log and its exit code the container's).

This sandbox's podman cannot start a container as root (setting rlimits is refused without CAP_SYS_RESOURCE): where
one probe fails that way, podman runs containers through launcher/ocirlimits.py with `--runtime` (written into a
private folder as an executable script); on an ordinary machine nothing is added.
"""

import os
import resource
import shutil
import subprocess
import sys

from ringrun.runtime.errors import SetupError

from . import files, ocirlimits

ENGINES = ("podman", "docker")
TIMEOUT = 120.0  # seconds any engine command but a pull may take
PULL_TIMEOUT = 900.0
LABEL = "io.ringrun"  # every container and network ringrun makes is labelled io.ringrun.owner=<owner>
DNS_PLUGIN_DIRS = ("/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin")
_WRAPPED = {}  # engine program -> whether its containers need the runc wrapper (probed once per process)
# capabilities of the engines' default set a job's container never gets: making device nodes, file capabilities,
# raw sockets
DROPPED = ("MKNOD", "SETFCAP", "NET_RAW")
# what podman as root sets every container's RLIMIT_NOFILE and RLIMIT_NPROC to
PODMAN_RLIMITS = ((resource.RLIMIT_NOFILE, 1048576), (resource.RLIMIT_NPROC, 4194304))


class EngineError(SetupError):
    """An engine command failed (exit 5, as any set-up failure)."""


def find(choice=None, path=None):
    """The engine program: `choice` (podman or docker) or the first of them on PATH. Raises SetupError."""
    for name in (choice,) if choice else ENGINES:
        program = shutil.which(name, path=path)
        if program:
            return name, program
    wanted = choice or " or ".join(ENGINES)
    raise SetupError(f"--containers: {wanted} is not installed (on Debian: apt-get install podman runc, or "
                     "`make system-packages`)")


class Engine:
    """podman or docker. `runner`: subprocess.run's signature (a fake in tests); `state_dir`: a private folder
    for the runc wrapper where this machine needs it."""

    def __init__(self, name, program, runner=subprocess.run, state_dir=None):
        self.name, self.program, self.runner = name, program, runner
        self.state_dir = state_dir
        self.global_args = []
        self._probed = False

    @classmethod
    def open(cls, choice=None, state_dir=None):
        name, program = find(choice)
        return cls(name, program, state_dir=state_dir)

    @property
    def argv(self):
        """The engine's program and global arguments: what every command starts with."""
        return [self.program, *self.global_args]

    def __call__(self, *args, check=True, timeout=TIMEOUT):
        try:
            result = self.runner([*self.argv, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"{self.name} {args[0]}: no answer within {timeout:g} s") from None
        except OSError as exc:
            raise EngineError(f"{self.name}: cannot run {self.program}: {exc.strerror or exc}") from None
        if check and result.returncode != 0:
            raise EngineError(f"{self.name} {' '.join(args[:2])}: {_last_line(result.stderr) or 'exit '}"
                              f"{'' if result.stderr.strip() else result.returncode}")
        return result

    # -- images ------------------------------------------------------------------------------------------------
    def has_image(self, image):
        verb = ("image", "exists") if self.name == "podman" else ("image", "inspect", "--format", "{{.Id}}")
        return self(*verb, image, check=False).returncode == 0

    def pull(self, image):
        """Pull `image`; returns None, or the engine's last line of error."""
        result = self("pull", "--quiet", image, check=False, timeout=PULL_TIMEOUT)
        return None if result.returncode == 0 else (_last_line(result.stderr) or f"exit {result.returncode}")

    def has_dir(self, image, path):
        """Whether `image` holds the folder `path` (absolute, no '..'). docker makes a missing workingDir, as
        Kubernetes does; podman 4.3 refuses to start the container, so it is looked for in the image (mounted
        read-only, as root), never through a link: a link on the way counts as there (the engine decides)."""
        if self.name != "podman":
            return True
        mounted = self("image", "mount", image, check=False)
        if mounted.returncode != 0:
            return True  # cannot tell (rootless): the engine says so when it starts the pod
        try:
            current = mounted.stdout.strip()
            for part in [p for p in path.split("/") if p]:
                current = os.path.join(current, part)
                if os.path.islink(current):
                    return True
                if not os.path.isdir(current):
                    return False
            return True
        finally:
            self("image", "unmount", image, check=False)

    def probe(self):
        """Whether containers need the runc wrapper (once per engine program and process): podman as root sets
        every container's rlimits above the hard limits, which needs CAP_SYS_RESOURCE; a child process that tries
        the same tells, without running anyone's image."""
        if self._probed or self.name != "podman":
            return
        self._probed = True
        if self.program not in _WRAPPED:
            _WRAPPED[self.program] = os.geteuid() == 0 and not _can_raise_rlimits()
        if _WRAPPED[self.program]:
            self.global_args = ["--runtime", self._wrapper()]

    def _wrapper(self):
        folder = self.state_dir or os.path.join(os.path.expanduser("~"), ".cache", "ringrun", "engine")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        path = os.path.join(folder, "runc-without-rlimits")
        text = ocirlimits.wrapper_script(sys.executable)
        try:
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        except OSError:
            current = None
        if current != text:
            files.write_atomic(path, text.encode("utf-8"), mode=0o700)
        return path

    # -- networks and containers -------------------------------------------------------------------------------
    def create_network(self, name, labels):
        self("network", "create", *_labels(labels), name)

    def remove_network(self, name):
        self("network", "rm", *(("--force",) if self.name == "podman" else ()), name, check=False)

    def remove(self, names):
        """Remove the containers `names` at once (stopped without waiting), those already gone too."""
        if names:
            self("rm", "--force", *(("--time", "0") if self.name == "podman" else ()), *names, check=False)

    def owned(self, owner):
        """(container names, network names) labelled as `owner`'s."""
        label = f"label={LABEL}.owner={owner}"
        containers = self("ps", "--all", "--filter", label, "--format", "{{.Names}}", check=False).stdout.split()
        networks = self("network", "ls", "--filter", label, "--format", "{{.Name}}", check=False).stdout.split()
        return containers, networks

    def sweep(self, owner):
        """Remove every container and network of `owner` (a server's, after it was killed). Returns their names."""
        containers, networks = self.owned(owner)
        self.remove(containers)
        for network in networks:
            self.remove_network(network)
        return containers + networks

    def resolves_names(self):
        """Whether containers on a network of this engine resolve each other by name (podman needs the dnsname
        CNI plugin, docker has its own DNS)."""
        if self.name != "podman":
            return True
        return any(os.path.exists(os.path.join(folder, "dnsname")) for folder in DNS_PLUGIN_DIRS) or \
            self("info", "--format", "{{.Host.NetworkBackend}}", check=False).stdout.strip() == "netavark"

    def run_argv(self, pod, container, network, env_file, mounts, labels, extra_env=()):
        """`run` of one pod, attached: `container` its name, on `network` with every DNS name of the pod, its env
        from `env_file` (and `extra_env`: values an env file cannot hold), `mounts` [(host path or None for a
        tmpfs, target, read_only)], its limits, user, working dir, command (replacing the ENTRYPOINT) and args."""
        argv = [*self.argv, "run", "--rm", "--name", container, "--hostname", pod.hostname, "--network", network,
                "--pull", "never", "--env-file", env_file, "--security-opt", "no-new-privileges",
                *(a for cap in DROPPED for a in ("--cap-drop", cap)), *_labels(labels)]
        if self.name == "podman":
            argv += ["--log-driver", "none"]
        for alias in pod.aliases:
            argv += ["--network-alias", alias]
        for domain in pod.dns_search:
            argv += ["--dns-search", domain]
        for key, value in extra_env:
            argv += ["--env", f"{key}={value}"]
        for source, target, read_only, host in mounts:
            if source is None:
                argv += ["--tmpfs", target]
            else:  # a host folder never brings in setuid programs or device nodes (podman can say so)
                options = ("ro" if read_only else "rw") + (",nosuid,nodev" if host and self.name == "podman" else "")
                argv += ["--volume", f"{source}:{target}:{options}"]
        if pod.cpus is not None:
            argv += ["--cpus", f"{pod.cpus:g}"]
        if pod.memory is not None:
            argv += ["--memory", str(pod.memory)]
        if pod.user is not None:
            argv += ["--user", pod.user]
        if pod.working_dir:
            argv += ["--workdir", pod.working_dir]
        if pod.command:  # a pod's command replaces the ENTRYPOINT and drops the image's CMD, as --entrypoint does
            return argv + ["--entrypoint", pod.command[0], pod.image, *pod.command[1:], *pod.args]
        return argv + [pod.image, *pod.args]


def _can_raise_rlimits():
    """Whether a process of this user may raise its RLIMIT_NOFILE and RLIMIT_NPROC to podman's values (tried in a
    child: this process's limits stay as they are)."""
    script = "; ".join(["import resource, sys"] + [f"resource.setrlimit({int(r)}, ({v}, {v}))"
                                                    for r, v in PODMAN_RLIMITS])
    try:
        return subprocess.run([sys.executable, "-I", "-c", script], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _labels(labels):
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""

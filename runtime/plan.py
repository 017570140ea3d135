"""JobSpec + Identity -> Plan: what one replica must do. Pure: returns data, the launcher executes it.

A Plan holds the environment to inject, the files to write, the argv to run and the `host:port` endpoints to wait for
(DNS resolution and a TCP connect) before running it; for MPI roles also the ssh keys to set up, and for a launcher
the workers to tell when the job is over. Each framework names its planners (runtime/kinds/frameworks.py).
"""

import dataclasses
import re
import shlex
from dataclasses import dataclass, field

from . import commands, ssh, topology
from . import env as envs
from .model import MPIImplementation

SLEEP_FOREVER = ("sleep", "inf")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Context:
    """What the planner needs from outside the spec.

    run_dir: where ringrun's own files go (hostfile, ssh and sshd configs, host key); ssh_port: the workers' sshd port;
    environ: variables already set in the process (an operator's or the pod's) - they win over ringrun's values;
    command: a command given on ringrun's command line, replacing the spec's;
    hostfile: the text of a hostfile the operator mounted (mpi-operator's /etc/mpi/hostfile), which then wins over
    the one ringrun derives from the spec: it is written as is and its hosts (less the launcher's own) are waited for.
    """

    run_dir: str
    ssh_port: int = 22
    environ: dict = field(default_factory=dict)
    command: tuple = ()
    hostfile: str | None = None

    def path(self, name):
        return f"{self.run_dir.rstrip('/')}/{name}"


@dataclass(frozen=True)
class SSHSetup:
    """ssh material an MPI replica prepares before it starts.

    mount: sshAuthMountPath (keys as the operator mounted them); key_dir: the private 0700 copy every file of the
    mount is copied into with mode 0600 (a Secret mount is 0644, which ssh refuses for a private key and StrictModes
    for authorized_keys); host_key: the sshd host key generated when absent (None on a launcher); sshd: sshdPath.
    """

    mount: str
    key_dir: str
    host_key: str | None = None
    sshd: str | None = None

    @property
    def is_server(self):
        """A worker's sshd setup (host key and sshd), else a launcher's client keys."""
        return self.host_key is not None

    def to_dict(self):
        return {"mount": self.mount, "key_dir": self.key_dir, "host_key": self.host_key, "sshd": self.sshd}


@dataclass(frozen=True)
class Endpoint:
    """A `host:port` a replica waits for (resolves AND accepts a TCP connection) before its command starts."""

    host: str
    port: int

    def __str__(self):
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text):
        """`host:port` (IPv6 hosts in brackets) -> Endpoint. Raises ValueError."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"endpoint must be host:port, got {text!r}")
        return cls(host.strip("[]"), int(port))


# Modes a plan can be in: the command runs (normal), a debug command runs in its place (TensorStack runMode.debug),
# or nothing starts until the job is changed (TensorStack runMode.pause, Kubeflow runPolicy.suspend).
HELD_MODES = {"pause": "runMode.pause is enabled", "suspend": "runPolicy.suspend is true"}


@dataclass(frozen=True)
class Plan:
    """What one replica does, with every path and host an executor needs named (none is recovered from strings).

    run_dir: ringrun's private folder for this replica; files: (path, text) written there before anything starts;
    env / unset: the command's variables (see `process_env`); root_env: added when it runs as root (Open MPI
    refuses root without them); argv: the command (empty when held or when the spec gives none); working_dir: the
    container's workingDir; wait_for: endpoints up before the command; ssh: keys to set up (None: no ssh).
    MPI launcher only: hostfile and ssh_config (paths among `files`), workers (hosts the command runs ranks on,
    watched while it runs), notify (hosts told the job ended: cleanPodPolicy Running/All), wait_for_login (every
    worker must accept an ssh login first: launcherCreationPolicy WaitForWorkersReady).
    discover_hosts: Horovod elastic only, the host discovery script (among `files`) the launcher keeps current,
    listing `<worker>:<slots>` for each of the `discovery` endpoints (the workers' sshd) that answers.
    mode: normal | debug | pause | suspend (pause and suspend: nothing starts, see `held`).
    notes: what ringrun changed in the command and why, said when it starts.
    duty: what the replica is to the job, which says what a pod adds around the command: "command" (it runs its
    command, which it must have), "sshd" (an MPI worker: its sshd serves the launcher's ranks) or "launcher" (an
    MPI launcher: its command starts the ranks on the workers).
    """

    kind: str
    role: str
    index: int
    run_dir: str
    env: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...] = ()
    argv: tuple[str, ...] = ()
    wait_for: tuple[Endpoint, ...] = ()
    ssh: SSHSetup | None = None
    hostfile: str | None = None
    ssh_config: str | None = None
    workers: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    wait_for_login: bool = False
    mode: str = "normal"
    unset: tuple[str, ...] = ()
    root_env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    discover_hosts: str | None = None
    discovery: tuple[Endpoint, ...] = ()
    slots: int = 1
    notes: tuple[str, ...] = ()
    duty: str = "command"

    @property
    def name(self):
        """`role-index`, the replica's name in logs and log files."""
        return f"{self.role}-{self.index}"

    @property
    def held(self):
        """Why nothing may start (runMode.pause, runPolicy.suspend), or None."""
        return HELD_MODES.get(self.mode)

    def to_dict(self):
        return {"kind": self.kind, "role": self.role, "index": self.index, "mode": self.mode,
                "run_dir": self.run_dir, "env": dict(self.env), "unset": list(self.unset),
                "root_env": dict(self.root_env), "files": dict(self.files), "argv": list(self.argv),
                "working_dir": self.working_dir, "wait_for": [str(e) for e in self.wait_for],
                "ssh": self.ssh.to_dict() if self.ssh else None, "hostfile": self.hostfile,
                "ssh_config": self.ssh_config, "workers": list(self.workers), "notify": list(self.notify),
                "wait_for_login": self.wait_for_login, "discover_hosts": self.discover_hosts,
                "discovery": [str(e) for e in self.discovery], "slots": self.slots,
                "notes": list(self.notes), "duty": self.duty}

    def process_env(self, inherited, is_root=False):
        """The command's environment: `inherited` less `unset`, then `env` on top, then `root_env` where not set
        when `is_root`. A new dict."""
        env = {k: v for k, v in inherited.items() if k not in self.unset}
        env.update(self.env)
        if is_root:
            for key, value in self.root_env:
                env.setdefault(key, value)
        return env

    def env_lines(self):
        """`export K=V` lines, values shell-quoted; a name no shell can hold (Kubernetes allows `-n`, `a.b`) is left
        out with a comment saying so."""
        return "".join(f"export {k}={shlex.quote(v)}\n" if _SHELL_NAME.fullmatch(k)
                       else f"# not a shell variable name, left out: {k!r}\n" for k, v in self.env)


@dataclass(frozen=True)
class RolePlan:
    """What a planner decides for its role; `build_plan` adds identity, run directory, mode, working directory and
    the env precedence. Fields as in `Plan`."""

    env: dict
    argv: tuple = ()
    files: tuple = ()
    wait_for: tuple = ()
    ssh: SSHSetup | None = None
    hostfile: str | None = None
    ssh_config: str | None = None
    workers: tuple = ()
    notify: tuple = ()
    wait_for_login: bool = False
    unset: tuple = ()
    root_env: tuple = ()
    discover_hosts: str | None = None
    discovery: tuple = ()
    slots: int = 1
    notes: tuple = ()
    duty: str = "command"


def _command(replica, container_name, context):
    if context.command:
        return tuple(context.command)
    main = replica.container(container_name)
    return main.command + main.args


def _mode(job):
    return "suspend" if job.run_policy.suspend else job.run_mode.mode


def notifies_workers(job):
    """Whether the launcher tells the workers to exit when it is done: cleanPodPolicy Running or All (TensorStack
    cleanUpWorkers all/unfinished), where the operator would delete the still-running worker pods."""
    return job.run_policy.clean_pod_policy in ("Running", "All")


def _session_env(context):
    """Variables every ssh session on a worker gets: the container's PATH and LD_LIBRARY_PATH (sshd would reset
    PATH, and the remote mpirun daemons, python and Intel MPI's libraries must be found) and the run directory."""
    pairs = [(k, context.environ[k]) for k in ("PATH", "LD_LIBRARY_PATH") if context.environ.get(k)]
    return tuple(pairs) + (("RINGRUN_RUN_DIR", context.run_dir),)


# Open MPI refuses to run as root without both (`--allow-run-as-root`); added only when the launcher is root.
OPENMPI_ROOT_ENV = (("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"))


def _worker_hosts(job, context):
    """The hosts the launcher's ranks run on, less the launcher itself: the spec's workers, or those of the hostfile
    the operator mounted."""
    if context.hostfile is None:
        return tuple(topology.mpi_host(job, "worker", i) for i in range(job.count("worker")))
    launcher = topology.mpi_host(job, "launcher")
    own = {launcher, launcher.split(".", 1)[0], "localhost", "127.0.0.1"}
    return tuple(h for h in topology.hostfile_hosts(context.hostfile) if h not in own)


def operator_agent(job, context):
    """The rsh agent an older operator gave the launcher (`OMPI_MCA_plm_rsh_agent=/etc/mpi/kubexec.sh`, ...), when
    it also mounted the hostfile; else None. Then the operator's agent starts the ranks by pod name (kubectl exec),
    the hostfile names bare pods with no DNS record, and ringrun neither waits for nor ssh-es to them."""
    if context.hostfile is None or not job.mpi.operator_agent:
        return None  # mpi-operator v2beta1 sets no rsh agent: one there is the image's or the user's, with ssh
    return next((context.environ[k] for k in envs.RSH_AGENT_VARIABLES if context.environ.get(k)), None)


def plan_mpi_launcher(job, role, index, context):
    if operator_agent(job, context) is not None:
        return _plan_agent_launcher(job, context)
    hostfile, ssh_config = context.path("hostfile"), context.path("ssh_config")
    files = ((hostfile, topology.hostfile(job) if context.hostfile is None else context.hostfile),
             (ssh_config, ssh.client_config(context.ssh_port, context.path("ssh"))))
    workers = _worker_hosts(job, context)
    if job.run_mode.mode == "debug":
        override = job.run_mode.override("launcher")
        argv = override.command if override and override.command else SLEEP_FOREVER
    elif not job.mpi.launcher_mpirun:
        # A Kubeflow launcher's own command calls mpirun; the hostfile and ssh options reach it through the env.
        argv = _command(job.replica("launcher"), job.main_container, context)
    else:
        build = commands.MPIRUN[job.mpi.implementation]
        argv = tuple(build(topology.world_size(job), hostfile, ssh_config, context.command or job.mpi.worker_cmd,
                           mca=job.mpi.mca, extra_args=job.mpi.extra_mpi_args, mpi_home=job.mpi.mpi_home))
    root_env = OPENMPI_ROOT_ENV if job.mpi.implementation is MPIImplementation.OPENMPI else ()
    env = envs.mpi_launcher_env(job, hostfile, ssh_config)
    wait_for = tuple(Endpoint(host, context.ssh_port) for host in workers)
    discover, discovery = None, ()
    if not job.mpi.launcher_mpirun and job.run_mode.mode != "debug" and commands.is_horovod_elastic(argv):
        # Elastic Horovod finds its hosts itself, every second, and waits for --min-np of them: the launcher waits
        # for none, and lists each worker in the script once its sshd answers (the launcher's discovery monitor).
        discover, discovery, wait_for = context.path("discover_hosts.sh"), wait_for, ()
        files += ((discover, topology.discover_hosts(())),)
        env["RINGRUN_DISCOVER_HOSTS"] = discover
    return RolePlan(
        env=env, argv=argv, files=files, wait_for=wait_for,
        ssh=SSHSetup(job.mpi.ssh_auth_mount_path, context.path("ssh")), hostfile=hostfile, ssh_config=ssh_config,
        workers=workers, notify=workers if notifies_workers(job) and argv else (),
        wait_for_login=job.mpi.launcher_creation_policy == "WaitForWorkersReady" and discover is None,
        root_env=root_env, discover_hosts=discover, discovery=discovery, slots=job.mpi.slots_per_worker,
        duty="launcher")


def _plan_agent_launcher(job, context):
    hostfile = context.path("hostfile")
    root_env = OPENMPI_ROOT_ENV if job.mpi.implementation is MPIImplementation.OPENMPI else ()
    return RolePlan(env=envs.mpi_agent_launcher_env(job, hostfile),
                    argv=_command(job.replica("launcher"), job.main_container, context),
                    files=((hostfile, context.hostfile),), hostfile=hostfile, root_env=root_env, duty="launcher")


def plan_mpi_worker(job, role, index, context):
    sshd_config, host_key = context.path("sshd_config"), context.path("ssh_host_ed25519_key")
    files = ((sshd_config, ssh.server_config(
        context.ssh_port, host_key, context.path("ssh/authorized_keys"), context.path("sshd.pid"),
        set_env=_session_env(context))),)
    argv = (job.mpi.sshd_path, "-D", "-e", "-f", sshd_config)
    override = job.run_mode.override("worker")
    if override and override.command:  # a debug command replaces sshd: no keys to set up for it
        return RolePlan(env=envs.mpi_worker_env(job), argv=override.command, files=files, duty="sshd")
    setup = SSHSetup(job.mpi.ssh_auth_mount_path, context.path("ssh"), host_key, job.mpi.sshd_path)
    # a pod's args (mpi-operator would run `/usr/sbin/sshd -De` for a worker without any) are not run: the worker's
    # sshd is ringrun's, with the keys and configuration the launcher's ssh expects
    notes = (f"an MPI worker runs ringrun's sshd; the pod's command ({shlex.join(context.command)}) is not run",
             ) if context.command else ()
    return RolePlan(env=envs.mpi_worker_env(job), argv=argv, files=files, ssh=setup, duty="sshd", notes=notes)


TORCHRUN = ("torchrun", "--no-python")


def is_torchrun(argv):
    """`torchrun ...`, `/path/torchrun ...` or `python -m torch.distributed.run ...`."""
    return bool(argv) and (argv[0].rsplit("/", 1)[-1] == "torchrun"
                           or tuple(argv[1:3]) == ("-m", "torch.distributed.run"))


def torchrun_target(argv):
    """The command a `torchrun --no-python CMD` made by `under_torchrun` starts per rank, else ()."""
    argv = tuple(argv)
    return argv[len(TORCHRUN):] if argv[:len(TORCHRUN)] == TORCHRUN else ()


def under_torchrun(job, argv):
    """`argv` handed to torchrun when a pod runs several processes (nprocPerNode > 1, `auto`, `cpu`, `gpu`) or the
    job rendezvous elastically; torchrun takes nnodes, nproc-per-node, node rank, master or rendezvous endpoint,
    max restarts from the PET_* variables (its names for every flag), as under training-operator. A command that
    already is torchrun is left as it is; `--no-python` runs the command itself (`python3 train.py`) per rank."""
    single = job.pytorch.nproc_per_node in (None, "1") and job.pytorch.elastic is None
    if single or not argv or is_torchrun(argv):
        return argv
    return TORCHRUN + tuple(argv)


def plan_pytorch(job, role, index, context):
    argv = under_torchrun(job, _command(job.replica(role), job.main_container, context))
    addr, port = envs.pytorch_master(job)
    # Everyone but the process that serves the rendezvous waits for it.
    serves = (role == "master") if job.replica("master") is not None else (
        job.pytorch.elastic.rdzv_host is None and role == "worker" and index == 0)
    return RolePlan(env=envs.pytorch_env(job, role, index), argv=argv,
                    wait_for=() if serves else (Endpoint(addr, port),))


def plan_trainer(job, role, index, context):
    """A TrainJob's replica: its command, with what Trainer's plugins and the Job controller put in its env
    (runtime/kinds/trainjob.py). The torch nodes meet at node 0 (torchrun's static rendezvous waits by itself)."""
    from .kinds import trainjob

    argv = _command(job.replica(role), job.main_container, context)
    return RolePlan(env=trainjob.replica_env(job, role, index), argv=argv)


def plan_mxnet(job, role, index, context):
    argv = _command(job.replica(role), job.main_container, context)
    env = envs.mxnet_env(job, role, index)
    # Scheduler and servers serve inside `import mxnet` (ps-lite reconnects by itself); workers wait for the
    # scheduler so that one that never comes up fails at the deadline, naming it.
    wait_for = ()
    if "DMLC_PS_ROOT_URI" in env and role == "worker":
        wait_for = (Endpoint(env["DMLC_PS_ROOT_URI"], int(env["DMLC_PS_ROOT_PORT"])),)
    return RolePlan(env=env, argv=argv, wait_for=wait_for, unset=envs.MXNET_STRAY)


def _operator_wins(key, ours, theirs):
    """The value of `key` when the operator set it too: the operator's, except that ssh options are joined (ours
    first: `-F <ssh_config>` must reach ssh, and the operator's `-o ConnectionAttempts=10` stays)."""
    if key not in envs.SSH_OPTION_VARIABLES or ours in theirs:
        return theirs
    return f"{ours} {theirs}"


def build_plan(job, identity, context):
    """The Plan of replica `identity` of `job`.

    Environment precedence, lowest first: ringrun's values, the container's `env` in the spec, then any of those
    variables already present in `context.environ` (the operator set it: the operator wins; ssh options are joined,
    see `_operator_wins`). A held job (runMode
    pause, runPolicy suspend) plans its files and env but no command and no wait.
    """
    from .kinds import frameworks  # it names this module's planners

    planned = frameworks.of(job).planner(identity.role)(job, identity.role, identity.index, context)
    replica = job.replica(identity.role)
    main = replica.container(job.main_container)
    env = dict(planned.env)
    env.update(main.env)
    for key in planned.env:
        if key in context.environ:
            env[key] = _operator_wins(key, env[key], context.environ[key])
    fields = {f.name: getattr(planned, f.name) for f in dataclasses.fields(RolePlan)}
    fields.update(env=tuple(env.items()), files=tuple(planned.files), argv=tuple(planned.argv),
                  wait_for=tuple(planned.wait_for), discovery=tuple(planned.discovery), notes=tuple(planned.notes))
    mode = _mode(job)
    if mode in HELD_MODES:
        fields.update(argv=(), wait_for=(), notify=(), wait_for_login=False, discovery=(), discover_hosts=None)
    return Plan(job.kind, identity.role, identity.index, context.run_dir, mode=mode, working_dir=main.working_dir,
                **fields)

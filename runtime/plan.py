"""JobSpec + Identity -> Plan: what one replica must do. Pure: returns data, the launcher executes it.

A Plan holds the environment to inject, the files to write, the argv to run and the `host:port` endpoints to wait for
(DNS resolution and a TCP connect) before running it; for MPI roles also the ssh keys to set up, and for a launcher
the workers to tell when the job is over. Planners are registered per (framework, role).
"""

import shlex
from dataclasses import dataclass, field

from . import commands, ssh, topology
from . import env as envs

SLEEP_FOREVER = ("sleep", "inf")


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

    def to_dict(self):
        return {"mount": self.mount, "key_dir": self.key_dir, "host_key": self.host_key, "sshd": self.sshd}


@dataclass(frozen=True)
class Plan:
    kind: str
    role: str
    index: int
    env: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    wait_for: tuple[str, ...]
    ssh: SSHSetup | None = None
    notify: tuple[str, ...] = ()  # hosts told (over ssh) that the job ended, so their pods exit too
    mode: str = "normal"  # TensorStack runMode: normal | debug | pause
    unset: tuple[str, ...] = ()  # inherited variables the command must not see (unless `env` sets them again)

    def to_dict(self):
        return {"kind": self.kind, "role": self.role, "index": self.index, "mode": self.mode, "env": dict(self.env),
                "unset": list(self.unset), "files": dict(self.files), "argv": list(self.argv),
                "wait_for": list(self.wait_for), "ssh": self.ssh.to_dict() if self.ssh else None,
                "notify": list(self.notify)}

    def process_env(self, inherited):
        """The command's environment: `inherited` less `unset`, then `env` on top. A new dict."""
        env = {k: v for k, v in inherited.items() if k not in self.unset}
        env.update(self.env)
        return env

    def env_lines(self):
        """`export K=V` lines, values shell-quoted."""
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.env)


def _command(replica, container_name, context):
    if context.command:
        return tuple(context.command)
    main = replica.container(container_name)
    return main.command + main.args


def _sshd_argv(job, context):
    return (job.mpi.sshd_path, "-D", "-e", "-f", context.path("sshd_config"))


def _override(overrides, role):
    return next((o for o in overrides if o.role == role), None)


def _mode(job):
    t9k = job.tensorstack
    return "pause" if t9k and t9k.pause else "debug" if t9k and t9k.debug else "normal"


def notifies_workers(job):
    """Whether the launcher tells the workers to exit when it is done: cleanPodPolicy Running or All (TensorStack
    cleanUpWorkers all/unfinished), where the operator would delete the still-running worker pods."""
    return job.run_policy.clean_pod_policy in ("Running", "All")


def _session_env(context):
    """Variables every ssh session on a worker gets: the container's PATH and LD_LIBRARY_PATH (sshd would reset
    PATH, and the remote mpirun daemons, python and Intel MPI's libraries must be found) and the run directory."""
    pairs = [(k, context.environ[k]) for k in ("PATH", "LD_LIBRARY_PATH") if context.environ.get(k)]
    return tuple(pairs) + (("RINGRUN_RUN_DIR", context.run_dir),)


def plan_mpi_launcher(job, role, index, context):
    hostfile, ssh_config = context.path("hostfile"), context.path("ssh_config")
    files = {
        hostfile: topology.hostfile(job) if context.hostfile is None else context.hostfile,
        ssh_config: ssh.client_config(context.ssh_port, context.path("ssh")),
    }
    if context.hostfile is None:
        workers = tuple(topology.mpi_host(job, "worker", i) for i in range(job.count("worker")))
    else:
        launcher = topology.mpi_host(job, "launcher")
        own = {launcher, launcher.split(".", 1)[0], "localhost", "127.0.0.1"}
        workers = tuple(h for h in topology.hostfile_hosts(context.hostfile) if h not in own)
    wait_for = tuple(f"{host}:{context.ssh_port}" for host in workers)
    t9k = job.tensorstack
    if t9k is None:
        # A Kubeflow launcher's own command calls mpirun; the hostfile and ssh options reach it through the env.
        argv = _command(job.replica("launcher"), job.mpi.main_container, context)
    elif t9k.pause:
        argv, wait_for = (), ()
    elif t9k.debug:
        override = _override(t9k.debug_overrides, "launcher")
        argv = override.command if override and override.command else SLEEP_FOREVER
    else:
        build = commands.MPIRUN[job.mpi.implementation]
        argv = tuple(build(topology.world_size(job), hostfile, ssh_config, context.command or job.mpi.worker_cmd,
                           mca=job.mpi.mca, extra_args=job.mpi.extra_mpi_args, mpi_home=job.mpi.mpi_home))
    notify = workers if notifies_workers(job) and argv else ()
    extra = {"ssh": SSHSetup(job.mpi.ssh_auth_mount_path, context.path("ssh")), "notify": notify}
    return envs.mpi_launcher_env(job, hostfile, ssh_config), files, argv, wait_for, extra


def plan_mpi_worker(job, role, index, context):
    sshd_config, host_key = context.path("sshd_config"), context.path("ssh_host_ed25519_key")
    files = {sshd_config: ssh.server_config(
        context.ssh_port, host_key, context.path("ssh/authorized_keys"), context.path("sshd.pid"),
        set_env=_session_env(context))}
    argv = _sshd_argv(job, context)
    t9k = job.tensorstack
    if t9k is not None and t9k.pause:
        argv = ()
    elif t9k is not None and t9k.debug:
        override = _override(t9k.debug_overrides, "worker")
        argv = override.command if override and override.command else argv
    extra = {"ssh": SSHSetup(job.mpi.ssh_auth_mount_path, context.path("ssh"), host_key, job.mpi.sshd_path)}
    return envs.mpi_worker_env(job), files, argv, (), extra


TORCHRUN = ("torchrun", "--no-python")


def _is_torchrun(argv):
    """`torchrun ...` or `python -m torch.distributed.run ...`."""
    return argv[0].rsplit("/", 1)[-1] == "torchrun" or tuple(argv[1:3]) == ("-m", "torch.distributed.run")


def under_torchrun(job, argv):
    """`argv` handed to torchrun when a pod runs several processes (nprocPerNode > 1, `auto`, `cpu`, `gpu`) or the
    job rendezvous elastically; torchrun takes nnodes, nproc-per-node, node rank, master or rendezvous endpoint,
    max restarts from the PET_* variables (its names for every flag), as under training-operator. A command that
    already is torchrun is left as it is; `--no-python` runs the command itself (`python3 train.py`) per rank."""
    single = job.pytorch.nproc_per_node == "1" and job.pytorch.elastic is None
    if single or not argv or _is_torchrun(argv):
        return argv
    return TORCHRUN + tuple(argv)


def plan_pytorch(job, role, index, context):
    argv = under_torchrun(job, _command(job.replica(role), "pytorch", context))
    addr, port = envs.pytorch_master(job)
    # Everyone but the process that serves the rendezvous waits for it.
    serves = (role == "master") if job.replica("master") is not None else (
        job.pytorch.elastic.rdzv_host is None and role == "worker" and index == 0)
    return envs.pytorch_env(job, role, index), {}, argv, () if serves else (f"{addr}:{port}",), {}


def plan_mxnet(job, role, index, context):
    argv = _command(job.replica(role), "mxnet", context)
    env = envs.mxnet_env(job, role, index)
    # Scheduler and servers serve inside `import mxnet` (ps-lite reconnects by itself); workers wait for the
    # scheduler so that one that never comes up fails at the deadline, naming it.
    wait_for = ()
    if "DMLC_PS_ROOT_URI" in env and role == "worker":
        wait_for = (f"{env['DMLC_PS_ROOT_URI']}:{env['DMLC_PS_ROOT_PORT']}",)
    return env, {}, argv, wait_for, {"unset": envs.MXNET_STRAY}


PLANNERS = {
    ("mpi", "launcher"): plan_mpi_launcher,
    ("mpi", "worker"): plan_mpi_worker,
    ("pytorch", None): plan_pytorch,
    ("mxnet", None): plan_mxnet,
}


def build_plan(job, identity, context):
    """The Plan of replica `identity` of `job`.

    Environment precedence, lowest first: ringrun's values, the container's `env` in the spec, then any of those
    variables already present in `context.environ` (the operator set it: the operator wins).
    """
    planner = PLANNERS.get((job.framework, identity.role)) or PLANNERS[(job.framework, None)]
    ours, files, argv, wait_for, extra = planner(job, identity.role, identity.index, context)
    replica = job.replica(identity.role)
    main = replica.container(job.mpi.main_container if job.mpi else job.framework)
    env = dict(ours)
    env.update(main.env)
    for key in ours:
        if key in context.environ:
            env[key] = context.environ[key]
    return Plan(job.kind, identity.role, identity.index, tuple(env.items()), tuple(files.items()), tuple(argv),
                tuple(wait_for), mode=_mode(job), **extra)

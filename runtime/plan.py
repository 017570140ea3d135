"""JobSpec + Identity -> Plan: what one replica must do. Pure: returns data, the launcher executes it.

A Plan holds the environment to inject, the files to write, the argv to run and the `host:port` endpoints to wait for
(DNS resolution and a TCP connect) before running it. Planners are registered per (framework, role).
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
    command: a command given on ringrun's command line, replacing the spec's.
    """

    run_dir: str
    ssh_port: int = 22
    environ: dict = field(default_factory=dict)
    command: tuple = ()

    def path(self, name):
        return f"{self.run_dir.rstrip('/')}/{name}"


@dataclass(frozen=True)
class Plan:
    kind: str
    role: str
    index: int
    env: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    wait_for: tuple[str, ...]

    def to_dict(self):
        return {"kind": self.kind, "role": self.role, "index": self.index, "env": dict(self.env),
                "files": dict(self.files), "argv": list(self.argv), "wait_for": list(self.wait_for)}

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


def plan_mpi_launcher(job, role, index, context):
    hostfile, ssh_config = context.path("hostfile"), context.path("ssh_config")
    files = {
        hostfile: topology.hostfile(job),
        ssh_config: ssh.client_config(context.ssh_port, f"{job.mpi.ssh_auth_mount_path.rstrip('/')}/id_rsa"),
    }
    wait_for = tuple(f"{topology.mpi_host(job, 'worker', i)}:{context.ssh_port}" for i in range(job.count("worker")))
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
    return envs.mpi_launcher_env(job, hostfile, ssh_config), files, argv, wait_for


def plan_mpi_worker(job, role, index, context):
    sshd_config = context.path("sshd_config")
    files = {sshd_config: ssh.server_config(
        context.ssh_port, context.path("ssh_host_ed25519_key"),
        f"{job.mpi.ssh_auth_mount_path.rstrip('/')}/authorized_keys", context.path("sshd.pid"))}
    argv = _sshd_argv(job, context)
    t9k = job.tensorstack
    if t9k is not None and t9k.pause:
        argv = ()
    elif t9k is not None and t9k.debug:
        override = _override(t9k.debug_overrides, "worker")
        argv = override.command if override and override.command else argv
    return envs.mpi_worker_env(job), files, argv, ()


def plan_pytorch(job, role, index, context):
    argv = _command(job.replica(role), "pytorch", context)
    addr, port = envs.pytorch_master(job)
    # Everyone but the process that serves the rendezvous waits for it.
    serves = (role == "master") if job.replica("master") is not None else (
        job.pytorch.elastic.rdzv_host is None and role == "worker" and index == 0)
    return envs.pytorch_env(job, role, index), {}, argv, () if serves else (f"{addr}:{port}",)


def plan_mxnet(job, role, index, context):
    argv = _command(job.replica(role), "mxnet", context)
    env = envs.mxnet_env(job, role, index)
    wait_for = ()
    if "DMLC_PS_ROOT_URI" in env and role != "scheduler":
        wait_for = (f"{env['DMLC_PS_ROOT_URI']}:{env['DMLC_PS_ROOT_PORT']}",)
    return env, {}, argv, wait_for


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
    ours, files, argv, wait_for = planner(job, identity.role, identity.index, context)
    replica = job.replica(identity.role)
    main = replica.container(job.mpi.main_container if job.mpi else job.framework)
    env = dict(ours)
    env.update(main.env)
    for key in ours:
        if key in context.environ:
            env[key] = context.environ[key]
    return Plan(job.kind, identity.role, identity.index, tuple(env.items()), tuple(files.items()), tuple(argv),
                tuple(wait_for))

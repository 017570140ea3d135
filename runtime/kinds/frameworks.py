"""What differs between the frameworks a job kind runs on (a JobKind's `framework`): which replicas decide the job's
outcome, which run as processes on one machine, whether the job needs a rendezvous port of its own there, the names
its replicas are reached by, what its operator's pod variables say about a replica, its line in `ringrun validate`'s
summary, the planner of each role and the Python module its processes need. One `Framework` each; `of(job)` finds a job's. Pure.
"""

import json
from dataclasses import dataclass
from typing import Callable

from .. import env as envs
from .. import plan, topology
from ..identity import env_integer, from_hostname

LOCALHOST = "127.0.0.1"


# -- MPI: the launcher runs mpirun, the workers are its ssh hosts ---------------------------------------------------
def _mpi_identity(job, env, hostname):
    """mpi-operator's K_MPI_JOB_ROLE (the index from the host name); a TrainJob's pod: as `_trainer_identity`."""
    if not env.get("K_MPI_JOB_ROLE"):
        return _trainer_identity(job, env, hostname) if job.trainer is not None else None
    role = env["K_MPI_JOB_ROLE"].lower()
    parsed = from_hostname(job, hostname)
    index = parsed[1] if parsed and parsed[0] == role else None
    return role, index, "K_MPI_JOB_ROLE"


def _mpi_world(job):
    return (f"MPI: {job.mpi.implementation}, {job.count('worker')} workers x slotsPerWorker "
            f"{job.mpi.slots_per_worker} = world size {topology.world_size(job)}")


# -- PyTorch: master and workers meet at the master's port ----------------------------------------------------------
def _pytorch_identity(job, env, hostname):
    """training-operator's RANK (the master is rank 0)."""
    if not env.get("RANK"):
        return None
    rank = env_integer(env["RANK"], "RANK")
    if job.replica("master") is not None:
        return ("master", 0, "RANK") if rank == 0 else ("worker", rank - 1, "RANK")
    return "worker", rank, "RANK"


def _pytorch_world(job):
    nodes = sum(r.replicas for r in job.replicas)
    elastic = " (elastic)" if job.pytorch.elastic else ""
    nproc = envs.nproc_per_node(job)
    if not nproc.isdigit():  # auto, cpu, gpu: torchrun counts the node's devices or cores
        return (f"PyTorch: {nodes} nodes x nprocPerNode {nproc} = world size set by torchrun on each node "
                f"(WORLD_SIZE {nodes * envs.nproc_count(job)}){elastic}")
    return f"PyTorch: {nodes} nodes x nprocPerNode {nproc} = world size {nodes * int(nproc)}{elastic}"


# -- MXNet: scheduler, servers and workers (or MXTune's tracker, servers and tuners) ---------------------------------
def _mxnet_identity(job, env, hostname):
    """DMLC_ROLE, and the index from MX_CONFIG's task (or DMLC_WORKER_ID)."""
    if not env.get("DMLC_ROLE"):
        return None
    role = env["DMLC_ROLE"].lower()
    index = None
    try:
        task = json.loads(env.get("MX_CONFIG", "null"))
    except ValueError:
        task = None
    task = task.get("task") if isinstance(task, dict) else None
    if isinstance(task, dict) and task.get("type") == role and isinstance(task.get("index"), int):
        index = task["index"]
    elif role == "worker" and env.get("DMLC_WORKER_ID"):
        index = env_integer(env["DMLC_WORKER_ID"], "DMLC_WORKER_ID")
    return role, index, "DMLC_ROLE"


def _mxnet_world(job):
    return f"MXNet {job.mxnet.job_mode}: {job.count('server')} servers, {job.count('worker')} workers"


# -- Trainer v2: a TrainJob's replicated jobs, each pod an Indexed Job's (the torch policy, or none) -------------------
def _trainer_identity(job, env, hostname):
    """The Job controller's JOB_COMPLETION_INDEX, the replicated job from the pod's host name
    `<job>-<rjob>-<job index>-<completion index>`."""
    if not env.get("JOB_COMPLETION_INDEX"):
        return None
    from . import registry

    index = env_integer(env["JOB_COMPLETION_INDEX"], "JOB_COMPLETION_INDEX")
    label = (hostname or "").split(".", 1)[0]
    role = next((r for r in job.roles if registry.of(job).pod_name(job.name, r, index) == label), None)
    return (role, index, "JOB_COMPLETION_INDEX") if role else None


def _trainer_world(job):
    steps = ", ".join(f"{r.role} x {r.replicas}" for r in job.replicas)
    if job.framework == "torch":
        return (f"Trainer torch: runtime {job.trainer.runtime_name}, {job.trainer.num_nodes} nodes x "
                f"numProcPerNode {job.trainer.nproc_per_node} ({steps})")
    return f"Trainer: runtime {job.trainer.runtime_name} ({steps})"


def _all_replicas(job):
    return tuple((r.role, i) for r in job.replicas for i in range(r.replicas))


@dataclass(frozen=True)
class Framework:
    """deciders(job) -> the roles whose replicas must all succeed for the job to; local_processes(job) -> (role,
    index) of the replicas that run as processes on one machine, in start order; rendezvous: whether a local run
    needs a port of its own (two jobs never meet at the default); local_env: variables every local process gets;
    host_names(job, role, index) -> names a replica is reached by besides its service's; operator_identity(job,
    env, hostname) -> (role, index, source) from the operator's pod variables, or None; world(job) -> the summary's
    line; worker_text: the summary's word for a replica that runs no command of the spec's (MPI workers), else None;
    planners: role -> planner(job, role, index, context) -> plan.RolePlan (None: every other role's);
    port_name: the named port of the main container a local run replaces (the rendezvous), else None;
    requires: (module the processes import, ringrun's extra that installs it, that extra's pip arguments), checked
    before a command starts, else None; own_folders: a local replica that names no workingDir runs in a folder of
    its own named like its pod, as pods share no file system (Trainer's SDK writes its script in the working folder).
    """

    name: str
    deciders: Callable
    local_processes: Callable
    operator_identity: Callable
    world: Callable
    planners: dict
    local_env: tuple = ()
    host_names: Callable = lambda job, role, index: ()
    worker_text: str | None = None
    port_name: str | None = None
    requires: tuple | None = None
    own_folders: bool = False  # each replica without a workingDir runs in a folder of its own (Trainer's pods)

    @property
    def rendezvous(self):
        """Whether a local run needs a port of its own (two jobs never meet at the default)."""
        return self.port_name is not None

    def planner(self, role):
        return self.planners.get(role) or self.planners[None]


FRAMEWORKS = {
    "mpi": Framework("mpi", lambda job: {"launcher"}, lambda job: (("launcher", 0),), _mpi_identity, _mpi_world,
                     {"launcher": plan.plan_mpi_launcher, "worker": plan.plan_mpi_worker},
                     host_names=lambda job, role, index: (topology.mpi_host(job, role, index),),
                     worker_text="sshd (ringrun)"),
    "pytorch": Framework("pytorch", lambda job: {"master"} if job.replica("master") else {"worker"}, _all_replicas,
                         _pytorch_identity, _pytorch_world, {None: plan.plan_pytorch}, port_name="pytorchjob-port",
                         requires=("torch", "torch", "torch==2.13.0")),
    # ps-lite advertises DMLC_NODE_HOST, else the address of an interface it picks: every role stays on loopback
    "mxnet": Framework("mxnet", lambda job: {"tuner"} if job.mxnet.job_mode == "MXTune" else {"worker"},
                       _all_replicas, _mxnet_identity, _mxnet_world, {None: plan.plan_mxnet},
                       local_env=(("DMLC_NODE_HOST", LOCALHOST),), port_name="mxjob-port",
                       requires=("mxnet", "mxnet", "mxnet==1.9.1 'numpy<1.24'")),
    # Trainer v2 TrainJobs: every replicated job must succeed (JobSet's default successPolicy, All)
    "torch": Framework("torch", lambda job: set(job.roles), _all_replicas, _trainer_identity, _trainer_world,
                       {None: plan.plan_trainer}, host_names=lambda job, role, index: _trainer_hosts(job, role, index),
                       port_name="trainer", requires=("torch", "torch", "torch==2.13.0"), own_folders=True),
    "plain": Framework("plain", lambda job: set(job.roles), _all_replicas, _trainer_identity, _trainer_world,
                       {None: plan.plan_trainer}, host_names=lambda job, role, index: _trainer_hosts(job, role, index),
                       own_folders=True),
}


def _trainer_hosts(job, role, index):
    """A JobSet pod's names: `<pod>` and `<pod>.<job>` (the JobSet's headless service is named like the job)."""
    from . import registry

    pod = registry.of(job).pod_name(job.name, role, index)
    return (pod, f"{pod}.{job.name}")


def of(job):
    """The Framework of a JobSpec."""
    return FRAMEWORKS[job.framework]

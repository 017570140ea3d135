"""The one-screen summary `ringrun validate` prints for a job."""

import shlex

from . import env as envs
from . import topology


def _command_text(replica, job):
    if job.tensorstack is not None:
        return "mpirun ... " + shlex.join(job.mpi.worker_cmd) if replica.role == "launcher" else "sshd (ringrun)"
    if job.framework == "mpi" and replica.role == "worker":
        return "sshd (ringrun)"
    main = replica.container(job.mpi.main_container if job.mpi else job.framework)
    text = shlex.join(main.command + main.args) or "(image default)"
    return text if len(text) <= 90 else text[:87] + "..."


def world_line(job):
    if job.framework == "mpi":
        return (f"MPI: {job.mpi.implementation}, {job.count('worker')} workers x slotsPerWorker "
                f"{job.mpi.slots_per_worker} = world size {topology.world_size(job)}")
    if job.framework == "pytorch":
        nodes = sum(r.replicas for r in job.replicas)
        elastic = " (elastic)" if job.pytorch.elastic else ""
        nproc = envs.nproc_per_node(job)
        if not nproc.isdigit():  # auto, cpu, gpu: torchrun counts the node's devices or cores
            return (f"PyTorch: {nodes} nodes x nprocPerNode {nproc} = world size set by torchrun on each node "
                    f"(WORLD_SIZE {nodes * envs.nproc_count(job)}){elastic}")
        return f"PyTorch: {nodes} nodes x nprocPerNode {nproc} = world size {nodes * int(nproc)}{elastic}"
    return (f"MXNet {job.mxnet.job_mode}: {job.count('server')} servers, {job.count('worker')} workers")


def summary(job):
    """Text: kind, API, each role with replicas, restart policy and command, then the world size."""
    lines = [f"{job.kind} {job.namespace}/{job.name} ({job.api_version})"]
    width = max(len(r.type) for r in job.replicas)
    for replica in job.replicas:
        lines.append(f"  {replica.type:<{width}}  x{replica.replicas:<3} restart={replica.restart_policy:<9} "
                     f"{_command_text(replica, job)}")
    lines.append(f"  {world_line(job)}")
    policy = job.run_policy
    extra = [f"cleanPodPolicy {policy.clean_pod_policy}"]
    if policy.backoff_limit is not None:
        extra.append(f"backoffLimit {policy.backoff_limit}")
    if policy.active_deadline_seconds is not None:
        extra.append(f"activeDeadlineSeconds {policy.active_deadline_seconds}")
    if job.tensorstack is not None and (job.tensorstack.debug or job.tensorstack.pause):
        extra.append("runMode " + ("debug" if job.tensorstack.debug else "pause"))
    lines.append("  " + ", ".join(extra))
    return "\n".join(lines) + "\n"

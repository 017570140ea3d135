"""The one-screen summary `ringrun validate` prints for a job."""

import shlex

from .kinds import frameworks


def _command_text(replica, job):
    if replica.role == "worker" and frameworks.of(job).worker_text:
        return frameworks.of(job).worker_text
    if replica.role == "launcher" and job.mpi.launcher_mpirun:
        return "mpirun ... " + shlex.join(job.mpi.worker_cmd)
    main = replica.container(job.main_container)
    text = shlex.join(main.command + main.args) or "(image default)"
    return text if len(text) <= 90 else text[:87] + "..."


def world_line(job):
    return frameworks.of(job).world(job)


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
    if job.run_mode.mode != "normal":
        extra.append(f"runMode {job.run_mode.mode}")
    lines.append("  " + ", ".join(extra))
    return "\n".join(lines) + "\n"

"""TensorStack (T9k) MPIJob: batch.tensorstack.dev/v1beta1.

The spec describes workers only (`worker.cmd` is what mpirun runs); the launcher is implicit: role `launcher`, index 0,
in a pod from the worker template. The training container must be called `mpi-worker`.
"""

import copy

from ..model import JobSpec, MPIImplementation, MPIOptions, OperatorPod, Replica, ReplicaOverride, RunMode, RunPolicy
from . import common

CONTAINER = "mpi-worker"
CLEAN_UP = ("all", "unfinished", "none")
# runMode replica types: T9k names the launcher "master".
_MODE_ROLES = {"master": "launcher", "launcher": "launcher", "worker": "worker"}
_CLEAN_POD = {"all": "All", "unfinished": "Running", "none": "None"}


def parse(doc, api_version, kind):
    name, namespace, spec = common.job_spec(doc)
    if spec is None:
        return None
    worker = spec["worker"]
    replicas = cmd = containers = None
    pod_volumes = ()
    if worker.mapping(required=True) is not None:
        replicas = worker["replicas"].integer(default=1, minimum=0, maximum=common.MAX_REPLICAS)
        cmd = worker["cmd"].strings(required=True, nonempty=True)
        containers, _, pod_volumes = common.pod_template(worker["template"])
        if containers and CONTAINER not in [c.name for c in containers]:
            worker["template"]["spec"]["containers"].error(f"must contain a container named {CONTAINER!r}")
            containers = ()
    ssh = spec["ssh"]
    ssh.mapping()
    policy = spec["runPolicy"]
    policy.mapping()
    clean_up = policy["cleanUpWorkers"].string(default="none", choices=CLEAN_UP) or "none"
    queue, priority = _scheduler(spec["scheduler"])
    run_mode = _run_mode(spec["runMode"])
    mca = spec["mca"].string_map()
    for key, _ in mca:
        if not key:
            spec["mca"].error("MCA parameter names must not be empty")
    mpi = MPIOptions(
        implementation=MPIImplementation.OPENMPI,
        # the user manual's `processesPerWorker` (not in the API reference): mpirun's slots on each worker
        slots_per_worker=(worker["processesPerWorker"].integer(default=1, minimum=1, maximum=4096) or 1)
        if worker.present else 1,
        ssh_auth_mount_path=ssh["sshAuthMountPath"].absolute_path(default="/root/.ssh") or "/root/.ssh",
        sshd_path=ssh["sshdPath"].absolute_path(default="/usr/sbin/sshd") or "/usr/sbin/sshd",
        mca=mca,
        extra_mpi_args=worker["extraMPIArgs"].strings() if worker.present else (),
        mpi_home=spec["mpiHome"].absolute_path(),
        worker_cmd=cmd or (),
        launcher_mpirun=True,  # T9k's launcher runs mpirun over worker.cmd; its template has no launcher command
    )
    ignored = ()
    if queue is not None or priority is not None:
        ignored = (("spec.scheduler.t9kScheduler", "queues and priorities are T9k's scheduler's; the job starts at "
                                                   "once here"),)
    if replicas is None or not cmd or not containers:
        return None
    pod_path = worker["template"]["spec"].path
    launcher = Replica("launcher", "launcher", 1, "OnFailure", containers, (), pod_volumes, pod_path)
    workers = Replica("worker", "worker", replicas, "Never", containers, (), pod_volumes, pod_path)
    run_policy = RunPolicy(clean_pod_policy=_CLEAN_POD[clean_up])
    return JobSpec(api_version, kind, name, namespace, "mpi", (launcher, workers), run_policy, mpi=mpi,
                   run_mode=run_mode, ignored_locally=ignored)


def _scheduler(f):
    if f.mapping() is None:
        return None, None
    t9k = f["t9kScheduler"]
    if t9k.mapping() is None:
        return None, None
    return t9k["queue"].string(required=True, nonempty=True), t9k["priority"].integer(minimum=0, maximum=100)


def _run_mode(f):
    """`runMode` -> RunMode."""
    if f.mapping() is None:
        return RunMode()
    debug = f["debug"]
    debug.mapping()
    pause = f["pause"]
    pause.mapping()
    debug_enabled = bool(debug["enable"].boolean(default=False))
    pause_enabled = bool(pause["enable"].boolean(default=False))
    if debug_enabled and pause_enabled:
        f.error("debug and pause cannot both be enabled")
    mode = "debug" if debug_enabled else "pause" if pause_enabled else "normal"
    return RunMode(mode, _overrides(debug["replicaSpecs"], with_args=False),
                   _overrides(pause["resumeSpecs"], with_args=True))


def _overrides(f, with_args):
    result, seen = [], set()
    for item in f.elements():
        if item.mapping(required=True) is None:
            continue
        kind = item["type"].string(required=True, choices=tuple(_MODE_ROLES))
        if kind is None:
            continue
        role = _MODE_ROLES[kind]
        if role in seen:
            item["type"].error(f"replica type {kind!r} is given more than once")
            continue
        seen.add(role)
        result.append(ReplicaOverride(
            role=role,
            command=item["command"].strings(),
            args=item["args"].strings() if with_args else (),
            skip_init_container=bool(item["skipInitContainer"].boolean(default=False)),
        ))
    return tuple(result)


def boolean_clean_up(obj, result, spec_fields, out):
    """A compat rewrite (runtime/compat.py): the seed's API page says `runPolicy.cleanUpWorkers` is a string (all,
    unfinished, none); the API reference and the user manual write a boolean. true reads as all, false as none."""
    policy = (result or obj)["spec"].get("runPolicy")
    value = policy.get("cleanUpWorkers") if isinstance(policy, dict) else None
    if not isinstance(value, bool):
        return result
    result = result or copy.deepcopy(obj)
    word = "all" if value else "none"
    result["spec"]["runPolicy"]["cleanUpWorkers"] = word
    out.warnings.append(("spec.runPolicy.cleanUpWorkers",
                         f"{str(value).lower()} read as {word!r} (the seed's API takes all, unfinished or none)"))
    return result


def operator_pod(job, role, index):
    """What T9k's controller gives a replica's pod that ringrun's entrypoint relies on: the ssh Secret at
    sshAuthMountPath (the launcher's mpirun is ringrun's, built from the spec)."""
    return OperatorPod(ssh=True)

"""TensorStack (T9k) MPIJob: batch.tensorstack.dev/v1beta1.

The spec describes workers only (`worker.cmd` is what mpirun runs); the launcher is implicit: role `launcher`, index 0,
in a pod from the worker template. The training container must be called `mpi-worker`.
"""

from ..model import JobSpec, MPIImplementation, MPIOptions, Replica, ReplicaOverride, RunPolicy, TensorStackOptions
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
    if worker.mapping(required=True) is not None:
        replicas = worker["replicas"].integer(default=1, minimum=0, maximum=common.MAX_REPLICAS)
        cmd = worker["cmd"].strings(required=True, nonempty=True)
        containers, _ = common.pod_template(worker["template"])
        if containers and CONTAINER not in [c.name for c in containers]:
            worker["template"]["spec"]["containers"].error(f"must contain a container named {CONTAINER!r}")
            containers = ()
    ssh = spec["ssh"]
    ssh.mapping()
    policy = spec["runPolicy"]
    policy.mapping()
    clean_up = policy["cleanUpWorkers"].string(default="none", choices=CLEAN_UP) or "none"
    queue, priority = _scheduler(spec["scheduler"])
    debug, debug_overrides, pause, resume_overrides = _run_mode(spec["runMode"])
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
        main_container=CONTAINER,
    )
    t9k = TensorStackOptions(clean_up_workers=clean_up, queue=queue, priority=priority, debug=debug,
                             debug_overrides=debug_overrides, pause=pause, resume_overrides=resume_overrides)
    if replicas is None or not cmd or not containers:
        return None
    launcher = Replica("launcher", "launcher", 1, "OnFailure", containers)
    workers = Replica("worker", "worker", replicas, "Never", containers)
    run_policy = RunPolicy(clean_pod_policy=_CLEAN_POD[clean_up])
    common.check_host_names(doc, name, (launcher, workers))
    return JobSpec(api_version, kind, name, namespace, "mpi", (launcher, workers), run_policy, mpi=mpi,
                   tensorstack=t9k)


def _scheduler(f):
    if f.mapping() is None:
        return None, None
    t9k = f["t9kScheduler"]
    if t9k.mapping() is None:
        return None, None
    return t9k["queue"].string(required=True, nonempty=True), t9k["priority"].integer(minimum=0, maximum=100)


def _run_mode(f):
    """(debug enabled, debug overrides, pause enabled, resume overrides) from `runMode`."""
    if f.mapping() is None:
        return False, (), False, ()
    debug = f["debug"]
    debug.mapping()
    pause = f["pause"]
    pause.mapping()
    debug_enabled = bool(debug["enable"].boolean(default=False))
    pause_enabled = bool(pause["enable"].boolean(default=False))
    if debug_enabled and pause_enabled:
        f.error("debug and pause cannot both be enabled")
    return (debug_enabled, _overrides(debug["replicaSpecs"], with_args=False),
            pause_enabled, _overrides(pause["resumeSpecs"], with_args=True))


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

"""A job's plans made local: every replica a process on this machine (pure; `ringrun run` executes the result).

- Replica names resolve to this machine: every replica's DNS name in an env value or file becomes 127.0.0.1.
- A launcher's command that names the operators' `/etc/mpi/hostfile` gets this run's hostfile there.
- MPI workers are slots, not processes: the launcher alone runs, and its hostfile is `localhost` with
  workers x slotsPerWorker slots (plus the launcher's own with runLauncherAsWorker), no binding, oversubscription
  allowed and idle ranks yielding, so more ranks than cores still run. No ssh and nothing to wait for.
- `--set PATH=VALUE` edits the spec before it is parsed (see `apply_sets`).
"""

import copy
import functools
import json
import re
import shlex
from dataclasses import replace

import yaml

from . import commands, topology
from .errors import SpecError, UsageError
from .kinds import frameworks, registry
from .model import MPIImplementation, Port


LOCALHOST = "127.0.0.1"
OPERATOR_HOSTFILE = "/etc/mpi/hostfile"  # where mpi-operator and Trainer mount the hostfile in the launcher's pod
_TOKEN = re.compile(r"[A-Za-z0-9][-A-Za-z0-9.]*")

# Oversubscription, no binding, yielding: Open MPI 4 and 5 (PRRTE) names.
LOCAL_OPENMPI_ENV = {
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
    "OMPI_MCA_hwloc_base_binding_policy": "none",
    "PRTE_MCA_hwloc_default_binding_policy": "none",
    "OMPI_MCA_mpi_yield_when_idle": "1",
}


# One machine runs every replica as a process: past this many, the job belongs on a cluster (and MXNet's MX_CONFIG,
# one entry per replica in every replica's environment, would grow with the square of the count).
MAX_LOCAL_PROCESSES = 1024


def processes(job):
    """(role, index) of every replica that runs as a local process, in start order. Raises UsageError past
    MAX_LOCAL_PROCESSES."""
    found = frameworks.of(job).local_processes(job)
    if len(found) > MAX_LOCAL_PROCESSES:
        raise UsageError(f"{job.kind} {job.namespace}/{job.name} has {len(found)} replicas; a local run starts each "
                         f"as a process on this machine and takes at most {MAX_LOCAL_PROCESSES} (run it on a cluster)")
    return found


def working_dirs(job):
    """(role, workingDir) of every role that runs as a local process and names one (as the spec gives it)."""
    roles = dict.fromkeys(role for role, _ in processes(job))
    return tuple((role, path) for role in roles
                 if (path := job.replica(role).container(job.main_container).working_dir))


@functools.lru_cache(maxsize=8)
def replica_names(job):
    """Every name a replica of `job` is reached by in a cluster (computed once per job: plans are made per replica)."""
    names = set()
    for replica in job.replicas:
        for i in range(replica.replicas):
            names.add(topology.service_name(job, replica.role, i))
            names.update(frameworks.of(job).host_names(job, replica.role, i))
    return frozenset(names)


def _to_localhost(text, names):
    return _TOKEN.sub(lambda m: LOCALHOST if m.group(0) in names else m.group(0), text)


def with_port(job, port):
    """`job` with every replica's rendezvous port (PyTorch `pytorchjob-port` and elastic `rdzvPort`, MXNet
    `mxjob-port`) set to `port`, so that jobs on one machine never meet at a default port. MPI jobs unchanged."""
    port_name = frameworks.of(job).port_name  # of the main container: where the master or scheduler listens
    if port_name is None:
        return job

    def ported(container):
        ports = tuple(p for p in container.ports if p.name != port_name) + (Port(port, port_name),)
        return replace(container, ports=ports)

    replicas = tuple(replace(r, containers=tuple(ported(c) if c is r.container(job.main_container) else c
                                                 for c in r.containers)) for r in job.replicas)
    job = replace(job, replicas=replicas)
    if job.trainer is not None:  # PET_MASTER_PORT
        job = replace(job, trainer=replace(job.trainer, master_port=port))
    if job.pytorch is not None and job.pytorch.elastic is not None and job.pytorch.elastic.rdzv_port is not None:
        job = replace(job, pytorch=replace(job.pytorch, elastic=replace(job.pytorch.elastic, rdzv_port=port)))
    return job


def localize(job, plan):
    """The local version of `plan` (a replica's cluster plan)."""
    names = replica_names(job)
    env = {k: _to_localhost(v, names) for k, v in plan.env}
    files = dict(plan.files)
    if plan.hostfile is not None:
        slots = topology.world_size(job)
        files[plan.hostfile] = topology.hostfile_line("localhost", max(slots, 1), job.mpi.implementation) + "\n"
        if job.mpi.implementation is MPIImplementation.OPENMPI:
            env.update(LOCAL_OPENMPI_ENV)
    env.update(frameworks.of(job).local_env)
    files = {path: _to_localhost(text, names) for path, text in files.items()}
    argv, notes = plan.argv, plan.notes
    if plan.hostfile is not None and OPERATOR_HOSTFILE in argv:
        # the operators mount the hostfile there (mpi-operator, Trainer's MPI plugin); here it is the launcher's own
        argv = tuple(plan.hostfile if a == OPERATOR_HOSTFILE else a for a in argv)
        notes += (f"{OPERATOR_HOSTFILE} in the command is this run's hostfile, {plan.hostfile}",)
    if plan.discover_hosts is not None:
        files[plan.discover_hosts] = topology.discover_hosts([f"localhost:{max(topology.world_size(job), 1)}"])
        argv, more = _elastic_horovod_here(argv, plan.discover_hosts)
        notes += more
    # One machine: nothing to wait for, no ssh, no worker pods to watch or tell.
    return replace(plan, env=tuple(env.items()), files=tuple(files.items()), wait_for=(), ssh=None, workers=(),
                   notify=(), wait_for_login=False, argv=argv, notes=notes, discovery=())


def _elastic_horovod_here(argv, discover):
    """(argv, notes) of an elastic horovodrun run on this machine: mpi-operator's discovery script is ringrun's here,
    and with every host being this one, Horovod is told its network interface: without one, its elastic mode waits
    for a second host to compare interfaces with (horovod 0.28.1 runner/gloo_run.py _get_min_start_hosts), until its
    elastic timeout (600 s) - the hang seen with plain `horovodrun` elastic on one machine."""
    notes = []
    if not argv:
        return argv, ()
    if commands.discovery_script(argv) == commands.OPERATOR_DISCOVER_HOSTS:
        argv = commands.with_discovery_script(argv, discover)
        notes.append(f"{commands.OPERATOR_DISCOVER_HOSTS} (mpi-operator's) is ringrun's {discover} here")
    if not any(a.split("=", 1)[0] in ("--network-interface", "--network-interfaces") for a in argv):
        argv = (argv[0], "--network-interface", "lo") + tuple(argv[1:])
        notes.append("added --network-interface lo: every host is this machine (Horovod's elastic mode would wait for "
                     "a second host to choose a network interface)")
    return argv, tuple(notes)


# --set shortcuts: ROLE.command / ROLE.args / ROLE.replicas / ROLE.env.NAME for the role's main container.


def _value(text):
    """A --set value: JSON/YAML (`["python", "t.py"]`, `3`), else shell words for command/args. Raises ValueError
    for a list or mapping that does not parse."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        if text.lstrip().startswith(("[", "{")):
            raise ValueError("not valid YAML") from None
        return text


def _resolve_shortcut(obj, key):
    """Turn `Launcher.command` into its full path in `obj`, or None when `key` is not a shortcut."""
    head, _, rest = key.partition(".")
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict) or not rest:
        return None
    kind = registry.kind_of(obj.get("apiVersion"), obj.get("kind"))
    if kind is not None and kind.uses_runtimes and head == kind.main_container and isinstance(spec.get("trainer"),
                                                                                              (dict, type(None))):
        # a TrainJob's trainer: `node.command`, `node.args`, `node.env.NAME`, `node.replicas` (numNodes)
        if rest in ("command", "args"):
            return ["spec", "trainer", rest]
        if rest == "replicas":
            return ["spec", "trainer", "numNodes"]
        if rest.startswith("env."):
            return ["spec", "trainer", "env", ("name", rest[4:])]
        return None
    if head.lower() == "worker" and isinstance(spec.get("worker"), dict) and "cmd" in spec["worker"] \
            and rest in ("cmd", "replicas", "extraMPIArgs"):
        return ["spec", "worker", rest]
    for field in (kind.replica_specs,) if kind and kind.replica_specs else ():
        replicas = spec.get(field)
        if not isinstance(replicas, dict):
            continue
        match = next((k for k in replicas if isinstance(k, str) and k.lower() == head.lower()), None)
        if match is None:
            return None
        if rest == "replicas":
            return ["spec", field, match, "replicas"]
        containers = replicas[match].get("template", {}).get("spec", {}).get("containers", []) \
            if isinstance(replicas[match], dict) else []
        names = [c.get("name") if isinstance(c, dict) else None for c in containers]
        main = names.index(kind.main_container) if kind.main_container in names else 0
        base = ["spec", field, match, "template", "spec", "containers", main]
        if rest in ("command", "args"):
            return base + [rest]
        if rest.startswith("env."):
            return base + ["env", ("name", rest[4:])]
    return None


def apply_sets(obj, sets):
    """A copy of the spec object `obj` with each `PATH=VALUE` of `sets` applied. Raises SpecError.

    PATH is dotted (`spec.runPolicy.backoffLimit=2`, list indices as numbers) or a role shortcut (`Launcher.command`,
    `Worker.args`, `Worker.replicas`, `Master.env.NAME`; TensorStack `worker.cmd`). VALUE is YAML, so
    `["python", "t.py"]` and `3` keep their types; for command, args and cmd a plain string is split as shell words.
    A Trainer runtime beside a TrainJob in the file is not a job: it comes back as it is.
    """
    if isinstance(obj, dict) and isinstance(obj.get("apiVersion"), str) and \
            registry.stored_kind_of(obj["apiVersion"], obj.get("kind")) is not None:
        return obj
    result = copy.deepcopy(obj)
    problems = []
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not key:
            problems.append(f"--set {item!r}: expected PATH=VALUE")
            continue
        path = _resolve_shortcut(result, key) or [int(p) if p.isdigit() else p for p in key.split(".")]
        try:
            value = _value(text)
            if path[-1] in ("command", "args", "cmd") and isinstance(value, str):
                value = shlex.split(value)
        except ValueError as exc:
            problems.append(f"--set {key}: cannot read the value {text!r}: {exc}")
            continue
        try:
            _assign(result, path, value)
        except (KeyError, IndexError, TypeError) as exc:
            problems.append(f"--set {key}: cannot set it here ({exc})")
    if problems:
        raise SpecError(problems)
    return result


def _assign(obj, path, value):
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(key, tuple):  # ("name", NAME): the env entry called NAME, added when missing
            entry = next((e for e in obj if isinstance(e, dict) and e.get("name") == key[1]), None)
            if entry is None:
                entry = {"name": key[1]}
                obj.append(entry)
            entry["value"] = value if isinstance(value, str) else json.dumps(value)
            return
        if last:
            obj[key] = value
            return
        if isinstance(obj, dict) and key not in obj:
            obj[key] = [] if isinstance(path[i + 1], tuple) else {}
        obj = obj[key]

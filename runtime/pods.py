"""A job's pods as a cluster would make them, for running each replica as a container of its `image` (pure).

`pod_specs(job)` returns one `PodSpec` per replica: its image (checked as the container engine would parse it),
the main container's command, args, env, workingDir and volumeMounts, the operator's additions (its JobKind's
`operator_pod`: variables, ConfigMap files, the ssh Secret, a default command, DNS search domains), ringrun's own
identity variables (`RINGRUN_SPEC`, `RINGRUN_ROLE`, `RINGRUN_INDEX`: what the image's `ringrun entrypoint` reads),
the host name and every DNS name the pod is reached by, and its resource limits as an engine takes them. What
cannot run on one machine is an error naming its field (an image name no engine parses, a volume of a kind ringrun
cannot provide that a container mounts); what is merely not enforced is a warning naming its field.
"""

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal

from . import topology
from .errors import SpecError
from .kinds import frameworks
from .kinds.registry import of as kind_of_job
from .quantity import parse_quantity

SPEC_DIR = "/etc/ringrun-job"  # where the job's spec is mounted read-only, as a ConfigMap would be
SPEC_FILE = "job.json"
VOLUME_KINDS = ("hostPath", "emptyDir")  # the volume sources one machine provides; others are refused when mounted
ROOT_SSH = "/root/.ssh"

# distribution/reference's grammar of an image reference: [domain[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*" \
          r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                        r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?", re.ASCII)
MAX_PODS = 1024  # containers one job may start on this machine
MAX_CPUS = 10**6
_PATH_SEPARATORS = (":", ",")  # split an engine's --volume / --tmpfs argument


@dataclass(frozen=True)
class Mount:
    """One mount of a pod's container. source: spec | config | ssh | hostPath | emptyDir; volume: the pod volume's
    name (hostPath, emptyDir); host_path: a hostPath's folder; medium: an emptyDir's ("" or Memory)."""

    source: str
    target: str
    read_only: bool = True
    volume: str | None = None
    host_path: str | None = None
    medium: str = ""


@dataclass(frozen=True)
class PodSpec:
    """One replica's pod. command: replaces the image's ENTRYPOINT when not empty; pull: always | missing | never
    (imagePullPolicy Always, IfNotPresent, Never; Kubernetes' default for the tag when absent); cpus: CPUs as a
    float; memory: bytes; user: `uid[:gid]` from securityContext, else the image's; config: the operator's
    ConfigMap, (folder, ((file, text), ...)) or None; ssh_mode: the ssh Secret's file mode (0600 in /root/.ssh,
    else 0644, as mpi-operator mounts it), 0 when the pod has no Secret."""

    name: str
    role: str
    index: int
    image: str
    command: tuple = ()
    args: tuple = ()
    env: tuple = ()
    working_dir: str | None = None
    mounts: tuple = ()
    hostname: str = ""
    aliases: tuple = ()
    dns_search: tuple = ()
    cpus: float | None = None
    memory: int | None = None
    user: str | None = None
    pull: str = "missing"
    config: tuple | None = None
    ssh_mode: int = 0
    restart_policy: str = "Never"


def valid_image(reference):
    """Whether an engine can parse `reference` as an image name (docker's distribution/reference grammar)."""
    return bool(reference) and len(reference) <= 4096 and bool(_REFERENCE.fullmatch(reference))


def pull_policy(container):
    """always | missing | never: the container's imagePullPolicy, else Kubernetes' default (Always for a `:latest`
    or untagged image, IfNotPresent otherwise)."""
    policy = container.image_pull_policy
    if policy is None:
        last = container.image.rsplit("/", 1)[-1]
        untagged = ":" not in last and "@" not in container.image
        policy = "Always" if untagged or last.endswith(":latest") else "IfNotPresent"
    return {"Always": "always", "IfNotPresent": "missing", "Never": "never"}[policy]


def _limits(container, path, errors, warnings):
    """(cpus, memory bytes) of resources.limits; other resources are warned about (nothing here provides them)."""
    cpus = memory = None
    for name, quantity in container.limits:
        field = f"{path}.resources.limits.{name}"
        try:
            value = parse_quantity(quantity)
        except (ValueError, ArithmeticError):
            errors.append(f"{field}: {quantity!r} is not a quantity an engine can take")
            continue
        if name == "cpu":
            if value and not Decimal("0.001") <= value <= MAX_CPUS:
                errors.append(f"{field}: {quantity} is outside 1m - {MAX_CPUS} CPUs")
            cpus = float(value) if value > 0 else None
        elif name == "memory":
            if value >= 2**62:
                errors.append(f"{field}: {quantity} is more memory than an engine can limit")
                continue
            memory = int(value.to_integral_value()) if value >= Decimal(6 * 2**20) else None
            if memory is None:
                warnings.append(f"{field}: {quantity} is below the 6 MiB a container engine accepts; not enforced")
        else:
            warnings.append(f"{field}: no such resource on this machine; not enforced")
    return cpus, memory


def _mounts(replica, container, path, errors, warnings, host_path):
    volumes = {v.name: v for v in replica.volumes}
    mounts = []
    for i, mount in enumerate(container.volume_mounts):
        volume = volumes.get(mount.name)
        if volume is None:
            errors.append(f"{path}.volumeMounts[{i}].name: no volume of the pod is called {mount.name!r}")
            continue
        if volume.source not in VOLUME_KINDS:
            errors.append(f"{path}.volumeMounts[{i}]: volume {mount.name!r} is a {volume.source} volume, which "
                          f"containers on one machine cannot have (only {' and '.join(VOLUME_KINDS)})")
            continue
        if mount.sub_path:  # a link swapped in between two starts would mount any host folder (CVE-2017-1002101)
            errors.append(f"{path}.volumeMounts[{i}].subPath: not supported in ringrun's containers: mount the "
                          "whole volume")
            continue
        if any(c in mount.mount_path for c in _PATH_SEPARATORS):
            errors.append(f"{path}.volumeMounts[{i}].mountPath: {mount.mount_path!r}: ':' and ',' are not allowed "
                          "in a path ringrun gives a container engine")
            continue
        if volume.source == "hostPath" and any(c in volume.path for c in _PATH_SEPARATORS):
            j = replica.volumes.index(volume)
            errors.append(f"{replica.pod_path}.volumes[{j}].hostPath.path: {volume.path!r}: ':' and ',' are not "
                          "allowed in a path ringrun gives a container engine")
            continue
        if volume.source == "hostPath" and host_path is not None and not host_path(volume.path):
            j = replica.volumes.index(volume)
            errors.append(f"{replica.pod_path}.volumes[{j}].hostPath.path: {volume.path!r} is not a folder this "
                          "server grants the job's namespace (the hostPaths of its --policy)")
            continue
        mounts.append(Mount(volume.source, mount.mount_path, mount.read_only, volume.name, volume.path,
                            volume.medium))
    mounted = {m.name for m in container.volume_mounts}
    for j, volume in enumerate(replica.volumes):
        if volume.source not in VOLUME_KINDS and volume.name not in mounted:
            warnings.append(f"{replica.pod_path}.volumes[{j}]: {volume.source} volume {volume.name!r} is not "
                            "provided on one machine (no container of ringrun's mounts it)")
    return mounts


def _user(container):
    if container.run_as_user is None:
        return None
    return str(container.run_as_user) + (f":{container.run_as_group}" if container.run_as_group is not None else "")


def _order(job):
    """(role, index) of every pod in start order: replicas a local run folds into others (MPI workers) first, as
    mpi-operator creates workers before their launcher; then the framework's local order."""
    local = frameworks.of(job).local_processes(job)
    others = [(r.role, i) for r in job.replicas for i in range(r.replicas) if (r.role, i) not in local]
    return tuple(others) + tuple(local)


def pod_spec(job, role, index, errors, warnings, host_path=None):
    """The PodSpec of replica (role, index); problems appended to `errors` / `warnings` as `field: message`;
    host_path(path) -> whether a hostPath volume may mount that folder (None: any)."""
    kind = kind_of_job(job)
    replica = job.replica(role)
    container = replica.container(job.main_container)
    position = replica.containers.index(container)
    path = f"{replica.pod_path}.containers[{position}]"
    if not container.image:
        errors.append(f"{path}.image: required to run the replica in a container")
    elif not valid_image(container.image):
        errors.append(f"{path}.image: {container.image!r} is not an image name a container engine can parse "
                      "([registry[:port]/]name[:tag][@digest], lowercase name)")
    operator = kind.operator_pod(job, role, index)
    name = kind.pod_name(job.name, role, index)
    env = dict(container.env)
    env.update(operator.env if operator else ())  # the operator's are appended to the container's: the last wins
    env.update({"RINGRUN_SPEC": f"{SPEC_DIR}/{SPEC_FILE}", "RINGRUN_ROLE": role, "RINGRUN_INDEX": str(index)})
    command, args = container.command, container.args
    if operator and operator.default_command and not command and not args:
        command = operator.default_command
    mounts = [Mount("spec", SPEC_DIR)]
    ssh_mode = 0
    if operator and operator.ssh:
        ssh_path = job.mpi.ssh_auth_mount_path
        ssh_mode = 0o600 if ssh_path == ROOT_SSH else 0o644
        mounts.append(Mount("ssh", ssh_path))
    if operator and operator.config:
        mounts.append(Mount("config", operator.config[0]))
    mounts += _mounts(replica, container, path, errors, warnings, host_path)
    targets = [m.target for m in mounts]
    for duplicate in sorted({t for t in targets if targets.count(t) > 1}):
        errors.append(f"{path}.volumeMounts: {duplicate} is mounted more than once (ringrun mounts the job spec at "
                      f"{SPEC_DIR} and an MPI job's ssh keys and hostfile where its operator does)")
    cpus, memory = _limits(container, path, errors, warnings)
    if container.working_dir and (not container.working_dir.startswith("/") or
                                  ".." in container.working_dir.split("/")):
        errors.append(f"{path}.workingDir: {container.working_dir!r} must be an absolute path without '..' in a "
                      "container")
    service = topology.service_name(job, role, index)
    names = [name, service, *frameworks.of(job).host_names(job, role, index)]
    names += [f"{name}.{job.name}.{job.namespace}.svc", f"{name}.{job.name}.{job.namespace}.svc.cluster.local",
              f"{service}.{job.namespace}.svc", f"{service}.{job.namespace}.svc.cluster.local"]
    return PodSpec(name=name, role=role, index=index, image=container.image or "", command=tuple(command),
                   args=tuple(args), env=tuple(env.items()), working_dir=container.working_dir,
                   mounts=tuple(mounts), hostname=name, aliases=tuple(dict.fromkeys(names)),
                   dns_search=operator.dns_search if operator else (), cpus=cpus, memory=memory,
                   user=_user(container), pull=pull_policy(container) if container.image else "never",
                   config=operator.config if operator else None, ssh_mode=ssh_mode,
                   restart_policy=replica.restart_policy)


def pod_specs(job, host_path=None):
    """(PodSpecs in start order, warnings). Raises SpecError listing every field that keeps a pod from running in
    a container; host_path as pod_spec's."""
    errors, warnings = [], []
    order = _order(job)
    if len(order) > MAX_PODS:
        raise SpecError([f"{job.kind} {job.namespace}/{job.name} has {len(order)} replicas; one machine runs at most "
                         f"{MAX_PODS} containers of a job"])
    pods = tuple(pod_spec(job, role, index, errors, warnings, host_path) for role, index in _order(job))
    if errors:
        raise SpecError(list(dict.fromkeys(errors)))
    return pods, tuple(dict.fromkeys(warnings))


def with_pull(pods, pull):
    """`pods` with every pull policy replaced (--pull never: nothing is pulled, whatever the spec says)."""
    return tuple(dataclasses.replace(p, pull=pull) for p in pods)

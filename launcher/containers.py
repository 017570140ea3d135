"""`ringrun run --containers` and `ringrun serve --containers`: every replica a container of its `image`.

What a cluster's operator and kubelet would do for the job's pods, on one machine (runtime/pods.py says what each
pod is; launcher/engine.py speaks to podman or docker):

1. images: each is looked for locally and pulled as its imagePullPolicy says (or as --pull overrides it); one that
   cannot be had fails the job before anything starts, naming the field and the image;
2. the pods' files in the job's private run directory: the job spec (mounted read-only at /etc/ringrun-job, where
   RINGRUN_SPEC points), the ssh Secret of an MPI job (a key pair made with ssh-keygen, modes as mpi-operator
   mounts them), the operator's ConfigMap (mpi-operator's hostfile, 0444), each pod's emptyDir folders, and each
   pod's environment as a private env file (values stay out of the process table);
3. one network per job (labelled with its owner, removed at the end) on which every pod has its host name and the
   DNS names of its Services (`<pod>.<job>.<ns>.svc`, `<job>-<role>-<i>`);
4. the execution core runs the pods as it runs processes: each replica is the engine's `run`, attached, under the
   supervisor (its output is the pod's log, its exit code the container's), so restart policies, backoffLimit,
   deadlines, cleanPodPolicy and stop requests work unchanged; stopping a replica also removes its container.
   Replicas a local run folds into another (MPI workers, which serve sshd) do not hold a finished job open: they
   are stopped when the job ends, whatever cleanPodPolicy says.
"""

import errno
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

from ringrun.runtime.errors import SetupError, SpecError
from ringrun.runtime.kinds import frameworks
from ringrun.runtime.plan import Plan
from ringrun.runtime.kinds.trainjob import with_runtime
from ringrun.runtime.pods import SPEC_FILE, pod_specs, with_pull

from . import files
from .engine import LABEL, Engine
from .execute import ReplicaSpec

PULLS = ("never", "missing", "always")


@dataclass(frozen=True)
class ContainerOptions:
    """engine: podman | docker | None (the first found); pull: never | missing | always, replacing every
    container's imagePullPolicy, or None; owner: the label every container and network gets (a server's id, so a
    restarted server removes what it left); host_path(path) -> whether a hostPath volume may mount that folder
    (None: any); state_dir: a private folder for the engine's files; environ: the engine client's variables (a
    server gives its own, never a job's: the engine reads its configuration from HOME), None: the caller's."""

    engine: str | None = None
    pull: str | None = None
    owner: str = "ringrun-run"
    host_path: Callable | None = None
    state_dir: str | None = None
    environ: dict | None = None  # the engine client's environment (the server's own), else the caller's


class ContainerProcesses:
    """The process layer of a job in containers (the supervisor's interface): start runs a pod's attached `run`
    under the supervisor; terminate also removes the stopped replicas' containers; close removes every container
    and the network. host_paths: replica name -> the resolved hostPath folders its container mounts, checked again
    before every start (a job may have put a link where a folder was); host_path(path): the grant, or None."""

    def __init__(self, supervisor, engine, containers, network, host_paths=None, host_path=None):
        self.supervisor, self.engine, self.containers, self.network = supervisor, engine, dict(containers), network
        self.host_paths, self.host_path = dict(host_paths or {}), host_path
        self._started = set()

    def start(self, name, argv, env, cwd=None):
        for path in self.host_paths.get(name, ()):
            if os.path.realpath(path) != path or (self.host_path is not None and not self.host_path(path)):
                raise PermissionError(errno.EACCES, f"hostPath {path} now leads elsewhere (a link); not mounted")
        if name in self._started:  # a restart: the last run's container is gone (--rm) or going
            self.engine.remove([self.containers[name]])
        self._started.add(name)
        return self.supervisor.start(name, argv, env, cwd)

    def poll(self):
        return self.supervisor.poll()

    def running(self):
        return self.supervisor.running()

    def terminate(self, children=None):
        stopped = self.supervisor.terminate(children)
        self.engine.remove([self.containers[c.name] for c in stopped if c.name in self.containers])
        return stopped

    def close(self):
        try:
            self.engine.remove(list(self.containers.values()))
        finally:
            self.engine.remove_network(self.network)


def _images(engine, job, pods, note):
    """Every image present, pulled as its policy says. Raises SetupError naming the field of the first pod using
    an image that cannot be had."""
    checked = {}
    for pod in pods:
        key = (pod.image, pod.pull)
        if key in checked:
            continue
        checked[key] = True
        field = _image_field(job, pod)
        present = engine.has_image(pod.image)
        if pod.pull == "never" or (pod.pull == "missing" and present):
            if not present:
                raise SetupError(f"{field}: image {pod.image!r} is not on this machine and may not be pulled "
                                 "(imagePullPolicy Never, or --pull never)")
            continue
        failure = engine.pull(pod.image)
        if failure is None:
            continue
        if present:  # Always, with the registry out of reach: the local copy, as `podman run --pull newer` does
            note(f"{field}: {pod.image!r} could not be pulled ({failure}); using the image on this machine")
            continue
        raise SetupError(f"{field}: image {pod.image!r} is not on this machine and cannot be pulled: {failure}")


def _image_field(job, pod):
    replica = job.replica(pod.role)
    container = replica.container(job.main_container)
    return f"{replica.pod_path}.containers[{replica.containers.index(container)}].image"


def _ssh_secret(folder, mode):
    """The `<job>-ssh` Secret as mpi-operator makes it: a new key pair (`id_rsa`, `id_rsa.pub`) and
    `authorized_keys`, each file `mode`. Raises SetupError."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SetupError("--containers: an MPI job's ssh keys are made with ssh-keygen, which is not installed "
                         "(apt-get install openssh-client)")
    os.makedirs(folder, mode=0o755)
    key = os.path.join(folder, "id_rsa")
    made = subprocess.run([keygen, "-q", "-t", "ecdsa", "-b", "521", "-N", "", "-C", "", "-f", key],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        raise SetupError(f"ssh-keygen: {made.stderr.strip() or made.returncode}")
    shutil.copyfile(key + ".pub", os.path.join(folder, "authorized_keys"))
    for name in ("id_rsa", "id_rsa.pub", "authorized_keys"):
        os.chmod(os.path.join(folder, name), mode)
    os.chmod(folder, 0o755)


def _write(path, text, mode):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    files.write_atomic(path, text.encode("utf-8"), mode=mode)
    os.chmod(path, mode)  # whatever the umask


ENV_FILE_LINE = 32 * 1024  # the engines read an env file by lines of at most 64 KiB


def _env_file(path, env):
    """The pod's variables as an env file (0600); returns those an env file cannot hold (a newline in the value, or
    a value too long for one line), for the command line."""
    def fits(key, value):
        return "\n" not in value and "\r" not in value and len(key) + len(value) < ENV_FILE_LINE
    _write(path, "".join(f"{key}={value}\n" for key, value in env if fits(key, value)), 0o600)
    return tuple((key, value) for key, value in env if not fits(key, value))


def _mounts(pod, run_dir, make_working_dir=False):
    """[(host path or None for a tmpfs, target, read_only, is a hostPath)] of a pod; its emptyDir folders are made
    (0777, as a kubelet makes them); a hostPath is given resolved (no link in it); make_working_dir: its workingDir,
    which the image lacks, as an empty tmpfs (Kubernetes makes a missing workingDir; podman 4.3 does not)."""
    found = [(None, pod.working_dir, False, False)] if make_working_dir else []
    for mount in pod.mounts:
        if mount.source in ("spec", "ssh", "config"):
            found.append((os.path.join(run_dir, mount.source), mount.target, True, False))
        elif mount.source == "hostPath":
            found.append((os.path.realpath(mount.host_path), mount.target, mount.read_only, True))
        elif mount.medium == "Memory":
            found.append((None, mount.target, False, False))
        else:
            folder = os.path.join(run_dir, "volumes", pod.name, mount.volume)
            os.makedirs(folder, exist_ok=True)
            os.chmod(folder, 0o777)
            found.append((folder, mount.target, mount.read_only, False))
    return found


def _as_given(obj):
    """The job as its user wrote it, as a ConfigMap of it would hold it: no status, no server-set metadata."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": kept, "spec": obj.get("spec")}


def prepare(job, document, run_dir, options, supervisor, note):
    """The job's pods as ReplicaSpecs (each plan's argv the engine's `run`) and their ContainerProcesses, with
    images pulled, files written and the network made. note(message) says what is not as the spec asks.
    Raises SpecError (a field no engine can run) and SetupError (no engine, an image that cannot be had)."""
    pods, warnings = pod_specs(job, options.host_path)
    for warning in warnings:
        note(f"warning: {warning}")
    if options.pull is not None:
        pods = with_pull(pods, options.pull)
    engine = Engine.open(options.engine, options.state_dir)
    if not engine.resolves_names():
        note("warning: podman's dnsname plugin is not installed: pods cannot reach each other by name (apt-get "
             "install golang-github-containernetworking-plugin-dnsname)")
    _images(engine, job, pods, note)
    engine.probe()
    _write(os.path.join(run_dir, "spec", SPEC_FILE), json.dumps(with_runtime(job, _as_given(document))), 0o444)
    ssh_modes = {p.ssh_mode for p in pods if p.ssh_mode}
    if ssh_modes:
        _ssh_secret(os.path.join(run_dir, "ssh"), max(ssh_modes))
    for _, entries in {p.config for p in pods if p.config}:  # mounted at each pod's config folder
        for name, text in entries:
            _write(os.path.join(run_dir, "config", name), text, 0o444)
    tag = secrets.token_hex(4)
    network = f"ringrun-{job.name[:40]}-{tag}"
    labels = {f"{LABEL}.owner": options.owner, f"{LABEL}.job": f"{job.namespace}.{job.name}"}
    engine.create_network(network, labels)
    deciders = frameworks.of(job).deciders(job)
    folded = set(frameworks.of(job).local_processes(job))
    specs, names, dirs, host_paths = [], {}, {}, {}
    try:
        for pod in pods:
            key = (pod.image, pod.working_dir)
            if pod.working_dir and key not in dirs:
                covered = any(pod.working_dir == m.target or pod.working_dir.startswith(m.target.rstrip("/") + "/")
                              for m in pod.mounts)
                dirs[key] = not covered and not engine.has_dir(pod.image, pod.working_dir)
            container = f"ringrun-{tag}-{pod.name}"
            extra = _env_file(os.path.join(run_dir, "env", f"{pod.name}.env"), pod.env)
            mounts = _mounts(pod, run_dir, dirs.get(key, False))
            argv = engine.run_argv(pod, container, network, os.path.join(run_dir, "env", f"{pod.name}.env"),
                                   mounts, labels, extra)
            plan = Plan(job.kind, pod.role, pod.index, run_dir, env=(), argv=tuple(argv))
            names[plan.name] = container
            host_paths[plan.name] = tuple(source for source, _, _, is_host in mounts if is_host)
            specs.append(ReplicaSpec(plan, pod.restart_policy, pod.role in deciders,
                                     serves=(pod.role, pod.index) not in folded,
                                     after=job.replica(pod.role).depends_on))
    except BaseException:
        engine.remove_network(network)
        raise
    return specs, ContainerProcesses(supervisor, engine, names, network, host_paths, options.host_path)

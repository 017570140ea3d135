"""The normalized, frozen job model every accepted API is parsed into.

Sequences are tuples and maps are tuples of `(key, value)` pairs, so a `JobSpec` cannot be changed once parsed.
Roles are lowercase (`launcher`, `worker`, `master`, `scheduler`, `server`, `tunertracker`, `tunerserver`, `tuner`);
`Replica.type` keeps the spelling of the spec (`Launcher`).
"""

from dataclasses import dataclass, field
from enum import StrEnum


class MPIImplementation(StrEnum):
    """The MPI library a job uses. The value is the spec's word (`mpiImplementation`); `cli` is the word of ringrun's
    command line (`--impl`, `--mpi`); `hydra` says whether it starts ranks with hydra (MPICH and Intel MPI)."""

    OPENMPI = "OpenMPI"
    INTEL = "Intel"
    MPICH = "MPICH"

    @property
    def cli(self):
        return _CLI_WORDS[self]

    @property
    def hydra(self):
        return self is not MPIImplementation.OPENMPI

    @classmethod
    def from_cli(cls, word):
        """The implementation named `word` (openmpi, intel, mpich) on the command line. Raises ValueError."""
        found = next((impl for impl, cli in _CLI_WORDS.items() if cli == word), None)
        if found is None:
            raise ValueError(f"must be one of {', '.join(_CLI_WORDS.values())}, got {word!r}")
        return found


_CLI_WORDS = {MPIImplementation.OPENMPI: "openmpi", MPIImplementation.INTEL: "intel", MPIImplementation.MPICH: "mpich"}


@dataclass(frozen=True)
class Port:
    container_port: int
    name: str | None = None


@dataclass(frozen=True)
class VolumeMount:
    """A container's volumeMount: the pod volume `name` at `mount_path` (its `sub_path` only, when given)."""

    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str | None = None


@dataclass(frozen=True)
class Volume:
    """A pod's volume: `source` is its kind (hostPath, emptyDir, configMap, ...); `path` a hostPath's folder;
    `medium` an emptyDir's ("" or Memory); `size_limit` an emptyDir's sizeLimit quantity."""

    name: str
    source: str
    path: str | None = None
    medium: str = ""
    size_limit: str | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[Port, ...] = ()
    working_dir: str | None = None
    volume_mounts: tuple[VolumeMount, ...] = ()
    limits: tuple[tuple[str, str], ...] = ()  # resources.limits: (resource, quantity)
    requests: tuple[tuple[str, str], ...] = ()  # resources.requests: (resource, quantity)
    image_pull_policy: str | None = None  # Always | IfNotPresent | Never; None: Kubernetes' default for the tag
    run_as_user: int | None = None  # securityContext.runAsUser
    run_as_group: int | None = None  # securityContext.runAsGroup

    def port(self, name):
        """The containerPort of the port called `name`, or None."""
        return next((p.container_port for p in self.ports if p.name == name), None)


@dataclass(frozen=True)
class OperatorPod:
    """What a job's operator adds to one replica's pod (a JobKind's `operator_pod`): variables in the main container
    (`env`), ConfigMap files mounted read-only (`config`: (folder, ((file name, text), ...)) or None), whether the
    job's ssh Secret is mounted at sshAuthMountPath (`ssh`), the command of a main container that gives neither
    command nor args (`default_command`, replacing the image's ENTRYPOINT), and DNS search domains."""

    env: tuple[tuple[str, str], ...] = ()
    config: tuple | None = None
    ssh: bool = False
    default_command: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replica:
    """One replica type of a job (a ReplicaSpec): how many pods, and what each runs."""

    type: str
    role: str
    replicas: int
    restart_policy: str
    containers: tuple[Container, ...]
    annotations: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Volume, ...] = ()
    pod_path: str = ""  # the field path of its pod template's spec (spec.mpiReplicaSpecs.Launcher.template.spec)
    # (role, "Ready" | "Complete"): replica types that must be all running, or all succeeded, before this one starts
    # (a JobSet's replicated job `dependsOn`)
    depends_on: tuple[tuple[str, str], ...] = ()

    def container(self, name):
        """The container called `name` (the framework's default container), else the first one."""
        return next((c for c in self.containers if c.name == name), self.containers[0])


@dataclass(frozen=True)
class RunPolicy:
    clean_pod_policy: str = "None"
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    suspend: bool = False
    scheduling_policy: bool = False  # whether runPolicy.schedulingPolicy was given (gang scheduling: the cluster's)
    managed_by: str | None = None


@dataclass(frozen=True)
class MPIOptions:
    implementation: MPIImplementation = MPIImplementation.OPENMPI
    slots_per_worker: int = 1
    ssh_auth_mount_path: str = "/root/.ssh"
    sshd_path: str = "/usr/sbin/sshd"
    launcher_creation_policy: str = "AtStartup"
    run_launcher_as_worker: bool = False
    mca: tuple[tuple[str, str], ...] = ()
    extra_mpi_args: tuple[str, ...] = ()
    mpi_home: str | None = None
    worker_cmd: tuple[str, ...] = ()
    # the launcher's command is mpirun over `worker_cmd`, made by ringrun (TensorStack's launcher has no command of
    # its own); else it is the launcher container's command, which calls mpirun itself (Kubeflow's)
    launcher_mpirun: bool = False
    # the operator may give the launcher an rsh agent of its own (kubexec.sh) with the hostfile (mpi-operator
    # v1alpha2 and v1 did; v2beta1 uses ssh)
    operator_agent: bool = False


@dataclass(frozen=True)
class ElasticPolicy:
    min_replicas: int | None = None
    max_replicas: int | None = None
    rdzv_backend: str = "c10d"
    rdzv_host: str | None = None
    rdzv_port: int | None = None
    rdzv_id: str | None = None
    rdzv_conf: tuple[tuple[str, str], ...] = ()
    max_restarts: int | None = None
    nproc_per_node: int | None = None
    standalone: bool = False


@dataclass(frozen=True)
class PyTorchOptions:
    nproc_per_node: str | None = None  # None: not given (training-operator defaults it to "auto")
    elastic: ElasticPolicy | None = None


@dataclass(frozen=True)
class MXNetOptions:
    job_mode: str = "MXTrain"


@dataclass(frozen=True)
class TrainerOptions:
    """A Trainer v2 TrainJob's runtime (runtimeRef kind and name), its mlPolicy source ("torch", "plain"), the
    trainer's pod count (numNodes), PET_NPROC_PER_NODE, the master's port (29500; a local run picks its own) and
    the runtime itself."""

    runtime_kind: str = "ClusterTrainingRuntime"
    runtime_name: str = ""
    policy: str = "plain"
    num_nodes: int = 1
    nproc_per_node: str = "1"
    master_port: int = 29500
    runtime: str = ""  # the runtime object it was merged with, as JSON (what a pod's entrypoint reads beside it)
    trainer_step: str = "node"  # the replicated job labelled ancestor `trainer`
    has_trainer: bool = True  # whether the TrainJob gives `spec.trainer` (the torch variables need one)
    managed_by: str | None = None  # spec.managedBy when another controller than Trainer's manages it (MultiKueue)


@dataclass(frozen=True)
class ReplicaOverride:
    """A new command for one role while a job is held (TensorStack's runMode debug replicaSpec or pause
    resumeSpec)."""

    role: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    skip_init_container: bool = False


@dataclass(frozen=True)
class RunMode:
    """How a job's commands run: "normal"; "debug" (each role runs its override's command, else sleeps, so that
    someone can log in; TensorStack's runMode.debug); "pause" (nothing is started; runMode.pause). `resume`: the
    commands a paused job would resume with."""

    mode: str = "normal"
    overrides: tuple[ReplicaOverride, ...] = ()
    resume: tuple[ReplicaOverride, ...] = ()

    def override(self, role):
        """The debug override of `role`, else None."""
        if self.mode != "debug":
            return None
        return next((o for o in self.overrides if o.role == role), None)


@dataclass(frozen=True)
class JobSpec:
    api_version: str
    kind: str
    name: str
    namespace: str
    framework: str  # "mpi" | "pytorch" | "mxnet" | "torch" (Trainer's torch policy) | "plain" (Trainer, no policy)
    replicas: tuple[Replica, ...]
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    mpi: MPIOptions | None = None
    pytorch: PyTorchOptions | None = None
    mxnet: MXNetOptions | None = None
    trainer: TrainerOptions | None = None
    run_mode: RunMode = field(default_factory=RunMode)
    # the name of every replica's main container (the one whose command, env and workingDir are the replica's);
    # a parser leaves it empty for its kind's default (the JobKind's main_container, filled in by runtime/parse.py)
    main_container: str = ""
    # (field path, why) of the fields of this kind that a local run accepts and does not act on
    ignored_locally: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()  # "field.path: message" for fields accepted in a form other than the schema's

    def replica(self, role):
        """The replica type with this role, or None."""
        return next((r for r in self.replicas if r.role == role), None)

    def count(self, role):
        replica = self.replica(role)
        return replica.replicas if replica else 0

    @property
    def roles(self):
        return tuple(r.role for r in self.replicas)

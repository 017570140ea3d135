"""The job kinds ringrun serves and runs, one `JobKind` each: the one table of (group, kind) -> everything that
differs between kinds at the API's edge (versions and their CRD schemas, parser, plural, the operator's name, what a
replace may change, the pod naming rule). runtime/parse.py, runtime/schema.py and the server's resources are made
from it; adding a kind is a file in this folder (its parser), its schemas in runtime/schemas/, an entry here and its
tests (docs/kinds.md has the steps).
"""

from dataclasses import dataclass
from typing import Callable

from .. import status as statuses
from . import common, kubeflow_mpi, mxnet, pytorch, tensorstack, trainer, trainjob

# the run-policy fields a replace may change where the kind keeps them (the seed's rule, per kind and version)
_KUBEFLOW_POLICY = frozenset({("spec", "runPolicy", "activeDeadlineSeconds"), ("spec", "runPolicy", "cleanPodPolicy"),
                              ("spec", "runPolicy", "suspend")})
_INLINE_POLICY = frozenset({("spec", "activeDeadlineSeconds"), ("spec", "cleanPodPolicy")})


def _kubeflow_replaceable(version):
    """MPIJob v1alpha2 and v1 keep activeDeadlineSeconds and cleanPodPolicy in spec too; v2beta1 only in runPolicy."""
    return _KUBEFLOW_POLICY | (_INLINE_POLICY if version in ("v1alpha2", "v1") else frozenset())


def _kubeflow_v1_rewrites(version):
    """training-operator's v1 CRDs keep the run policy under spec.runPolicy; the seeds' v1 jobs write it inline."""
    return (common.inline_run_policy,) if version == "v1" else ()


def _pod_per_role_and_index(job_name, role, index):
    return f"{job_name}-{role}-{index}"


def _mpi_operator_pod(job_name, role, index):
    """mpi-operator's pods: `<job>-launcher` (one launcher, a Job's pod) and `<job>-worker-<i>`."""
    return f"{job_name}-launcher" if role == "launcher" else f"{job_name}-{role}-{index}"


@dataclass(frozen=True)
class JobKind:
    """One served (group, kind).

    versions: served, the storage (newest) one first; schemas: version -> the vendored CRD schema's file name
    (runtime/schemas/, without .json); parse(doc, api_version, kind) -> JobSpec or None (problems recorded on doc);
    framework: what runs it ("mpi", "pytorch", "mxnet"); operator: the operator's name, as its pods' label
    `training.kubeflow.org/operator-name` says it; replaceable(version) -> the spec paths (tuples) a replace may
    change besides labels and annotations; pod_name(job name, role, index) -> the replica's pod (and host) name;
    pod_labels(job name, role, index) -> the labels its operator puts on a pod besides training.kubeflow.org's;
    status: how its API writes a job's status; replica_specs: the spec's field holding the replica specs by type
    (None: the kind has no such map); main_container: the name of a replica's main container unless the spec says
    another; rewrites(version) -> the compat rewrites (runtime/compat.py) of objects of that version, in order;
    operator_pod(job, role, index) -> the model.OperatorPod its operator makes of a replica (runtime/pods.py);
    uses_runtimes: its parser takes a fourth argument, runtimes(kind, namespace, name) -> a runtime object or None
    (runtime/kinds/trainjob.py), None when the object is checked alone.
    What differs by framework is runtime/kinds/frameworks.py's."""

    group: str
    kind: str
    plural: str
    versions: tuple
    schemas: dict
    parse: Callable
    framework: str
    operator: str
    replaceable: Callable
    pod_name: Callable = _pod_per_role_and_index
    pod_labels: Callable = lambda job_name, role, index: {}  # the operator's own labels, beside Kubeflow's
    status: statuses.StatusRules = statuses.KUBEFLOW
    short_names: tuple = ()
    replica_specs: str | None = None
    main_container: str = "mpi"
    rewrites: Callable = lambda version: ()
    operator_pod: Callable = lambda job, role, index: None
    pod_annotations: Callable = lambda job_name, role, index: {}  # the controller's annotations on a pod
    uses_runtimes: bool = False  # parse(doc, api_version, kind, runtimes): the kind names a runtime (TrainJob)
    schema_defaults: bool = False  # its CRD schema's defaults are set on every write, as kube-apiserver sets them
    mpi_host: Callable | None = None  # (job, role, index) -> an MPI pod's host name, where not mpi-operator's
    update_problems: Callable | None = None  # (old, new) -> [(path, message)] an update's own rules (the server's)

    def api_version(self, version):
        return f"{self.group}/{version}"

    @property
    def api_versions(self):
        return tuple(self.api_version(v) for v in self.versions)


KINDS = (
    JobKind("kubeflow.org", "MPIJob", "mpijobs", ("v2beta1", "v1", "v1alpha2"),
            {"v2beta1": "kubeflow.org-v2beta1-mpijob", "v1": "kubeflow.org-v1-mpijob",
             "v1alpha2": "kubeflow.org-v1alpha2-mpijob"},
            kubeflow_mpi.parse, "mpi", "mpi-operator", _kubeflow_replaceable, _mpi_operator_pod,
            lambda job_name, role, index: {"mpi_job_name": job_name, "mpi_role_type": role},  # v1alpha2 / v1
            replica_specs="mpiReplicaSpecs", rewrites=_kubeflow_v1_rewrites, operator_pod=kubeflow_mpi.operator_pod),
    JobKind("kubeflow.org", "PyTorchJob", "pytorchjobs", ("v1",), {"v1": "kubeflow.org-v1-pytorchjob"},
            pytorch.parse, "pytorch", "pytorchjob-controller", lambda version: _KUBEFLOW_POLICY,
            replica_specs="pytorchReplicaSpecs", main_container="pytorch", rewrites=_kubeflow_v1_rewrites,
            operator_pod=pytorch.operator_pod),
    # the seed's MXJob writes activeDeadlineSeconds and cleanPodPolicy in spec, as mxnet-operator did
    JobKind("kubeflow.org", "MXJob", "mxjobs", ("v1",), {"v1": "kubeflow.org-v1-mxjob"},
            mxnet.parse, "mxnet", "mxjob-controller", lambda version: _KUBEFLOW_POLICY | _INLINE_POLICY,
            replica_specs="mxReplicaSpecs", main_container="mxnet",
            rewrites=lambda version: _kubeflow_v1_rewrites(version) + (mxnet.tuner_labels,),
            operator_pod=mxnet.operator_pod),
    # T9k names every pod `<job>-<role>-<index>`, its launcher too (status.tasks says so)
    JobKind("batch.tensorstack.dev", "MPIJob", "mpijobs", ("v1beta1",),
            {"v1beta1": "batch.tensorstack.dev-v1beta1-mpijob"}, tensorstack.parse, "mpi", "ringrun",
            lambda version: frozenset({("spec", "runPolicy", "cleanUpWorkers")}), status=statuses.TENSORSTACK,
            main_container=tensorstack.CONTAINER, rewrites=lambda version: (tensorstack.boolean_clean_up,),
            operator_pod=tensorstack.operator_pod),
    # Trainer v2: a TrainJob is merged with the runtime it names; the framework is the runtime's mlPolicy
    JobKind("trainer.kubeflow.org", "TrainJob", "trainjobs", ("v1alpha1",),
            {"v1alpha1": "trainer.kubeflow.org-v1alpha1-trainjob"}, trainjob.parse, "trainer", "trainer",
            lambda version: frozenset({("spec", "suspend"), ("spec", "runtimePatches")}), trainjob.pod_name,
            trainjob.pod_labels, status=statuses.TRAINER, main_container=trainjob.NODE,
            operator_pod=trainjob.operator_pod, pod_annotations=trainjob.pod_annotations, uses_runtimes=True,
            schema_defaults=True, mpi_host=trainjob.mpi_host, update_problems=trainjob.update_problems),
)


@dataclass(frozen=True)
class StoredKind:
    """A served (group, kind) that is kept, not run: its objects are validated by their vendored CRD schema (with
    the schema's defaults applied, as kube-apiserver applies a CRD's) and by `check(obj, old) -> [(path, message)]`
    (the CEL rules and webhooks the schema cannot say; `old` is the stored object of an update, else None). A
    replace may change anything but what `check` says is immutable. Trainer's runtimes are the first."""

    group: str
    kind: str
    plural: str
    versions: tuple
    schemas: dict
    check: Callable
    namespaced: bool = True
    short_names: tuple = ()
    printer_columns: tuple = ()  # the CRD's additionalPrinterColumns: (name, type, jsonPath)

    def api_version(self, version):
        return f"{self.group}/{version}"


_TRAINER = "trainer.kubeflow.org"
STORED = (
    StoredKind(_TRAINER, "TrainingRuntime", "trainingruntimes", ("v1alpha1",),
               {"v1alpha1": "trainer.kubeflow.org-v1alpha1-trainingruntime"}, trainer.runtime_problems),
    StoredKind(_TRAINER, "ClusterTrainingRuntime", "clustertrainingruntimes", ("v1alpha1",),
               {"v1alpha1": "trainer.kubeflow.org-v1alpha1-clustertrainingruntime"}, trainer.runtime_problems,
               namespaced=False),
)


def stored_kind_of(api_version, kind):
    """The StoredKind of objects of `api_version` and `kind`, else None."""
    group, _, version = (api_version or "").rpartition("/")
    return next((k for k in STORED if k.group == group and k.kind == kind and version in k.versions), None)


def kind_of(api_version, kind):
    """The JobKind serving objects of `api_version` and `kind`, else None."""
    group, _, version = (api_version or "").rpartition("/")
    return next((k for k in KINDS if k.group == group and k.kind == kind and version in k.versions), None)


def of(job):
    """The JobKind of a JobSpec."""
    return kind_of(job.api_version, job.kind)


def by_api_version():
    """{(apiVersion, kind): JobKind} of every served version."""
    return {(k.api_version(v), k.kind): k for k in KINDS for v in k.versions}

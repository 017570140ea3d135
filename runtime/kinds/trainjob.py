"""Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1, kubeflow/trainer v2.3.0): a job that names its
runtime (`spec.runtimeRef`: a namespace's TrainingRuntime or a ClusterTrainingRuntime) and overrides parts of it.

A TrainJob is parsed in two steps, as Trainer admits one:
- alone (`runtimes` None): its schema's CEL rules (name, storageUri, managedBy) and what needs no runtime;
- with its runtime (`runtimes(kind, namespace, name) -> the runtime object or None`): the runtime must exist
  (pkg/runtime/core/{cluster,}trainingruntime.go ValidateObjects), the plugins' rules hold (torch: no reserved
  PET_* variable in trainer.env), and the two are merged as Trainer's framework merges them into a JobSet:
  `runtimePatches` in order, then the trainer's image, command, args, env and resourcesPerNode on the `node`
  container of the replicated job labelled ancestor `trainer` (plugins/jobset/builder.go Trainer), its pod count
  numNodes (plugins/torch/torch.go EnforceMLPolicy). Each replicated job becomes one replica type, its role the
  replicated job's name; pod `<job>-<rjob>-0-<completion index>` (JobSet's naming).

The framework is the runtime's mlPolicy: `torch` (Trainer's torch plugin variables, see `torch_env`), `mpi` (a
launcher and its nodes, as Trainer's MPI plugin makes them: the `mpi` framework's launcher and workers) or `plain`
(no policy: each pod runs its command). Pure.
"""

import copy
import dataclasses
import functools
import importlib.resources
import json
import re

import yaml

from .. import topology
from ..model import JobSpec, MPIImplementation, MPIOptions, OperatorPod, Replica, RunPolicy, TrainerOptions
from . import common
from .trainer import ANCESTOR_LABEL, DATASET_INITIALIZER, MODEL_INITIALIZER, NODE, _dict, _list
from .trainer import TRAINER as TRAINER_ANCESTOR

GROUP = "trainer.kubeflow.org"
CLUSTER_RUNTIME, RUNTIME = "ClusterTrainingRuntime", "TrainingRuntime"
INITIALIZERS = {DATASET_INITIALIZER: "dataset", MODEL_INITIALIZER: "model"}  # ancestor -> spec.initializer.*
MANAGERS = ("trainer.kubeflow.org/trainjob-controller", "kueue.x-k8s.io/multikueue")
# constants.TorchRunReservedEnvNames
TORCH_RESERVED = ("PET_MASTER_ADDR", "PET_MASTER_PORT", "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE")
# constants.MPIReservedEnvNames
MPI_RESERVED = ("OMPI_MCA_orte_default_hostfile", "OMPI_MCA_orte_keep_fqdn_hostnames",
                "OMPI_MCA_orte_set_default_slots", "OMPI_MCA_plm_rsh_args")
LAUNCHER = "launcher"
MPI_CONFIG_DIR, MPI_SSH_ATTEMPTS = "/etc/mpi", "-o ConnectionAttempts=10"
# the mlPolicy sources ringrun runs (-> the JobSpec's framework), and what each of the others lacks here
FRAMEWORKS = {"torch": "torch", "mpi": "mpi"}
_NOT_RUN = {"jax": "ringrun does not run JAX runtimes (mlPolicy.jax)",
            "xgboost": "ringrun does not run XGBoost runtimes (mlPolicy.xgboost)",
            "flux": "ringrun does not run Flux runtimes (mlPolicy.flux)"}
_RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.+$")


@functools.cache
def _published():
    folder = importlib.resources.files("ringrun.runtime").joinpath("trainer_runtimes")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return tuple(yaml.safe_load(folder.joinpath(name).read_text()) for name in names)


def published_runtimes():
    """Trainer's published ClusterTrainingRuntimes at the vendored release (runtime/trainer_runtimes/, copied
    unchanged: SOURCE says from where), by file name: [object], each a new copy."""
    return [copy.deepcopy(r) for r in _published()]


def published_lookup(kind, namespace, name):
    """runtimes(kind, namespace, name) over the published runtimes: where `ringrun run` finds a TrainJob's runtime
    that its file does not hold."""
    if kind != CLUSTER_RUNTIME:
        return None
    return next((copy.deepcopy(r) for r in _published() if r["metadata"]["name"] == name), None)


def rjob_of(role):
    """The replicated job of a role: the MPI policy's workers (ringrun's role `worker`) are Trainer's `node`."""
    return NODE if role == "worker" else role


def pod_name(job_name, role, index):
    """JobSet's pod: `<jobset>-<replicated job>-<job index>-<completion index>` (one Job per replicated job)."""
    return f"{job_name}-{rjob_of(role)}-0-{index}"


def mpi_host(job, role, index=0):
    """A pod's endpoint in the MPI hostfile: `<pod>.<trainjob>` (plugins/jobset/jobset.go IdentifyPodNetwork; the
    subdomain is the TrainJob's name)."""
    return f"{pod_name(job.name, role, index)}.{job.name}"


def pod_labels(job_name, role, index):
    """The labels JobSet and the Job controller put on a pod, which the Kubeflow SDK selects by."""
    return {"jobset.sigs.k8s.io/jobset-name": job_name, "jobset.sigs.k8s.io/replicatedjob-name": rjob_of(role),
            "jobset.sigs.k8s.io/job-index": "0", "batch.kubernetes.io/job-completion-index": str(index)}


def with_runtime(job, document):
    """The spec a TrainJob's pod reads (`document`, the TrainJob as given): a List of its runtime and it, so that
    `ringrun entrypoint` in the pod merges them as the server did; other jobs' `document` as it is."""
    if job.trainer is None or not job.trainer.runtime:
        return document
    return {"apiVersion": "v1", "kind": "List", "items": [json.loads(job.trainer.runtime), document]}


def pod_annotations(job_name, role, index):
    """The Job controller's annotation on an Indexed Job's pod."""
    return {"batch.kubernetes.io/job-completion-index": str(index)}


def runtime_ref(spec):
    """(kind, name) of `spec.runtimeRef` with the CRD's defaults, from a plain spec mapping."""
    ref = spec.get("runtimeRef") if isinstance(spec, dict) else None
    ref = ref if isinstance(ref, dict) else {}
    kind, name = ref.get("kind") or CLUSTER_RUNTIME, ref.get("name")
    return (kind if isinstance(kind, str) else CLUSTER_RUNTIME), (name if isinstance(name, str) else None)


def _upsert(items, new, key="name"):
    """`items` (a list of mappings) with each of `new` replacing the one of the same `key`, else appended."""
    result = list(items)
    for item in new:
        at = next((i for i, old in enumerate(result) if _dict(old).get(key) == _dict(item).get(key)), None)
        if at is None:
            result.append(copy.deepcopy(item))
        else:
            result[at] = copy.deepcopy(item)
    return result


def _patch_containers(containers, patches):
    """A runtime patch's containers: env and volumeMounts upserted, securityContext replaced, by container name."""
    result = [copy.deepcopy(c) for c in containers]
    for patch in patches:
        target = next((c for c in result if _dict(c).get("name") == _dict(patch).get("name")), None)
        if target is None:
            continue
        target["env"] = _upsert(_list(target.get("env")), _list(patch.get("env")))
        if patch.get("volumeMounts"):
            target["volumeMounts"] = _upsert(_list(target.get("volumeMounts")), _list(patch.get("volumeMounts")),
                                             key="mountPath")
        if patch.get("securityContext") is not None:
            target["securityContext"] = copy.deepcopy(patch["securityContext"])
    return result


def _patch_metadata(meta, patch):
    for key in ("labels", "annotations"):
        if _dict(patch.get(key)):
            meta[key] = {**_dict(meta.get(key)), **patch[key]}


def _apply_patch(rjobs, patch):
    """One `runtimePatches[]` entry applied to the replicated jobs (by name), as Trainer's apply merges it."""
    spec = _dict(_dict(_dict(patch.get("trainingRuntimeSpec")).get("template")).get("spec"))
    for rjob_patch in _list(spec.get("replicatedJobs")):
        rjob = next((r for r in rjobs if _dict(r).get("name") == _dict(rjob_patch).get("name")), None)
        if rjob is None:
            continue
        job_patch = _dict(rjob_patch.get("template"))
        job = rjob.setdefault("template", {})
        _patch_metadata(job.setdefault("metadata", {}), _dict(job_patch.get("metadata")))
        pod_patch = _dict(_dict(job_patch.get("spec")).get("template"))
        pod = job.setdefault("spec", {}).setdefault("template", {})
        _patch_metadata(pod.setdefault("metadata", {}), _dict(pod_patch.get("metadata")))
        pod_spec_patch = _dict(pod_patch.get("spec"))
        pod_spec = pod.setdefault("spec", {})
        for key in ("serviceAccountName", "securityContext", "nodeSelector", "affinity", "tolerations",
                    "schedulingGates", "terminationGracePeriodSeconds", "imagePullSecrets"):
            if key in pod_spec_patch:
                pod_spec[key] = copy.deepcopy(pod_spec_patch[key])
        if pod_spec_patch.get("volumes"):
            pod_spec["volumes"] = _upsert(_list(pod_spec.get("volumes")), pod_spec_patch["volumes"])
        for key in ("containers", "initContainers"):
            if pod_spec_patch.get(key):
                pod_spec[key] = _patch_containers(_list(pod_spec.get(key)), pod_spec_patch[key])


def _containers(rjob):
    """The containers of a replicated job's pod template (the list itself, to change in place)."""
    pod_spec = _dict(_dict(_dict(_dict(_dict(rjob).get("template")).get("spec")).get("template")).get("spec"))
    return [c for c in _list(pod_spec.get("containers")) if isinstance(c, dict)]


def ancestor(rjob):
    """The `trainer.kubeflow.org/trainjob-ancestor-step` of a replicated job, else None."""
    rjob = _dict(rjob)
    return _dict(_dict(_dict(rjob.get("template")).get("metadata")).get("labels")).get(ANCESTOR_LABEL)


def merged(trainjob, runtime):
    """The replicated jobs (plain mappings) of `runtime`'s JobSet template with `trainjob`'s patches and trainer
    overrides applied, and the trainer's pod count: (replicated jobs, numNodes). Neither argument is changed."""
    spec = _dict(trainjob.get("spec"))
    runtime_spec = _dict(runtime.get("spec"))
    rjobs = copy.deepcopy([r for r in _list(_dict(_dict(runtime_spec.get("template")).get("spec")).get(
        "replicatedJobs")) if isinstance(r, dict)])
    for patch in _list(spec.get("runtimePatches")):
        _apply_patch(rjobs, _dict(patch))
    trainer = _dict(spec.get("trainer"))
    nodes = next((n for n in (trainer.get("numNodes"), _dict(runtime_spec.get("mlPolicy")).get("numNodes"))
                  if isinstance(n, int) and not isinstance(n, bool) and n > 0), 1)
    initializer = _dict(spec.get("initializer"))
    for rjob in rjobs:
        step = ancestor(rjob)
        source = _dict(initializer.get(INITIALIZERS.get(step)))
        if source:  # plugins/jobset/builder.go Initializer: STORAGE_URI and the env (secretRef: the cluster's)
            for container in _containers(rjob):
                if _dict(container).get("name") == step:
                    given = [{"name": "STORAGE_URI", "value": source["storageUri"]}] if source.get("storageUri") else []
                    container["env"] = _upsert(_list(container.get("env")), given + _list(source.get("env")))
        # the trainer's env also reaches the nodes of an MPI runtime whose launcher is a node (builder.go Trainer)
        if step != TRAINER_ANCESTOR:
            if rjob.get("name") == NODE and _launcher_is_node(runtime):
                for container in _containers(rjob):
                    if _dict(container).get("name") == NODE:
                        container["env"] = _upsert(_list(container.get("env")), _list(trainer.get("env")))
            continue
        for container in _containers(rjob):
            if _dict(container).get("name") != NODE:
                continue
            for key in ("image", "command", "args"):
                if trainer.get(key) is not None:
                    container[key] = copy.deepcopy(trainer[key])
            container["env"] = _upsert(_list(container.get("env")), _list(trainer.get("env")))
            if trainer.get("resourcesPerNode") is not None:
                container["resources"] = copy.deepcopy(trainer["resourcesPerNode"])
    return rjobs, nodes


def _mpi_policy(runtime):
    """The runtime's mlPolicy.mpi with the CRD's defaults."""
    mpi = _dict(_dict(_dict(runtime.get("spec")).get("mlPolicy")).get("mpi"))
    return {"numProcPerNode": 1, "mpiImplementation": "OpenMPI", "sshAuthMountPath": "/root/.ssh",
            "runLauncherAsNode": False, **{k: v for k, v in mpi.items() if v is not None}}


def _launcher_is_node(runtime):
    return policy_of(runtime) == "mpi" and bool(_mpi_policy(runtime)["runLauncherAsNode"])


def policy_of(runtime):
    """The name of the runtime's mlPolicy source (torch, mpi, ...), else "plain"."""
    policy = _dict(_dict(runtime.get("spec")).get("mlPolicy"))
    return next((name for name in ("torch", "mpi", "jax", "xgboost", "flux") if name in policy), "plain")


def _check_alone(doc, name, spec):
    """The TrainJob CRD's CEL rules that need no runtime."""
    if isinstance(name, str):
        if not _RFC1035.match(name):
            doc["metadata"]["name"].error("metadata.name must match RFC 1035 DNS label format")
        elif len(name) > 63:
            doc["metadata"]["name"].error("metadata.name must be no more than 63 characters")
    managed = spec["managedBy"].string()
    if managed is not None and managed not in MANAGERS:
        spec["managedBy"].error("ManagedBy must be trainer.kubeflow.org/trainjob-controller or "
                                "kueue.x-k8s.io/multikueue if set")
    for source in ("dataset", "model"):
        uri = spec["initializer"][source]["storageUri"]
        value = uri.string()
        if value and not _URI.match(value):
            uri.error("storageUri may be empty, or it must be a valid URI (scheme://...)")
    spec["runtimeRef"]["name"].string(required=True, nonempty=True)


def parse(doc, api_version, kind, runtimes=None):
    """doc -> JobSpec or None (problems on doc). Without `runtimes`, the TrainJob alone is checked and the JobSpec
    has no replicas (what the API checks before its admission step resolves the runtime)."""
    name, namespace, spec = common.job_spec(doc)
    if spec is None:
        return None
    _check_alone(doc, doc["metadata"]["name"].value, spec)
    suspend = bool(spec["suspend"].boolean(default=False))
    deadline = spec["activeDeadlineSeconds"].integer(minimum=1, maximum=None)
    # a JobSet that has finished (succeeded or failed) deletes its Jobs still active: the pods still running stop
    run_policy = RunPolicy(clean_pod_policy="Running", active_deadline_seconds=deadline, suspend=suspend)
    manager = spec["managedBy"].string()
    ref_kind, ref_name = runtime_ref(spec.value)
    options = TrainerOptions(runtime_kind=ref_kind, runtime_name=ref_name or "",
                             managed_by=None if manager in (None, MANAGERS[0]) else manager)
    if runtimes is None or not ref_name:
        return JobSpec(api_version, kind, name, namespace, "plain", (), run_policy, trainer=options,
                       main_container=NODE)
    group = _dict(_dict(spec.value).get("runtimeRef")).get("apiGroup") or GROUP
    if ref_kind not in (RUNTIME, CLUSTER_RUNTIME) or group != GROUP:  # the trainjob webhook's registry key
        spec["runtimeRef"].error(f"unsupported runtime: {ref_kind}.{group}")
        return None
    runtime = runtimes(ref_kind, namespace, ref_name)
    if runtime is None:
        plural = "clustertrainingruntimes" if ref_kind == CLUSTER_RUNTIME else "trainingruntimes"
        word = "clusterTrainingRuntime" if ref_kind == CLUSTER_RUNTIME else "trainingRuntime"
        spec["runtimeRef"].error(f'{plural}.{GROUP} "{ref_name}" not found: specified {word} must be created '
                                 "before the TrainJob is created")
        return None
    return _resolve(doc, spec, runtime, api_version, kind, name, namespace, run_policy, options)


def _resolve(doc, spec, runtime, api_version, kind, name, namespace, run_policy, options):
    policy = policy_of(runtime)
    if policy in _NOT_RUN:
        spec["runtimeRef"].error(f"{_NOT_RUN[policy]}: runtime {options.runtime_name!r}")
        return None
    trainer = spec["trainer"]
    names = {e.get("name") for e in _list(trainer.value.get("env") if isinstance(trainer.value, dict) else None)
             if isinstance(e, dict)}
    reserved = sorted(names & set({"torch": TORCH_RESERVED, "mpi": MPI_RESERVED}.get(policy, ())))
    if reserved:
        trainer["env"].error(f"must not have reserved envs, invalid envs configured: [{' '.join(reserved)}]")
    _jobset_problems(spec, runtime)
    rjobs, nodes = merged(doc.value, runtime)
    mpi = _mpi_policy(runtime) if policy == "mpi" else None
    if mpi is not None:
        names = [r.get("name") for r in rjobs]
        if LAUNCHER not in names or NODE not in names or len(names) != 2:
            spec["runtimeRef"].error(f"runtime {options.runtime_name!r}: ringrun runs an MPI runtime of two "
                                     f"replicated jobs, {LAUNCHER!r} and {NODE!r}; it has {names}")
            return None
    if not any(ancestor(r) == TRAINER_ANCESTOR for r in rjobs):
        spec["runtimeRef"].error(f"runtime {options.runtime_name!r} has no replicated job labelled "
                                 f"{ANCESTOR_LABEL}: {TRAINER_ANCESTOR}")
        return None
    replicas = []
    # the merged template's problems name the runtime's fields, where they come from
    where_from = f"{options.runtime_kind}/{options.runtime_name}: spec.template.spec"
    merged_doc = type(doc)({"replicatedJobs": rjobs}, where_from, doc.problems)
    earlier = []
    for where, rjob in zip(merged_doc["replicatedJobs"].elements(), rjobs):
        depends_on = []
        for item in where["dependsOn"].elements():
            if item.mapping(required=True) is None:
                continue
            after = item["name"].string(required=True)
            if after is not None and after not in earlier:
                item["name"].error(f"must name a replicated job listed before this one, got {after!r}")
                after = None
            status = item["status"].string(required=True, choices=("Ready", "Complete"))
            if after and status:
                depends_on.append((after, status))
        earlier.append(str(rjob.get("name")))
        if (rjob.get("replicas") or 1) != 1:
            where["replicas"].error("ringrun runs one Job per replicated job; replicas must be 1")
            continue
        trainer_job = ancestor(rjob) == TRAINER_ANCESTOR
        job_spec = _dict(_dict(rjob.get("template")).get("spec"))
        count = nodes if trainer_job else (job_spec.get("parallelism") or 1)
        if mpi is not None:  # plugins/mpi/mpi.go EnforceMLPolicy: a launcher, and the other nodes
            count = 1 if rjob.get("name") == LAUNCHER else (max(nodes - 1, 1) if mpi["runLauncherAsNode"] else nodes)
        template = where["template"]["spec"]["template"]
        containers, annotations, volumes = common.pod_template(template)
        if not containers:
            continue
        if trainer_job and NODE not in [c.name for c in containers]:
            template["spec"]["containers"].error(f"the trainer's replicated job needs a container named {NODE!r}")
        role = "worker" if mpi is not None and rjob.get("name") == NODE else str(rjob.get("name"))
        if mpi is None and role == "worker":
            where["name"].error("a replicated job called 'worker' is not run by ringrun (the name of its MPI "
                                "workers' role)")
            continue
        depends_on = [("worker" if mpi is not None and after == NODE else after, status)
                      for after, status in depends_on]
        # JobSet's webhook defaults a pod template's restartPolicy to OnFailure (pkg/webhooks/jobset_webhook.go)
        restart = template["spec"]["restartPolicy"].string(default="OnFailure", choices=("Never", "OnFailure"))
        replicas.append(Replica(str(rjob.get("name")), role, count, restart or "OnFailure", containers, annotations,
                                volumes,
                                template["spec"].path, tuple(depends_on)))
    if doc.problems:
        return None
    # the trainer's Job retries its pods up to its backoffLimit (a Job's default: 6); one count for the TrainJob here
    backoff = next((_dict(_dict(r.get("template")).get("spec")).get("backoffLimit") for r in rjobs
                    if ancestor(r) == TRAINER_ANCESTOR), None)
    if isinstance(backoff, int) and not isinstance(backoff, bool) and backoff >= 0:
        run_policy = dataclasses.replace(run_policy, backoff_limit=backoff)
    nproc = _nproc(spec["trainer"], rjobs) if mpi is None else str(
        spec["trainer"]["numProcPerNode"].integer(minimum=1) or mpi["numProcPerNode"])
    step = next((str(r.get("name")) for r in rjobs if ancestor(r) == TRAINER_ANCESTOR), NODE)
    options = dataclasses.replace(options, policy=policy, num_nodes=nodes, nproc_per_node=nproc, trainer_step=step,
                                  has_trainer=isinstance(spec["trainer"].value, dict),
                                  runtime=json.dumps(runtime, sort_keys=True))
    mpi_options = None
    if mpi is not None:
        mpi_options = MPIOptions(implementation=MPIImplementation(mpi["mpiImplementation"] or "OpenMPI"),
                                 slots_per_worker=int(nproc), ssh_auth_mount_path=mpi["sshAuthMountPath"],
                                 run_launcher_as_worker=bool(mpi["runLauncherAsNode"]))
        order = {LAUNCHER: 0, "worker": 1}  # the mpi framework's order: the launcher first
        replicas.sort(key=lambda r: order[r.role])
    ignored = (("spec.managedBy", f"{options.managed_by!r} manages the TrainJob in a cluster (ringrun serve leaves it "
                                  "to it); ringrun runs it here"),) if options.managed_by else ()
    return JobSpec(api_version, kind, name, namespace, FRAMEWORKS.get(policy, "plain"), tuple(replicas), run_policy,
                   mpi=mpi_options, trainer=options, main_container=NODE, ignored_locally=ignored)


INITIALIZER_VOLUME = "initializer"  # plugins/jobset/constants VolumeNameInitializer
_DOMAIN_PREFIXED = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/\S+$")


def _jobset_problems(spec, runtime):
    """The JobSet plugin's Validate (plugins/jobset/jobset.go): an initializer the TrainJob configures must be in
    the runtime, with its container and the `initializer` volumeMount; a runtime patch's manager is a domain-prefixed
    path, and it names replicated jobs and containers the runtime has, setting no env on the node or initializer
    containers. Messages Trainer's."""
    rjobs = [r for r in _list(_dict(_dict(_dict(runtime.get("spec")).get("template")).get("spec")).get(
        "replicatedJobs")) if isinstance(r, dict)]
    containers = {}
    for rjob in rjobs:
        pod_spec = _dict(_dict(_dict(_dict(rjob.get("template")).get("spec")).get("template")).get("spec"))
        containers[rjob.get("name")] = {_dict(c).get("name"): c for key in ("initContainers", "containers")
                                        for c in _list(pod_spec.get(key))}
    initializer = _dict(spec.value).get("initializer")
    for step, source in INITIALIZERS.items():
        if not _dict(_dict(initializer).get(source)):
            continue
        if step not in containers:
            spec["runtimeRef"].error(f"must have {step} job when trainJob is configured with input {source}Config")
        elif step not in containers[step]:
            spec["runtimeRef"].error(f"must have container with name - {step} in the {step} job")
        elif not any(_dict(m).get("name") == INITIALIZER_VOLUME
                     for m in _list(_dict(containers[step][step]).get("volumeMounts"))):
            spec["runtimeRef"].error(f"must have volumeMount with name - {INITIALIZER_VOLUME} in container {step} of "
                                     f"the {step} job")
    patches = spec["runtimePatches"]
    for patch in patches.elements():
        manager = _dict(patch.value).get("manager")
        if not isinstance(manager, str) or not manager:
            patch["manager"].error("Required value")
        elif not _DOMAIN_PREFIXED.match(manager):
            patch["manager"].error('must be a domain-prefixed path (such as "acme.io/foo")')
        template = _dict(_dict(_dict(patch.value).get("trainingRuntimeSpec")).get("template"))
        for rjob in _list(_dict(template.get("spec")).get("replicatedJobs")):
            name = _dict(rjob).get("name")
            if name not in containers:
                patches.error("must not have replicated job that doesn't exist in the runtime job template")
                continue
            pod = _dict(_dict(_dict(_dict(_dict(rjob).get("template")).get("spec")).get("template")).get("spec"))
            for key, word in (("initContainers", "initContainer"), ("containers", "container")):
                for container in _list(pod.get(key)):
                    cname = _dict(container).get("name")
                    if cname not in containers[name]:
                        patches.error(f"must not have {word} that doesn't exist in the runtime job {name}")
                    elif key == "containers" and _dict(container).get("env") and cname in (NODE, *INITIALIZERS):
                        patches.error("must not have envs for the dataset-initializer, model-initializer, node "
                                      "containers")


def update_problems(old, new):
    """[(path, message)] of a TrainJob's update that only the old object can tell (the JobSet plugin's
    checkRuntimePatchesImmutability): runtimePatches change only while the TrainJob is suspended, before or after."""
    old_spec, new_spec = _dict(_dict(old).get("spec")), _dict(_dict(new).get("spec"))
    if old_spec.get("runtimePatches") == new_spec.get("runtimePatches"):
        return []
    if old_spec.get("suspend") is True or new_spec.get("suspend") is True:
        return []
    return [("spec.runtimePatches", "Forbidden: RuntimePatches can only be modified when the TrainJob is suspended "
                                    "before or after the update")]


def _nproc(trainer, rjobs):
    """PET_NPROC_PER_NODE: trainer.numProcPerNode, else `auto`, which Trainer turns into the node's cpu count (its
    request, else its limit; at least 1) when it asks for no GPU (plugins/torch/torch.go getNumCPUPerNode)."""
    given = trainer["numProcPerNode"].integer(minimum=1)
    if given is not None:
        return str(given)
    resources = {}
    for rjob in rjobs:
        if ancestor(rjob) == TRAINER_ANCESTOR:
            node = next((c for c in _containers(rjob) if _dict(c).get("name") == NODE), {})
            resources = _dict(_dict(node).get("resources"))
    limits, requests = _dict(resources.get("limits")), _dict(resources.get("requests"))
    if any("gpu" in key and _whole_cpus(value) > 0 for key, value in {**requests, **limits}.items()):
        return "auto"
    cpus = _whole_cpus(requests.get("cpu")) or _whole_cpus(limits.get("cpu"))
    return str(max(1, cpus))


def _whole_cpus(quantity):
    """resource.Quantity.Value() of a cpu quantity: whole cores, rounded up ("500m" -> 1, "2" -> 2)."""
    if quantity is None:
        return 0
    text = str(quantity)
    if text.endswith("m"):
        return -(-int(float(text[:-1])) // 1000)
    try:
        return int(-(-float(text) // 1))
    except ValueError:
        return 0


def torch_env(job, role, index):
    """What Trainer's torch plugin (plugins/torch/torch.go EnforceMLPolicy) gives the trainer's `node` container:
    PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK (the completion index), PET_MASTER_ADDR `<job>-node-0-0.<job>`
    and PET_MASTER_PORT 29500 (a local run gives it a port of its own)."""
    return {"PET_NNODES": str(job.trainer.num_nodes), "PET_NPROC_PER_NODE": job.trainer.nproc_per_node,
            "PET_NODE_RANK": str(index), "PET_MASTER_ADDR": master_host(job),
            "PET_MASTER_PORT": str(job.trainer.master_port)}


def master_host(job):
    return f"{pod_name(job.name, NODE, 0)}.{job.name}"


def replica_env(job, role, index):
    """Every pod of an Indexed Job gets JOB_COMPLETION_INDEX; the pods of the trainer's replicated job (the one
    labelled ancestor `trainer`) the torch policy's variables, when the TrainJob has a trainer."""
    env = {"JOB_COMPLETION_INDEX": str(index)}
    if job.framework == "torch" and role == job.trainer.trainer_step and job.trainer.has_trainer:
        env.update(torch_env(job, role, index))
    return env


def mpi_launcher_env(job):
    """What Trainer's MPI plugin gives the launcher's `node` container (Open MPI: the only implementation Trainer
    v2.3.0 runs): the hostfile, FQDN host names, default slots, ssh's connection attempts. Beyond Trainer, PRRTE's
    names of the same (Open MPI 5 ignores the `orte` ones, as with mpi-operator: docs/containers.md)."""
    hostfile, slots = f"{MPI_CONFIG_DIR}/hostfile", str(job.mpi.slots_per_worker)
    return {"OMPI_MCA_orte_default_hostfile": hostfile, "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
            "OMPI_MCA_orte_set_default_slots": slots, "OMPI_MCA_plm_rsh_args": MPI_SSH_ATTEMPTS,
            "PRTE_MCA_prte_default_hostfile": hostfile, "PRTE_MCA_prte_keep_fqdn_hostnames": "1",
            "PRTE_MCA_prte_set_default_slots": slots, "PRTE_MCA_plm_ssh_args": MPI_SSH_ATTEMPTS}


def operator_pod(job, role, index):
    """What Trainer and JobSet give a replica's pod: `replica_env` in its main container; under the MPI policy the
    ssh Secret at sshAuthMountPath in every pod, and the launcher the hostfile at /etc/mpi/hostfile (one
    `<endpoint> slots=N` line per node, the launcher's first with runLauncherAsNode) and Trainer's variables."""
    env = replica_env(job, role, index)
    if job.framework != "mpi":
        return OperatorPod(env=tuple(env.items()))
    if role == LAUNCHER:
        env.update(mpi_launcher_env(job))
        return OperatorPod(env=tuple(env.items()), ssh=True,
                           config=(MPI_CONFIG_DIR, (("hostfile", topology.hostfile(job)),)))
    return OperatorPod(env=tuple(env.items()), ssh=True)

"""Pieces shared by the per-kind parsers: metadata, replica specs, pod templates, containers and run policy."""

import copy
import re

from ..model import Container, Port, Replica, RunPolicy, Volume, VolumeMount

RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
CLEAN_POD_POLICIES = ("None", "Running", "All")
# ringrun plans every replica (hostfiles, env with one entry per replica): a sanity bound, far above any real job.
MAX_REPLICAS = 100_000
INT64_MAX = 2**63 - 1

# the run-policy values read from `spec.runPolicy` and, in the older APIs, from `spec` itself
POLICY_VALUES = ("cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit")


def job_spec(doc):
    """(name, namespace, the `spec` field) of a job object; the spec is None when it is missing or not a mapping.
    Which fields exist is the CRD schema's to say (runtime/schema.py), not the parsers'."""
    name, namespace = metadata(doc)
    spec = doc["spec"]
    if spec.mapping(required=True) is None:
        return name, namespace, None
    return name, namespace, spec


# A pod's host name and its service's name are `<job>-<role>-<index>`: a DNS-1035 label of at most 63 characters
# (mpi-operator v0.8.2 pkg/apis/kubeflow/validation/validation.go validateMPIJobName; Kubernetes services).
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_host_names(doc, job, pod_name):
    """Report `metadata.name` when the longest pod (and host) name of `job`'s replicas, by its kind's `pod_name`
    rule, is not a valid host name."""
    if job.name is None:  # reported as such
        return
    hosts = [pod_name(job.name, r.role, max(r.replicas, 1) - 1) for r in job.replicas]
    bad = [host for host in hosts if len(host) > 63 or not _DNS1035_LABEL.match(host)]
    if bad:
        host = max(bad, key=len)
        doc["metadata"]["name"].error(f"pods cannot be created: their host name {host!r} would not be a DNS-1035 "
                                      "label (a letter first, lowercase letters, digits and '-', at most 63)")


def metadata(doc):
    """(name, namespace) from `metadata`; name must be a DNS-1123 label because pod and service names derive from it."""
    meta = doc["metadata"]
    meta.mapping(required=True)
    name = meta["name"].dns_label(required=True)
    namespace = meta["namespace"].dns_label(default="default")
    return name, namespace


PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# the volume sources of core/v1 a pod may name (one per volume); ringrun runs hostPath and emptyDir itself
VOLUME_SOURCES = ("hostPath", "emptyDir", "configMap", "secret", "persistentVolumeClaim", "projected", "downwardAPI",
                  "nfs", "csi", "ephemeral", "image", "iscsi", "cephfs", "rbd", "fc", "flexVolume", "glusterfs",
                  "azureFile", "azureDisk", "awsElasticBlockStore", "gcePersistentDisk", "cinder", "portworxVolume",
                  "quobyte", "scaleIO", "storageos", "vsphereVolume", "photonPersistentDisk", "flocker", "gitRepo")


def _user(f, pod_context):
    """securityContext.runAsUser / runAsGroup of a container, falling back to the pod's."""
    context = f["securityContext"]
    context.mapping()
    user, group = context["runAsUser"].integer(minimum=0), context["runAsGroup"].integer(minimum=0)
    return (pod_context[0] if user is None else user), (pod_context[1] if group is None else group)


def container(f, pod_context=(None, None)):
    """One container of a pod template. Fields ringrun does not use (probes, lifecycle, ...) are left alone."""
    if f.mapping(required=True) is None:
        return None
    env = []
    for item in f["env"].elements():
        if item.mapping(required=True) is None:
            continue
        name = item["name"].env_name(required=True)
        if item["valueFrom"].present:
            item["valueFrom"].mapping()
            continue  # resolved by the kubelet from a secret or field; nothing for ringrun to plan
        value = item["value"].string(default="")
        if name is not None and value is not None:
            env.append((name, value))
    ports = []
    for item in f["ports"].elements():
        if item.mapping(required=True) is None:
            continue
        number = item["containerPort"].integer(required=True, minimum=1, maximum=65535)
        port_name = item["name"].string()
        if number is not None:
            ports.append(Port(number, port_name))
    resources = f["resources"]
    resources.mapping()
    limits, asked = [], []
    for section in ("limits", "requests"):
        for key, quantity in resources[section].items():
            value = quantity.quantity()
            if value is not None:
                (limits if section == "limits" else asked).append((key, value))
    mounts = []
    for item in f["volumeMounts"].elements():
        if item.mapping(required=True) is None:
            continue
        mount_name, path = item["name"].string(required=True, nonempty=True), item["mountPath"].absolute_path()
        if not item["mountPath"].present:
            item["mountPath"].error("required")
        sub_path = item["subPath"].string()
        if sub_path and (sub_path.startswith("/") or ".." in sub_path.split("/")):
            item["subPath"].error(f"must be a relative path without '..', got {sub_path!r}")
            sub_path = None
        if mount_name and path:
            mounts.append(VolumeMount(mount_name, path, bool(item["readOnly"].boolean(default=False)), sub_path or None))
    user, group = _user(f, pod_context)
    name = f["name"].dns_label(required=True)
    result = Container(
        name=name or "",
        image=f["image"].string(),
        command=f["command"].strings(),
        args=f["args"].strings(),
        env=tuple(env),
        ports=tuple(ports),
        working_dir=f["workingDir"].string(),
        volume_mounts=tuple(mounts),
        limits=tuple(limits),
        requests=tuple(asked),
        image_pull_policy=f["imagePullPolicy"].string(choices=PULL_POLICIES),
        run_as_user=user,
        run_as_group=group,
    )
    return result if name is not None else None


def volumes(f):
    """A pod's `volumes`: each with a name and exactly one source; a hostPath's path must be absolute."""
    found, names = [], set()
    for item in f.elements():
        if item.mapping(required=True) is None:
            continue
        name = item["name"].dns_label(required=True)
        sources = [k for k in item.value if k in VOLUME_SOURCES]
        if len(sources) != 1:
            item.error("must have exactly one volume source (hostPath, emptyDir, configMap, ...), got "
                       f"{', '.join(sources) or 'none'}")
            continue
        if name in names:
            item["name"].error(f"volume name {name!r} is used more than once")
            continue
        names.add(name)
        source = item[sources[0]]
        source.mapping()
        if sources[0] == "hostPath":
            path = source["path"].absolute_path()
            if not source["path"].present:
                source["path"].error("required")
            if name and path:
                found.append(Volume(name, "hostPath", path=path))
        elif sources[0] == "emptyDir":
            medium = source["medium"].string(default="", choices=("", "Memory")) or ""
            found.append(Volume(name, "emptyDir", medium=medium, size_limit=source["sizeLimit"].quantity()))
        elif name:
            found.append(Volume(name, sources[0]))
    return tuple(found)


def pod_template(template):
    """(containers, annotations, volumes) of a PodTemplateSpec; at least one container is required."""
    if template.mapping(required=True) is None:
        return (), (), ()
    annotations = template["metadata"]["annotations"].string_map()
    pod = template["spec"]
    if pod.mapping(required=True) is None:
        return (), annotations, ()
    context = pod["securityContext"]
    context.mapping()
    pod_user = (context["runAsUser"].integer(minimum=0), context["runAsGroup"].integer(minimum=0))
    containers = tuple(c for c in (container(e, pod_user)
                                   for e in pod["containers"].elements(required=True, nonempty=True)) if c)
    names = [c.name for c in containers]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        pod["containers"].error(f"container name {duplicate!r} is used more than once")
    pod_volumes = volumes(pod["volumes"])
    known = {v.name for v in pod_volumes}
    for i, item in enumerate(pod["containers"].elements()):
        for j, mount in enumerate(item["volumeMounts"].elements()):
            mount_name = mount.value.get("name") if isinstance(mount.value, dict) else None
            if isinstance(mount_name, str) and mount_name and mount_name not in known and pod["volumes"].present:
                mount["name"].error(f"no volume of the pod is called {mount_name!r}")
    return containers, annotations, pod_volumes


def replica(f, type_name, default_restart, default_replicas=None):
    """A Kubeflow ReplicaSpec (`replicas`, `restartPolicy`, `template`); None when it is unusable. `replicas` is
    required unless `default_replicas` gives the operator's default for it."""
    if f.mapping(required=True) is None:
        return None
    count = f["replicas"].integer(required=default_replicas is None, default=default_replicas, minimum=0,
                                  maximum=MAX_REPLICAS)
    restart = f["restartPolicy"].string(default=default_restart, choices=RESTART_POLICIES)
    containers, annotations, pod_volumes = pod_template(f["template"])
    if count is None or not containers:
        return None
    return Replica(type_name, type_name.lower(), count, restart or default_restart, containers, annotations,
                   pod_volumes, f["template"]["spec"].path)


def replica_specs(f, known, defaults, misplaced=None, default_replicas=None):
    """The replica types of a `*ReplicaSpecs` map, in the order of `known` (names matched case-insensitively).

    `defaults`: type -> default restartPolicy; `default_replicas`: type -> the replicas the operator defaults an
    absent count to (training-operator: 1 for every type; mpi-operator v2beta1: 1 for the Launcher); `misplaced` maps
    other types to the message they get (MXNet's roles of the other jobMode).
    """
    default_replicas = default_replicas or {}
    misplaced = {k.lower(): v for k, v in (misplaced or {}).items()}
    by_role = {}
    for key, spec in f.items(required=True):
        canonical = next((k for k in known if k.lower() == key.lower()), None)
        if canonical is None:
            spec.error(misplaced.get(key.lower(), f"unknown replica type (known: {', '.join(known)})"))
            continue
        if canonical.lower() in by_role:
            spec.error(f"replica type {canonical} given twice")
            continue
        by_role[canonical.lower()] = replica(spec, canonical, defaults.get(canonical, "Never"),
                                             default_replicas.get(canonical))
    if f.present and isinstance(f.value, dict) and not f.value:
        f.error("must name at least one replica type")
    return {role: r for role, r in by_role.items() if r is not None}, set(by_role)


def require_single(f, replicas, seen, type_name, required=True):
    """A coordinator role (Launcher, Master, Scheduler) must exist (when `required`) with exactly one replica."""
    role = type_name.lower()
    if role not in seen:
        if required and f.present and isinstance(f.value, dict):
            f[type_name].error(f"required: a {type_name} replica type with replicas 1")
        return
    spec = replicas.get(role)
    if spec is not None and spec.replicas != 1:
        key = next((k for k in f.value if isinstance(k, str) and k.lower() == role), type_name)
        f[key]["replicas"].error(f"{type_name} must have exactly 1 replica, got {spec.replicas}")


def run_policy(spec, inline=True):
    """RunPolicy from `spec.runPolicy`, also accepting the older inline fields at `spec` level.

    Older Kubeflow APIs (MPIJob v1alpha2, MXJob as in the seeds) put cleanPodPolicy, backoffLimit and friends directly
    in `spec`; newer ones nest them in `runPolicy`. Both are read; a field set differently in both places is an error.
    """
    nested = spec["runPolicy"]
    nested.mapping()
    nested["schedulingPolicy"].mapping()
    values = {}
    for name in POLICY_VALUES:
        candidates = [nested[name]] + ([spec[name]] if inline else [])
        read = [(c, _run_policy_value(name, c)) for c in candidates if c.present]
        read = [(c, v) for c, v in read if v is not None]
        if len(read) == 2 and read[0][1] != read[1][1]:
            read[1][0].error(f"conflicts with {read[0][0].path} ({read[0][1]!r} vs {read[1][1]!r})")
        if read:
            values[name] = read[0][1]
    return RunPolicy(
        clean_pod_policy=values.get("cleanPodPolicy", "None"),
        backoff_limit=values.get("backoffLimit"),
        active_deadline_seconds=values.get("activeDeadlineSeconds"),
        ttl_seconds_after_finished=values.get("ttlSecondsAfterFinished"),
        suspend=bool(nested["suspend"].boolean(default=False)),
        scheduling_policy=nested["schedulingPolicy"].present,
        managed_by=nested["managedBy"].string(),
    )


def _run_policy_value(name, f):
    if name == "cleanPodPolicy":
        return f.string(choices=CLEAN_POD_POLICIES)
    if name == "activeDeadlineSeconds":  # int64 in the operators' API types
        return f.integer(minimum=1, maximum=INT64_MAX)
    return f.integer(minimum=0)


def inline_run_policy(obj, result, spec_fields, out):
    """A compat rewrite (runtime/compat.py) of Kubeflow's v1 APIs: a run-policy field written at `spec` that the
    kind's CRD lacks there is moved to `spec.runPolicy` (the seed's MXJob writes `spec.cleanPodPolicy`)."""
    spec = (result or obj)["spec"]
    inline = [f for f in POLICY_VALUES if f in spec and spec_fields is not None and f not in spec_fields]
    policy = spec.get("runPolicy", {})
    if not inline or not isinstance(policy, dict):
        return result
    result = result or copy.deepcopy(obj)
    new_policy = result["spec"].setdefault("runPolicy", {})
    kind = obj.get("kind")
    for name in inline:
        value = result["spec"].pop(name)
        if name not in policy:
            new_policy[name] = value
            out.moved.append((f"spec.runPolicy.{name}", f"spec.{name}"))
            out.warnings.append((f"spec.{name}", f"read as spec.runPolicy.{name} (where the {kind} CRD has it)"))
        elif policy[name] == value:
            out.warnings.append((f"spec.{name}", f"also given as spec.runPolicy.{name}, with the same value; that one "
                                                 "is read"))
        else:
            out.errors.append((f"spec.{name}", f"conflicts with spec.runPolicy.{name} ({value!r} vs {policy[name]!r})"))
    return result


"""The resources `ringrun serve` speaks, and the discovery documents that describe them (pure).

One resource per (group, plural), served at several versions the way a CRD with conversion strategy `None` is: an
object is stored with the apiVersion it was created at and returned at the version of the request's URL with
only `apiVersion` rewritten. So `kubectl get mpijobs` (the group's preferred version) lists MPIJobs created at
v1alpha2, v1 and v2beta1 alike; the controller runs each object as the version it was written at. The job
resources are the kinds' registry's (runtime/kinds/registry.py).
"""

from dataclasses import dataclass

from ringrun.runtime.kinds.registry import KINDS, STORED

JOB_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Resource:
    group: str
    plural: str
    kind: str
    versions: tuple[str, ...]  # served versions, the storage (and newest) first
    namespaced: bool = True
    verbs: tuple[str, ...] = JOB_VERBS
    short_names: tuple[str, ...] = ()
    status: bool = True  # has a /status subresource
    storage: str | None = None  # the store's name of a resource served in two groups (events), else `qualified`

    @property
    def singular(self):
        return self.kind.lower()

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self):
        """Where its objects are in the store."""
        return self.storage or self.qualified

    def api_version(self, version):
        return f"{self.group}/{version}" if self.group else version


JOBS = tuple(Resource(k.group, k.plural, k.kind, k.versions, short_names=k.short_names) for k in KINDS)
# the kinds that are kept, not run (Trainer's runtimes): no status subresource
KEPT = tuple(Resource(k.group, k.plural, k.kind, k.versions, namespaced=k.namespaced, short_names=k.short_names,
                      status=False) for k in STORED)
READ_VERBS = ("get", "list", "watch")
PODS = Resource("", "pods", "Pod", ("v1",), verbs=READ_VERBS, short_names=("po",), status=False)
NAMESPACES = Resource("", "namespaces", "Namespace", ("v1",), namespaced=False,
                      verbs=READ_VERBS + ("create", "delete", "patch", "update"), short_names=("ns",), status=False)
EVENTS = Resource("", "events", "Event", ("v1",), verbs=JOB_VERBS, short_names=("ev",), status=False)
CONFIGMAPS = Resource("", "configmaps", "ConfigMap", ("v1",), verbs=JOB_VERBS, short_names=("cm",), status=False)
CORE = (PODS, NAMESPACES, EVENTS, CONFIGMAPS)


def core_resource(plural):
    """The core (group "") Resource called `plural`, else None."""
    return next((r for r in CORE if r.plural == plural), None)


# the vendored CRDs of the job kinds, readable (lightkube and kubectl read them), written by the server only
CRDS = Resource("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", ("v1",),
                namespaced=False, verbs=READ_VERBS, short_names=("crd", "crds"), status=False)
# core/v1 events served as events.k8s.io/v1 too, one resource in the store (kube-apiserver's too)
EVENTS_V1 = Resource("events.k8s.io", "events", "Event", ("v1",), verbs=JOB_VERBS, status=False,
                     storage=EVENTS.qualified)
# every resource served under /apis, in discovery's order (built-in groups first)
GROUPS = (CRDS, EVENTS_V1) + JOBS + KEPT


def job_resource(group, version, plural):
    """The Resource served at /apis/{group}/{version}/{plural} (a job kind, a kept kind, or the CRDs), else None."""
    for resource in GROUPS:
        if (resource.group, resource.plural) == (group, plural) and version in resource.versions:
            return resource
    return None


def resource_of(api_version, kind):
    """The job Resource whose objects have `apiVersion`/`kind`, else None."""
    group, _, version = api_version.rpartition("/")
    return next((r for r in JOBS if r.group == group and r.kind == kind and version in r.versions), None)


def _version_key(version):
    """kube's version priority: GA before beta before alpha, higher numbers first (v1 > v2beta1 > v1alpha2)."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -int(major), -int(minor or 0), version)


def group_versions():
    """{group: [versions, preferred first]} of every job group."""
    groups = {}
    for resource in GROUPS:
        for version in resource.versions:
            groups.setdefault(resource.group, set()).add(version)
    return {g: sorted(v, key=_version_key) for g, v in groups.items()}


def preferred(api_version):
    """`api_version` at its group's preferred version (how kubectl names objects of the group: events about a job
    refer to it so, since `kubectl events --for` selects on involvedObject.apiVersion)."""
    group, _, _ = api_version.rpartition("/")
    versions = group_versions().get(group)
    return f"{group}/{versions[0]}" if versions else api_version


def api_versions(server_address):
    """GET /api."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name, versions):
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list():
    """GET /apis."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, v) for g, v in group_versions().items()]}


def api_group(name):
    """GET /apis/{group}, or None."""
    versions = group_versions().get(name)
    return None if versions is None else {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _entries(resource):
    entry = {"name": resource.plural, "singularName": resource.singular, "namespaced": resource.namespaced,
             "kind": resource.kind, "verbs": list(resource.verbs)}
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    entries = [entry]
    if resource.status:
        entries.append({"name": f"{resource.plural}/status", "singularName": "", "namespaced": resource.namespaced,
                        "kind": resource.kind, "verbs": list(STATUS_VERBS)})
    return entries


def api_resource_list(group, version):
    """GET /apis/{group}/{version} (or /api/v1 for group ""), or None."""
    if group == "":
        if version != "v1":
            return None
        resources = [e for r in CORE for e in _entries(r)]
        resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]})
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}
    served = [r for r in GROUPS if r.group == group and version in r.versions]
    if not served:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
            "resources": [e for r in served for e in _entries(r)]}

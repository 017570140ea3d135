"""One strategy per served resource, as kube-apiserver's registry has one per resource over its one generic store:
what a create, a replace and a status write make of a request's object, which unknown fields are pruned, which
fields a field selector may name, and the table `kubectl get` shows. server/rest.py is the generic handler that
uses them; the store holds every resource's objects alike.

- The job kinds (kubeflow.org, batch.tensorstack.dev): the rules of server/api/objects.py.
- Pods: written by the controller only (the API reads, watches and deletes them).
- Namespaces: cluster-scoped; created by `kubectl create ns` or on a job's first create in them; labels and
  annotations may change.
- Events (core/v1): written by the controller for each job's life, and by clients (kopf posts its own).
- ConfigMaps (core/v1): data and binaryData as kube-apiserver validates them (keys, base64, 1 MiB, `immutable`);
  the server keeps Trainer's public one (kubeflow-system/kubeflow-trainer-public).
- Kept kinds (Trainer's TrainingRuntime and ClusterTrainingRuntime): schema-validated and defaulted objects with
  no status (server/api/objects.py).
"""

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from typing import Callable

from ringrun.runtime.kinds.registry import kind_of
from ringrun.runtime.parse import prune_unknown

from .api import apierrors, objects, table
from .api.resources import CONFIGMAPS, CRDS, EVENTS, EVENTS_V1, JOBS, KEPT, NAMESPACES, PODS
from .api.selectors import FIELDS

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _no_prune(obj):
    return obj, []


@dataclass(frozen=True)
class Strategy:
    """How the generic handler treats one resource. create/replace/status are None where the API does not write it
    (405); each returns the object to store and raises ApiError."""

    resource: object
    create: Callable | None = None  # (body, resource, version, namespace, uid, now, name) -> object
    replace: Callable | None = None  # (old, new, resource, version, namespace, name) -> object
    status: Callable | None = None  # the /status subresource: (old, new, resource, version, namespace, name)
    deletable: bool = True
    prune: Callable = _no_prune  # object -> (object without unknown fields, [their paths])
    fields: tuple = FIELDS  # what field selectors may name
    table: Callable = table.default_table
    warnings: Callable = lambda obj: []  # `Warning` header values for an object written
    empty_status: bool = False  # a created object's status is {} until the controller writes one (the seeds)
    self_link: bool = True
    present: Callable | None = None  # stored object -> as this resource shows it (another group's field names)
    # the admission step after create or replace, with the other objects at hand (what a webhook that reads the
    # cluster checks): (object, stored object or None, runtimes lookup) -> None, raising ApiError
    admit: Callable | None = None


def _job_create(body, resource, version, namespace, uid, now, name):
    obj = objects.for_create(body, resource, version, namespace, uid, now, name=name)
    obj["status"] = {}
    return obj


# -- namespaces ---------------------------------------------------------------------------------------------------
def namespace_object(name, uid, now):
    """A Namespace as kube-apiserver makes one (the name label, the kubernetes finalizer in spec, phase Active)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "namespace": "", "uid": uid, "creationTimestamp": now,
                         "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def check_namespace_name(name):
    """422 unless `name` is a DNS label (a namespace's name)."""
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        raise apierrors.invalid("Namespace", "", str(name), [
            f"metadata.name: Invalid value: {json.dumps(name)}: a lowercase RFC 1123 label must consist of lower "
            "case alphanumeric characters or '-', and must start and end with an alphanumeric character"])


def _namespace_create(body, resource, version, namespace, uid, now, name):
    objects.check_url(body, resource, version, None)
    meta = body.get("metadata") or {}
    name = name or meta.get("name")
    check_namespace_name(name)
    problems = objects.metadata_problems(meta)
    if problems:
        raise apierrors.invalid("Namespace", "", name, problems)
    obj = namespace_object(name, uid, now)
    obj["metadata"]["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
    for key in ("annotations", "finalizers", "ownerReferences"):
        if meta.get(key):
            obj["metadata"][key] = copy.deepcopy(meta[key])
    return obj


def _metadata_only(kind):
    """A replace that may change labels, annotations, finalizers and ownerReferences only (the rest is kept)."""
    def replace(old, new, resource, version, namespace, name):
        objects.check_url(new, resource, version, namespace if resource.namespaced else None, name)
        meta = new.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if rv in (None, ""):
            raise apierrors.invalid(kind, "", name, [
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"])
        if str(rv) != old["metadata"]["resourceVersion"]:
            raise apierrors.conflict(objects.target(resource, name))
        problems = objects.metadata_problems(meta)
        if problems:
            raise apierrors.invalid(kind, "", name, problems)
        result = copy.deepcopy(old)
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if meta.get(key) is not None:
                result["metadata"][key] = copy.deepcopy(meta[key])
            else:
                result["metadata"].pop(key, None)
        if kind == "Namespace":
            result["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        objects.check_finalizers(old, result, resource, name)
        return result
    return replace


# -- events -------------------------------------------------------------------------------------------------------
_EVENT_FIELDS = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
                 "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance")


def _event_create(body, resource, version, namespace, uid, now, name):
    objects.check_url(body, resource, version, namespace)
    meta = body.get("metadata") or {}
    if name is not None:
        meta = {**meta, "name": name}
    if not meta.get("name"):
        raise apierrors.invalid("Event", "", "", ["metadata.name: required: name or generateName is required"])
    lines = objects.metadata_problems(meta)
    about = body.get("involvedObject")
    if not isinstance(about, dict):
        lines.append("involvedObject: Required value")
    if body.get("type") not in (None, "", "Normal", "Warning"):
        lines.append(f"type: Unsupported value: {json.dumps(body.get('type'))}: supported values: \"Normal\", "
                     "\"Warning\"")
    if lines:
        raise apierrors.invalid("Event", "", meta["name"], lines)
    obj = {"apiVersion": "v1", "kind": "Event", **{k: copy.deepcopy(body[k]) for k in _EVENT_FIELDS if k in body}}
    obj["metadata"] = {k: copy.deepcopy(v) for k, v in meta.items() if k not in objects.SERVER_FIELDS}
    obj["metadata"].update(namespace=namespace, uid=uid, creationTimestamp=now)
    return obj


def _event_replace(old, new, resource, version, namespace, name):
    objects.check_url(new, resource, version, namespace, name)
    rv = (new.get("metadata") or {}).get("resourceVersion")
    if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
        raise apierrors.conflict(objects.target(resource, name))
    result = copy.deepcopy(old)
    for key in _EVENT_FIELDS:
        if key in new:
            result[key] = copy.deepcopy(new[key])
    return result


# events.k8s.io/v1: the same objects with its own field names (kube-apiserver's conversion)
_V1_NAMES = (("involvedObject", "regarding"), ("message", "note"), ("reportingComponent", "reportingController"),
             ("source", "deprecatedSource"), ("firstTimestamp", "deprecatedFirstTimestamp"),
             ("lastTimestamp", "deprecatedLastTimestamp"), ("count", "deprecatedCount"))


def event_as_v1(obj):
    """A core/v1 Event as events.k8s.io/v1 shows it (apiVersion set by the caller)."""
    out = {k: v for k, v in obj.items() if k not in dict(_V1_NAMES)}
    for core, v1 in _V1_NAMES:
        if core in obj:
            out[v1] = obj[core]
    source = obj.get("source") or {}
    out.setdefault("reportingController", source.get("component", ""))
    out.setdefault("reportingInstance", source.get("host", ""))
    return out


def _event_as_core(body):
    out = {k: v for k, v in body.items() if k not in {v1 for _, v1 in _V1_NAMES}}
    for core, v1 in _V1_NAMES:
        if v1 in body:
            out[core] = body[v1]
    out["apiVersion"] = "v1"
    return out


def _event_v1_create(body, resource, version, namespace, uid, now, name):
    objects.check_url(body, resource, version, namespace)
    return _event_create(_event_as_core(body), EVENTS, "v1", namespace, uid, now, name)


def _event_v1_replace(old, new, resource, version, namespace, name):
    objects.check_url(new, resource, version, namespace, name)
    return _event_replace(old, _event_as_core(new), EVENTS, "v1", namespace, name)


# -- configmaps ---------------------------------------------------------------------------------------------------
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIGMAP_BYTES = 1024 * 1024  # kube-apiserver's limit on a ConfigMap's data and binaryData together
_CONFIGMAP_FIELDS = ("data", "binaryData", "immutable")


def _configmap_problems(obj, name):
    lines = objects.metadata_problems(obj.get("metadata") or {}) + objects.subdomain_name_problems(name)
    size = 0
    for field in ("data", "binaryData"):
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            lines.append(f"{field}: Invalid value: must be a map of strings")
            continue
        for key, value in values.items():
            if len(key) > 253 or not _CONFIG_KEY.match(key) or key in (".", ".."):
                lines.append(f"{field}[{json.dumps(key)}]: Invalid value: {json.dumps(key)}: a valid config key must "
                             "consist of alphanumeric characters, '-', '_' or '.'")
            if not isinstance(value, str):
                lines.append(f"{field}[{json.dumps(key)}]: Invalid value: must be a string")
                continue
            if field == "binaryData":
                try:
                    size += len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    lines.append(f"{field}[{json.dumps(key)}]: Invalid value: illegal base64 data")
            else:
                size += len(value.encode())
            if field == "binaryData" and key in (obj.get("data") or {}):
                lines.append(f"{field}[{json.dumps(key)}]: Invalid value: {json.dumps(key)}: duplicate of key "
                             f"present in data")
    if size > CONFIGMAP_BYTES:
        lines.append(f"[]: Too long: must have at most {CONFIGMAP_BYTES} bytes")
    if "immutable" in obj and not isinstance(obj["immutable"], bool):
        lines.append(f"immutable: Invalid value: {json.dumps(obj['immutable'])}: must be true or false")
    if lines:
        raise apierrors.invalid("ConfigMap", "", name, lines)


def _configmap_create(body, resource, version, namespace, uid, now, name):
    objects.check_url(body, resource, version, namespace)
    meta = body.get("metadata") or {}
    name = name or meta.get("name")
    if not name:
        raise apierrors.invalid("ConfigMap", "", "", ["metadata.name: Required value: name or generateName is "
                                                      "required"])
    obj = {"apiVersion": "v1", "kind": "ConfigMap", **{k: copy.deepcopy(body[k]) for k in _CONFIGMAP_FIELDS
                                                      if k in body}}
    obj["metadata"] = {k: copy.deepcopy(v) for k, v in meta.items() if k not in objects.SERVER_FIELDS}
    obj["metadata"].update(name=name, namespace=namespace, uid=uid, creationTimestamp=now)
    _configmap_problems(obj, name)
    objects.check_finalizers({"metadata": {}}, obj, resource, name)
    return obj


def _configmap_replace(old, new, resource, version, namespace, name):
    """data, binaryData and immutable from `new` (nothing but metadata once the old one is immutable)."""
    result = _metadata_only("ConfigMap")(old, new, resource, version, namespace, name)
    if old.get("immutable") is True:
        if any(new.get(k) != old.get(k) for k in _CONFIGMAP_FIELDS):
            raise apierrors.invalid("ConfigMap", "", name, [
                "data: Forbidden: field is immutable when `immutable` is set"])
        return result
    for key in _CONFIGMAP_FIELDS:
        result.pop(key, None)
        if key in new:
            result[key] = copy.deepcopy(new[key])
    _configmap_problems(result, name)
    return result


# -- kept kinds ---------------------------------------------------------------------------------------------------
def _kept_create(body, resource, version, namespace, uid, now, name):
    obj = objects.for_create(body, resource, version, namespace, uid, now, name=name)
    obj["metadata"]["namespace"] = namespace or ""  # a cluster-scoped object's, as the store keeps it
    return obj


def _kept_strategy(resource):
    return Strategy(resource, create=_kept_create, replace=objects.for_replace, prune=prune_unknown,
                    self_link=False)


# -- the registry -------------------------------------------------------------------------------------------------
_JOB_FIELDS = FIELDS
_POD_FIELDS = FIELDS + ("status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                        "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName")
_EVENT_V1_SELECTABLE = FIELDS + ("regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                                  "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
                                  "reason", "reportingController", "type")
_EVENT_SELECTABLE = FIELDS + ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")


def _job_strategy(resource):
    names_runtimes = _names_runtimes(resource)
    return Strategy(resource, create=_job_create, replace=objects.for_replace, status=objects.for_status,
                    prune=prune_unknown, fields=_JOB_FIELDS,
                    table=table.trainjob_table if names_runtimes else table.job_table, warnings=objects.warnings,
                    empty_status=True, admit=objects.admit if names_runtimes else None)


def _names_runtimes(resource):
    """Whether the resource's kind names a runtime (its objects are admitted with the runtimes at hand)."""
    return kind_of(resource.api_version(resource.versions[0]), resource.kind).uses_runtimes


STRATEGIES = {r.qualified: _job_strategy(r) for r in JOBS}
STRATEGIES.update({r.qualified: _kept_strategy(r) for r in KEPT})
STRATEGIES.update({
    CONFIGMAPS.qualified: Strategy(CONFIGMAPS, create=_configmap_create, replace=_configmap_replace,
                                   self_link=False),
    PODS.qualified: Strategy(PODS, deletable=False, fields=_POD_FIELDS, table=table.pod_table, self_link=False),
    NAMESPACES.qualified: Strategy(NAMESPACES, create=_namespace_create, replace=_metadata_only("Namespace"),
                                   table=table.namespace_table, self_link=False),
    CRDS.qualified: Strategy(CRDS, deletable=False, self_link=False),
    EVENTS.qualified: Strategy(EVENTS, create=_event_create, replace=_event_replace, fields=_EVENT_SELECTABLE,
                               table=table.event_table, self_link=False),
    EVENTS_V1.qualified: Strategy(EVENTS_V1, create=_event_v1_create, replace=_event_v1_replace,
                                  fields=_EVENT_V1_SELECTABLE, table=table.event_table, self_link=False,
                                  present=event_as_v1),
})


def strategy(resource):
    return STRATEGIES[resource.qualified]

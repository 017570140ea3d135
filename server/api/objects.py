"""The rules of job objects in the API (pure): what create, replace and the status subresource keep, set and refuse.
Times, uids and random suffixes are passed in; every function returns a new object and raises ApiError.

- create: apiVersion, kind and namespace must agree with the URL (400); the spec is validated as `ringrun
  validate` does (422, one cause per problem); the server sets uid, creationTimestamp, generation 1 and
  resourceVersion; a status in the body is dropped (the status subresource owns it); generateName makes the name.
- replace (PUT): the seed's rule - only `metadata.labels`, `metadata.annotations` and the job's
  `activeDeadlineSeconds` and `cleanPodPolicy` may change (where the kind keeps them: `spec.` for MPIJob v1alpha2
  and the seeds' MXJob, `spec.runPolicy.` for the others; `spec.runPolicy.suspend` too for the Kubeflow kinds);
  TensorStack: labels, annotations, `spec.runPolicy.cleanUpWorkers`. Any other change is 422 with a cause naming
  the field. A missing resourceVersion is 422, a stale one 409; status, uid and creationTimestamp are kept;
  generation grows by one when the spec changed.
- status (PUT/PATCH .../status): only `status` is taken from the body.
- kept kinds (Trainer's runtimes, runtime/kinds/registry.py's STORED): the CRD schema's defaults are set, then the
  schema and the kind's own check validate the object; a replace may change the spec, except what the check calls
  immutable.
"""

import copy
import json
import re

from ringrun.runtime import compat, schema
from ringrun.runtime.parse import MAX_DEPTH, kept_problems, nesting, parse_object
from ringrun.runtime.kinds.registry import kind_of, stored_kind_of
from ringrun.runtime.quantity import parse_quantity

from . import apierrors
from .apierrors import Target

SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "selfLink", "managedFields",
                 "deletionTimestamp", "deletionGracePeriodSeconds")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def target(resource, name=""):
    return Target(resource.plural, resource.group, name, resource.kind)


class _Duplicates(list):
    """The duplicate keys one decode found, in order (the last value of each is kept, as Go's decoder keeps it)."""

    def hook(self, pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                self.append(key)
            obj[key] = value
        return obj


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def decode(body, limit=3 * 1024 * 1024, duplicates=None):
    """Request body bytes -> a JSON value, read as kube-apiserver reads it. Raises ApiError 413 (over `limit`) or 400:
    not UTF-8 JSON, NaN / Infinity (not JSON numbers), nested deeper than MAX_DEPTH, or a duplicate key when
    `duplicates` is None; a list given as `duplicates` collects them instead (for fieldValidation Warn / Ignore)."""
    if len(body) > limit:
        raise apierrors.too_large(limit)
    found = _Duplicates()
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=found.hook, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise apierrors.bad_request(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        value = None
        found = None
    if found is None or nesting(value) > MAX_DEPTH:
        raise apierrors.bad_request(f"the request body nests deeper than {MAX_DEPTH} levels")
    if found and duplicates is None:
        raise apierrors.bad_request(f'strict decoding error: duplicate field "{found[0]}"')
    if duplicates is not None:
        duplicates.extend(found)
    return value


def _require_object(obj):
    if not isinstance(obj, dict):
        raise apierrors.bad_request(f"the request body must be a JSON object, got {type(obj).__name__}")
    if not isinstance(obj.get("metadata", {}), dict):
        raise apierrors.bad_request("metadata: must be an object")


def check_url(obj, resource, version, namespace, name=None):
    """400 when the body's apiVersion, kind, namespace (or, for PUT, name) contradicts the URL."""
    _require_object(obj)
    expected = resource.api_version(version)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        raise apierrors.bad_request(f"Object '{missing}' is missing in the request body")
    if api_version != expected:
        raise apierrors.bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                                    f"version ({expected})")
    if kind != resource.kind:
        raise apierrors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                    f"({resource.kind})")
    meta = obj.get("metadata") or {}
    given_ns = meta.get("namespace")
    if given_ns not in (None, "") and given_ns != namespace:
        raise apierrors.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                    "request")
    if name is not None and meta.get("name") not in (None, "") and meta.get("name") != name:
        raise apierrors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                    f"URL ({name})")


def metadata_problems(meta):
    lines = []
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            lines.append(f"metadata.{field}: must be a map of strings, got {json.dumps(value)[:60]}")
            continue
        for key in value:
            prefix, _, label = key.rpartition("/")
            if not _LABEL_NAME.match(label) or len(label) > 63 or (prefix and (not DNS_SUBDOMAIN.match(prefix)
                                                                               or len(prefix) > 253)):
                lines.append(f"metadata.{field}: Invalid value: {key!r}: a qualified name must consist of "
                             "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                             "character (at most 63), with an optional DNS subdomain prefix and '/'")
        if field == "labels":
            for key, label_value in value.items():
                if len(label_value) > 63 or not _LABEL_VALUE.match(label_value):
                    lines.append(f"metadata.labels: Invalid value: {label_value!r}: a valid label must be an empty "
                                 "string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
                                 "end with an alphanumeric character (at most 63)")
        elif len(json.dumps(value)) > 256 * 1024:
            lines.append("metadata.annotations: Too long: must have at most 262144 bytes")
    return lines


def warnings(obj):
    """The object's fields accepted in a form other than its CRD's (runtime/compat.py), as kube-apiserver's
    `Warning` header values (`299 - "text"`) that kubectl prints. Cheap: no validation."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if (api_version, kind) not in schema.SCHEMA_FILES:
        return []
    normalized = compat.normalize(obj, api_version, kind, schema.spec_fields(api_version, kind))
    return ["299 - " + json.dumps(f"{path}: {message}") for path, message in normalized.warnings]


def validate(obj, resource, name, old=None):
    """422 with one cause per problem of `obj` (ringrun's validation of the spec, and the metadata's rules); `old`:
    the stored object of a replace."""
    kept = stored_kind_of(obj.get("apiVersion"), resource.kind)
    if kept is not None:
        return _validate_kept(kept, obj, resource, name, old)
    job, problems = parse_object(obj)
    lines = list(problems.lines) + metadata_problems(obj.get("metadata") or {})
    if lines:
        raise apierrors.invalid(resource.kind, resource.group, name, lines)
    return job


def admit(obj, old, runtimes):
    """422 unless `obj` parses with the runtimes it names (a TrainJob's runtime must exist, and the two must merge:
    Trainer's TrainJob webhook, pkg/webhooks/trainjob_webhook.go). `old`: the stored object of an update."""
    job, problems = parse_object(obj, runtimes=runtimes)
    lines = list(problems.lines)
    job_kind = kind_of(obj["apiVersion"], obj["kind"])
    if old is not None and job_kind is not None and job_kind.update_problems is not None:
        lines += [f"{path}: {message}" for path, message in job_kind.update_problems(old, obj)]
    if lines:
        raise apierrors.invalid(obj["kind"], obj["apiVersion"].rpartition("/")[0], obj["metadata"]["name"], lines)
    return job


def subdomain_name_problems(name):
    """[problem] unless `name` is a DNS subdomain (the name rule of ConfigMaps and custom resources)."""
    if len(name) <= 253 and DNS_SUBDOMAIN.match(name):
        return []
    return [f"metadata.name: Invalid value: {json.dumps(name)}: a lowercase RFC 1123 subdomain must consist of lower "
            "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"]


def _validate_kept(kept, obj, resource, name, old):
    lines = metadata_problems(obj.get("metadata") or {}) + subdomain_name_problems(name)
    lines += [f"{path}: {message}" for path, message in kept_problems(kept, obj, old)]
    if lines:
        raise apierrors.invalid(resource.kind, resource.group, name, lines)
    return None


def defaulted(obj):
    """`obj` with its CRD schema's defaults where its kind is a kept one or a job kind whose defaults matter to its
    clients (TrainJob: kube-apiserver defaults custom resources on every write); other objects as they are."""
    job_kind = kind_of(obj.get("apiVersion") or "", obj.get("kind"))
    if stored_kind_of(obj.get("apiVersion"), obj.get("kind")) is None and not (job_kind and job_kind.schema_defaults):
        return obj
    return schema.with_defaults(obj, obj["apiVersion"], obj["kind"])


def generated_name(prefix, random_chars):
    """generateName: the prefix cut to 58 characters plus 5 random ones drawn from `random_chars` (an iterator of
    integers)."""
    return prefix[:58] + "".join(_GENERATE_ALPHABET[next(random_chars) % len(_GENERATE_ALPHABET)] for _ in range(5))


def for_create(obj, resource, version, namespace, uid, now, name=None):
    """The object to store for a create: server fields set (resourceVersion by the store), status dropped. `name`
    replaces a generateName. Raises ApiError (400, 422)."""
    check_url(obj, resource, version, namespace)
    result = copy.deepcopy(obj)
    meta = result.setdefault("metadata", {})
    if name is not None:
        meta["name"] = name
    if not meta.get("name"):
        raise apierrors.invalid(resource.kind, resource.group, "", [
            "metadata.name: required: name or generateName is required"])
    for field in SERVER_FIELDS:
        meta.pop(field, None)
    meta.update(namespace=namespace, uid=uid, creationTimestamp=now, generation=1)
    result.pop("status", None)
    result = defaulted(result)
    validate(result, resource, meta["name"])
    check_finalizers({"metadata": {}}, result, resource, meta["name"])
    return result


def _replaceable(resource, api_version):
    """The spec paths (tuples) a replace may change for objects of `resource` at `api_version` (the kind's rule; a
    kept kind's whole spec, its check saying what is immutable)."""
    if stored_kind_of(api_version, resource.kind) is not None:
        return frozenset({("spec",)})
    return kind_of(api_version, resource.kind).replaceable(api_version.rpartition("/")[2])


def _differences(old, new, path, allowed, out):
    """Field paths where `old` and `new` differ, outside `allowed`."""
    if tuple(path) in allowed or old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _differences(old.get(key), new.get(key), path + [key], allowed, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            _differences(a, b, path + [i], allowed, out)
    else:
        out.append(path)


def _show_path(path):
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def replace_rule(resource, api_version):
    """A sentence naming the fields a replace may change (for messages and documentation)."""
    fields = ["metadata.labels", "metadata.annotations"] + sorted(_show_path(p) for p in
                                                                   _replaceable(resource, api_version))
    return ", ".join(fields)


def for_replace(old, new, resource, version, namespace, name):
    """The object to store for a replace of `old` by `new`. Raises ApiError (400, 409, 422)."""
    check_url(new, resource, version, namespace, name)
    meta = new.get("metadata") or {}
    rv = meta.get("resourceVersion")
    kind_target = target(resource, name)
    if rv in (None, ""):
        raise apierrors.invalid(resource.kind, resource.group, name, [
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"])
    if str(rv) != old["metadata"]["resourceVersion"]:
        raise apierrors.conflict(kind_target)
    if meta.get("uid") not in (None, "") and meta["uid"] != old["metadata"]["uid"]:
        raise apierrors.conflict(kind_target, f"Precondition failed: UID in precondition: {meta['uid']}, UID in "
                                              f"object meta: {old['metadata']['uid']}")
    result = defaulted({**copy.deepcopy(new), "apiVersion": old["apiVersion"]})  # kept at the version it was written
    result_meta = result.setdefault("metadata", {})
    for field in SERVER_FIELDS:
        result_meta.pop(field, None)
    for field in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp",
                  "deletionGracePeriodSeconds"):
        if field in old["metadata"]:
            result_meta[field] = old["metadata"][field]
        else:
            result_meta.pop(field, None)
    check_finalizers(old, result, resource, name)
    result["status"] = copy.deepcopy(old.get("status", {}))
    if "status" not in old:
        result.pop("status")
    changed = []
    allowed = _replaceable(resource, old["apiVersion"])
    old_rest = {k: v for k, v in old.items() if k not in ("metadata", "status", "apiVersion")}
    new_rest = {k: v for k, v in result.items() if k not in ("metadata", "status", "apiVersion")}
    _differences(old_rest, new_rest, [], allowed, changed)
    free = ("labels", "annotations", "resourceVersion", "finalizers", "ownerReferences", "managedFields")
    old_meta = {k: v for k, v in old["metadata"].items() if k not in free}
    new_meta = {k: v for k, v in result_meta.items() if k not in free}
    _differences(old_meta, new_meta, ["metadata"], set(), changed)
    if changed:
        rule = replace_rule(resource, old["apiVersion"])
        raise apierrors.invalid(resource.kind, resource.group, name, [
            f"{_show_path(p)}: may not be changed: a replace may change only {rule}" for p in changed])
    validate(result, resource, name, old)
    if old_rest != new_rest:
        result_meta["generation"] = old["metadata"].get("generation", 1) + 1
    return result


def check_finalizers(old, new, resource, name):
    """422 when `new` has a finalizer that is not a qualified name, or adds one while `old` is being deleted."""
    finalizers = new["metadata"].get("finalizers")
    if finalizers is None:
        return
    lines = []
    if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
        lines.append(f"metadata.finalizers: must be a list of strings, got {json.dumps(finalizers)[:60]}")
    else:
        for i, value in enumerate(finalizers):
            prefix, _, rest = value.rpartition("/")
            if not _LABEL_NAME.match(rest) or len(rest) > 63 or (prefix and not DNS_SUBDOMAIN.match(prefix)):
                lines.append(f"metadata.finalizers[{i}]: Invalid value: {value!r}: a qualified name must consist of "
                             "alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'")
        added = [f for f in finalizers if f not in (old["metadata"].get("finalizers") or [])]
        if old["metadata"].get("deletionTimestamp") and added:
            lines.append(f"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being "
                         f"deleted, found new finalizers {json.dumps(added)}")
    if lines:
        raise apierrors.invalid(resource.kind, resource.group, name, lines)


def for_status(old, new, resource, version, namespace, name):
    """The object to store for a write of the status subresource: `old` with `new`'s status."""
    check_url(new, resource, version, namespace, name)
    rv = (new.get("metadata") or {}).get("resourceVersion")
    if rv in (None, ""):
        raise apierrors.invalid(resource.kind, resource.group, name, [
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"])
    if str(rv) != old["metadata"]["resourceVersion"]:
        raise apierrors.conflict(target(resource, name))
    status = new.get("status")
    if status is not None and not isinstance(status, dict):
        raise apierrors.invalid(resource.kind, resource.group, name, [f"status: must be an object, got {status!r}"])
    result = copy.deepcopy(old)
    result["status"] = copy.deepcopy(status) if status is not None else {}
    return result


def at_version(obj, resource, version):
    """`obj` as served at `version`: only apiVersion differs (conversion strategy None)."""
    api_version = resource.api_version(version)
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}


def with_self_link(obj, resource, version):
    """`obj` with the selfLink of the seeds' responses (deprecated in Kubernetes, shown in the seeds)."""
    meta = obj["metadata"]
    link = f"/apis/{resource.group}/{version}/namespaces/{meta['namespace']}/{resource.plural}/{meta['name']}"
    return {**obj, "metadata": {**meta, "selfLink": link}}


def _replica_specs(spec):
    """[(replicas, pod spec)] of a job's spec: the Kubeflow kinds' *ReplicaSpecs, TensorStack's worker (and its
    implicit launcher, sized as one more worker pod)."""
    found = []
    for key, value in spec.items():
        if key.endswith("ReplicaSpecs") and isinstance(value, dict):
            for replica in value.values():
                if isinstance(replica, dict):
                    count = replica.get("replicas", 1)
                    found.append((count if isinstance(count, int) else 1,
                                  ((replica.get("template") or {}).get("spec") or {})))
    worker = spec.get("worker")
    if isinstance(worker, dict) and not found:
        count = worker.get("replicas", 1)
        pod = (worker.get("template") or {}).get("spec") or {}
        found.append(((count if isinstance(count, int) else 1) + 1, pod))
    return found


def job_requests(job):
    """(cpu cores, memory bytes) a parsed job's replicas request together, as `requests` counts them: what a kind
    whose pods come from another object (a TrainJob's runtime) asks for."""
    cpu = memory = 0
    for replica in job.replicas:
        for container in replica.containers:
            for name, value in {**dict(container.limits), **dict(container.requests)}.items():
                try:
                    amount = parse_quantity(value)
                except ValueError:
                    continue
                if name == "cpu":
                    cpu += replica.replicas * amount
                elif name == "memory":
                    memory += replica.replicas * amount
    return float(cpu), int(memory)


def requests(obj):
    """(cpu cores, memory bytes) the job's replicas request together: each container's resources.requests (its
    limits where it gives no request, as Kubernetes defaults them). Unreadable quantities count as 0 (validation
    reports them)."""
    cpu = memory = 0
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    for count, pod in _replica_specs(spec):
        containers = pod.get("containers") if isinstance(pod.get("containers"), list) else []
        for container in containers:
            resources = (container.get("resources") or {}) if isinstance(container, dict) else {}
            asked = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
            for name, value in asked.items():
                try:
                    amount = parse_quantity(value)
                except ValueError:
                    continue
                if name == "cpu":
                    cpu += count * amount
                elif name == "memory":
                    memory += count * amount
    return float(cpu), int(memory)

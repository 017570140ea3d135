"""OpenAPI v3 documents, as kube-apiserver serves them at /openapi/v3: enough for kubectl to see that the server
validates fields itself (the `fieldValidation` parameter on writes) and to know each kind's schema. A job kind's
schema is its CRD's own (runtime/schemas/), as kube-apiserver publishes a CRD's, so `kubectl explain mpijob.spec`
lists its fields down to the pod template; the core kinds' are left open."""

import hashlib
import json

from ringrun.runtime import schema

from .api import resources

_WRITE_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                 for n in ("dryRun", "fieldManager", "fieldValidation", "pretty")]
_READ_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                for n in ("pretty", "labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
                          "watch", "timeoutSeconds")]


def _schema_name(group, version, kind):
    prefix = ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"
    return f"{prefix}.{version}.{kind}"


def _ref(name):
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _operation(action, gvk, name, body=False, code="200"):
    op = {"operationId": f"{action}{gvk['kind']}", "x-kubernetes-action": action,
          "x-kubernetes-group-version-kind": gvk, "parameters": list(_WRITE_PARAMS if body else _READ_PARAMS),
          "responses": {code: {"description": "OK", **_ref(name)}}}
    if body:
        op["requestBody"] = {"required": True, **_ref(name)}
    return op


def _paths(group, version, resource):
    gvk = {"group": group, "version": version, "kind": resource.kind}
    name = _schema_name(group, version, resource.kind)
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    collection = f"{base}/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced else \
        f"{base}/{resource.plural}"
    item = collection + "/{name}"
    paths = {collection: {"get": _operation("list", gvk, name)}, item: {"get": _operation("get", gvk, name)}}
    if "create" in resource.verbs:
        paths[collection]["post"] = _operation("post", gvk, name, body=True, code="201")
        paths[item].update(put=_operation("put", gvk, name, body=True), patch=_operation("patch", gvk, name, body=True),
                           delete=_operation("delete", gvk, name))
        paths[item + "/status"] = {"get": _operation("get", gvk, name), "put": _operation("put", gvk, name, body=True),
                                   "patch": _operation("patch", gvk, name, body=True)}
    for path in paths.values():
        if resource.namespaced:
            path["parameters"] = [{"name": "namespace", "in": "path", "required": True,
                                   "schema": {"type": "string"}}]
    if (resource.api_version(version), resource.kind) in schema.SCHEMA_FILES:
        own = schema.crd_schema(resource.api_version(version), resource.kind)
        return paths, {name: {**own, "x-kubernetes-group-version-kind": [gvk]}}
    return paths, {name: {"type": "object", "x-kubernetes-group-version-kind": [gvk],
                          "x-kubernetes-preserve-unknown-fields": True,
                          "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                         "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                         "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                         "status": {"type": "object",
                                                    "x-kubernetes-preserve-unknown-fields": True}}}}


def document(path):
    """The OpenAPI v3 document of `apis/{group}/{version}` or `api/v1`, else None."""
    if path == "api/v1":
        served = [("", "v1", r) for r in resources.CORE if r.namespaced]
    else:
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "apis":
            return None
        served = [(parts[1], parts[2], r) for r in resources.GROUPS
                  if r.group == parts[1] and parts[2] in r.versions]
    if not served:
        return None
    paths, schemas = {}, {}
    for group, version, resource in served:
        more_paths, more_schemas = _paths(group, version, resource)
        paths.update(more_paths)
        schemas.update(more_schemas)
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0-ringrun"}, "paths": paths,
            "components": {"schemas": schemas}}


def root():
    """GET /openapi/v3: every group-version with its document's URL (the hash changes when the document does)."""
    keys = ["api/v1"] + [f"apis/{g}/{v}" for g, versions in resources.group_versions().items() for v in versions]
    listing = {}
    for key in keys:
        digest = hashlib.sha512(json.dumps(document(key), sort_keys=True).encode()).hexdigest()[:32].upper()
        listing[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": listing}

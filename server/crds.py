"""The CustomResourceDefinitions of the served job kinds and kept kinds (pure), as the operators install them: one
per (group, plural), every served version with its vendored openAPIV3Schema (runtime/schemas/), the status
subresource (job kinds), conversion `None`, printer columns. The server stores them at start (read-only through the API), so
`kubectl get crd` and clients that discover kinds from CRDs (lightkube's load_in_cluster_generic_resources) work."""

import uuid

from ringrun.runtime import schema

from ringrun.runtime.kinds.registry import stored_kind_of

from .api.resources import JOBS, KEPT

_NAMESPACE = uuid.UUID("7d0b3c55-24f4-4b8e-9d58-3e54b8f7a0f1")  # CRD uids: uuid5 of the CRD's name under this
_COLUMNS = [{"name": "State", "type": "string", "jsonPath": ".status.conditions[-1:].type"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def _version(resource, version):
    api_version = resource.api_version(version)
    out = {"name": version, "served": True, "storage": version == resource.versions[0],
           "schema": {"openAPIV3Schema": schema.crd_schema(api_version, resource.kind)}}
    kept = stored_kind_of(api_version, resource.kind)
    if kept is None:
        return {**out, "subresources": {"status": {}}, "additionalPrinterColumns": _COLUMNS}
    columns = [{"name": n, "type": t, "jsonPath": p} for n, t, p in kept.printer_columns]
    return {**out, "additionalPrinterColumns": columns} if columns else out


def crd(resource, now):
    """The CustomResourceDefinition object of one job Resource; `now`: its creationTimestamp."""
    name = resource.qualified
    names = {"plural": resource.plural, "singular": resource.singular, "kind": resource.kind,
             "listKind": f"{resource.kind}List"}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "namespace": "", "uid": str(uuid.uuid5(_NAMESPACE, name)),
                         "creationTimestamp": now, "generation": 1},
            "spec": {"group": resource.group, "names": names,
                     "scope": "Namespaced" if resource.namespaced else "Cluster",
                     "versions": [_version(resource, v) for v in resource.versions],
                     "conversion": {"strategy": "None"}},
            "status": {"acceptedNames": names, "storedVersions": list(resource.versions),
                       "conditions": [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                                       "message": "no conflicts found", "lastTransitionTime": now},
                                      {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                       "message": "the initial names have been accepted",
                                       "lastTransitionTime": now}]}}


def all_crds(now):
    return [crd(resource, now) for resource in JOBS + KEPT]

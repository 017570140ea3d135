"""Structural validation against the operators' own CRD schemas (runtime/schemas/, vendored with their source).

The schemas are the one list of known fields: a field is accepted when the CRD that serves the job's apiVersion has
it, and reported as unknown when that CRD would prune it (an object whose schema lists its properties and does not
say `x-kubernetes-preserve-unknown-fields`; kubectl's default `fieldValidation=Strict` makes kube-apiserver refuse
such fields the same way). ringrun's own parsers (runtime/kinds/) run on top for what a schema cannot say.

Kubernetes' OpenAPI v3 dialect becomes JSON Schema once per kind: `x-kubernetes-int-or-string` -> integer or string
(so a quantity written `0.5` is refused, as kube-apiserver refuses it in a custom resource: write "500m"),
`nullable` -> null allowed, `format` int32 and int64 -> their ranges, and an object with neither `properties` nor
`additionalProperties` (the CRDs' pod template `metadata`) is free-form rather than pruned to nothing. Not checked:
`x-kubernetes-list-type` map/set uniqueness (duplicate `ports` entries). Pure: the files are package data.
"""

import functools
import importlib.resources
import json
import re

from .fields import show
from .kinds.registry import KINDS, STORED

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # as fields.Field.child_path writes keys
# (apiVersion, kind) -> schema file (without .json), from the kinds' registry (job kinds and stored kinds)
SCHEMA_FILES = {(k.api_version(v), k.kind): k.schemas[v] for k in KINDS + STORED for v in k.versions}

# how the CRDs' resource.Quantity pattern begins
_QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


@functools.cache
def _read(name):
    """A vendored schema file, read once (shared: callers never change it)."""
    text = importlib.resources.files("ringrun.runtime").joinpath("schemas", f"{name}.json").read_text()
    return json.loads(text)


def crd_schema(api_version, kind):
    """The kind's openAPIV3Schema as its CRD has it (shared: never change it)."""
    return _read(SCHEMA_FILES[(api_version, kind)])["openAPIV3Schema"]


def source(api_version, kind):
    """Where the schema of a kind comes from: {"repo", "tag", "commit", "path", "version"}."""
    return _read(SCHEMA_FILES[(api_version, kind)])["source"]


def to_json_schema(node, root=True):
    """A Kubernetes structural schema (OpenAPI v3 subset) as JSON Schema (draft 2020-12). Returns a new dict."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v, False) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value, False) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(v, False) for v in value]
        elif key in ("type", "enum", "required", "minimum", "maximum", "minLength", "maxLength", "pattern",
                     "minItems", "maxItems", "minProperties", "maxProperties", "exclusiveMinimum",
                     "exclusiveMaximum", "multipleOf", "uniqueItems"):
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    elif "type" in out and node.get("nullable"):
        out["type"] = [out["type"], "null"]
    if node.get("format") in _RANGES and out.get("type") == "integer":
        low, high = _RANGES[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    is_object = node.get("type") == "object"
    closed = "properties" in node and "additionalProperties" not in node \
        and not node.get("x-kubernetes-preserve-unknown-fields")
    if is_object and closed and not root:
        out["additionalProperties"] = False
    if root:
        # metadata is checked by ringrun (name, namespace, labels); status is the server's, never validated here
        props = out.setdefault("properties", {})
        props.update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"}, status={})
        out["additionalProperties"] = False
    return out


@functools.cache
def spec_fields(api_version, kind):
    """The field names the kind's CRD has under `spec`, or None where it keeps unknown fields there."""
    spec = _read(SCHEMA_FILES[(api_version, kind)])["openAPIV3Schema"].get("properties", {}).get("spec", {})
    if spec.get("x-kubernetes-preserve-unknown-fields") or "properties" not in spec:
        return None
    return frozenset(spec["properties"])


@functools.cache
def validator(api_version, kind):
    """A compiled jsonschema validator for one kind (cached: compiling takes milliseconds)."""
    import jsonschema

    schema = to_json_schema(_read(SCHEMA_FILES[(api_version, kind)])["openAPIV3Schema"])
    return jsonschema.Draft202012Validator(schema)


def _path(base, parts):
    text = base
    for part in parts:
        if isinstance(part, int):
            text = f"{text}[{part}]"
        else:
            key = part if _PLAIN_KEY.fullmatch(part) else repr(part)
            text = f"{text}.{key}" if text else key
    return text


def _an(type_name):
    return {"integer": "an integer", "object": "a mapping", "array": "a list", "boolean": "true or false",
            "string": "a string", "number": "a number", "null": "null"}.get(type_name, type_name)


def problems(obj, api_version, kind):
    """[(field path, message)] of everything the kind's CRD schema refuses in `obj`, each reported once."""
    found = []
    for error in validator(api_version, kind).iter_errors(obj):
        found.extend(_describe(error))
    seen, result = set(), []
    for path, message in found:
        if (path, message) not in seen:
            seen.add((path, message))
            result.append((path, message))
    return result


def _describe(error):
    path = _path("", error.absolute_path)
    value = error.instance
    check = error.validator
    if check == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        allowed = ", ".join(known)
        return [(_path(path, [str(key)]), f"unknown field (known: {allowed})")
                for key in value if key not in error.schema.get("properties", {})]
    if check == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [(_path(path, [missing]), "required field is missing")]
    if check == "type":
        wanted = error.validator_value
        if isinstance(wanted, list):
            if set(wanted) >= {"integer", "string"}:
                return [(path, f"must be an integer or a string, got {show(value)}")]
            wanted = next((w for w in wanted if w != "null"), wanted[0])
        if value is None:
            return [(path, "must not be null")]
        return [(path, f"must be {_an(wanted)}, got {show(value)}")]
    if check == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [(path, f"must be one of {choices}; got {value!r}")]
    if check == "minimum":
        return [(path, f"must be >= {error.validator_value}, got {value}")]
    if check == "maximum":
        return [(path, f"must be <= {error.validator_value}, got {value}")]
    if check == "pattern" and error.validator_value.startswith(_QUANTITY_PATTERN):
        return [(path, f"must be a resource quantity such as 1, \"500m\" or \"2Gi\", got {show(value)}")]
    if check == "pattern":
        return [(path, f"must match {error.validator_value}, got {value!r}")]
    if check == "anyOf":
        # the one branch whose type fits explains it best (a T9k cleanUpWorkers string outside its enum)
        for sub in error.context:
            if sub.validator != "type":
                return _describe(sub)
        types = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
        names = " or ".join(_an(t) for t in types if isinstance(t, str))
        return [(path, f"must be {names}, got {show(value)}")]
    return [(path, error.message)]


# metav1.ObjectMeta's fields: what kube-apiserver keeps of an object's metadata (anything else is pruned)
OBJECT_META = frozenset({"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                         "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                         "annotations", "ownerReferences", "finalizers", "managedFields"})


def prune(obj, api_version, kind, keep=frozenset()):
    """(obj without the fields its CRD's structural schema does not have, [their paths]) as kube-apiserver prunes a
    custom resource: an object schema with `properties` keeps only those (unless it says
    `x-kubernetes-preserve-unknown-fields`), metadata keeps ObjectMeta's fields. Paths are written as
    kube-apiserver writes them in `unknown field "..."` (`spec.a.b[0].c`); unknown fields whose paths are in `keep`
    stay (and are not listed). `obj` is not changed."""
    root = _read(SCHEMA_FILES[(api_version, kind)])["openAPIV3Schema"]
    unknown = []
    if not isinstance(obj, dict):
        return obj, unknown
    out = {}
    properties = root.get("properties", {})
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            out[key] = value
        elif key == "metadata" and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k in OBJECT_META or f"metadata.{k}" in keep}
            unknown += [f"metadata.{k}" for k in value if k not in OBJECT_META and f"metadata.{k}" not in keep]
        elif key in properties:
            out[key] = _prune(value, properties[key], key, unknown, keep)
        elif key == "metadata" or key in keep:
            out[key] = value
        else:
            unknown.append(key)
    return out, unknown


def _prune(value, node, path, unknown, keep):
    if not isinstance(node, dict) or node.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict) and node.get("type") == "object":
        properties, extra = node.get("properties"), node.get("additionalProperties")
        if properties is not None:
            out = {}
            for key, item in value.items():
                if key in properties:
                    out[key] = _prune(item, properties[key], f"{path}.{key}", unknown, keep)
                elif isinstance(extra, dict):
                    out[key] = _prune(item, extra, f"{path}.{key}", unknown, keep)
                elif extra is True or f"{path}.{key}" in keep:
                    out[key] = item
                else:
                    unknown.append(f"{path}.{key}")
            return out
        if isinstance(extra, dict):
            return {key: _prune(item, extra, f"{path}.{key}", unknown, keep) for key, item in value.items()}
        return value
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_prune(item, node["items"], f"{path}[{i}]", unknown, keep) for i, item in enumerate(value)]
    return value


def with_defaults(obj, api_version, kind):
    """`obj` with its CRD schema's `default`s set where a field is missing under an object that is there, as
    kube-apiserver defaults a custom resource on a write (a missing parent is not made; metadata and status are
    not defaulted). Returns a new object; `obj` is not changed."""
    import copy

    root = _read(SCHEMA_FILES[(api_version, kind)])["openAPIV3Schema"]
    out = dict(obj)
    for key, node in root.get("properties", {}).items():
        if key not in ("metadata", "status") and key in out:
            out[key] = _defaulted(out[key], node, copy.deepcopy)
    return out


def _defaulted(value, node, clone):
    if not isinstance(node, dict):
        return value
    if isinstance(value, dict) and node.get("type") == "object":
        properties, extra = node.get("properties") or {}, node.get("additionalProperties")
        out = {}
        for key, item in value.items():
            child = properties.get(key, extra if isinstance(extra, dict) else None)
            out[key] = _defaulted(item, child, clone) if child is not None else item
        for key, child in properties.items():
            if key not in out and isinstance(child, dict) and "default" in child:
                out[key] = _defaulted(clone(child["default"]), child, clone)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_defaulted(item, node["items"], clone) for item in value]
    return value

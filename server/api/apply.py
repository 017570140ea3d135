"""Server-side apply and field ownership (pure), as kube-apiserver's structured-merge-diff does them for custom
resources, reduced to what clients see: `metadata.managedFields`, conflicts, and the fields an applier stops
applying being removed.

- A field set is a set of paths; a path is a tuple of FieldsV1 keys: `f:name` (a map's field), `k:{"name":"x"}`
  (an item of a list of type map, by its keys), `v:"x"` (an item of a list of type set), `.` (the list item itself).
  Lists are atomic unless the schema says `x-kubernetes-list-type: map` or `set` (the CRDs do, for containers, env,
  ports, ...); maps are always granular.
- Every write records who changed which fields: an apply makes the applier (an `Apply` entry) own exactly the fields
  it applied; any other write (an `Update` entry of its field manager) takes the fields it changed from everyone.
- An apply conflicts where another manager owns a field it sets to another value: 409 naming the manager and field,
  unless `force`, which takes the field. A field the applier applied before and no longer does is removed, unless
  another manager owns it too.
- What is tracked: the object but `apiVersion`, `kind`, `status` and metadata's server fields (labels,
  annotations, finalizers and ownerReferences are tracked).
"""

import copy
import json

_METADATA_TRACKED = ("labels", "annotations", "finalizers", "ownerReferences")


def _child(node, key):
    """The schema of field `key` of an object schema (None when unknown: then maps are granular, lists atomic)."""
    if not isinstance(node, dict):
        return None
    properties = node.get("properties") or {}
    if key in properties:
        return properties[key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _list_type(node):
    if not isinstance(node, dict):
        return "atomic", ()
    kind = node.get("x-kubernetes-list-type", "atomic")
    return kind, tuple(node.get("x-kubernetes-list-map-keys") or ())


def _item_key(item, keys):
    return "k:" + json.dumps({k: item.get(k) for k in keys if k in item}, separators=(",", ":"), sort_keys=True)


def _tracked(obj):
    """The part of an object whose fields are owned: everything but apiVersion, kind, status, server metadata."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status", "metadata")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k in _METADATA_TRACKED}
    if meta:
        out["metadata"] = meta
    return out


def fields(obj, schema):
    """The field set (paths to leaves and list items) of `obj` under its CRD `schema` (None: no schema)."""
    out = set()
    _walk(_tracked(obj), schema, (), out)
    return out


def _walk(value, node, prefix, out):
    if isinstance(value, dict):
        if not value and prefix:
            out.add(prefix)
        for key, item in value.items():
            _walk(item, _child(node, key), prefix + (f"f:{key}",), out)
        return
    kind, keys = _list_type(node)
    if isinstance(value, list) and kind == "map" and keys and all(isinstance(i, dict) for i in value):
        for item in value:
            path = prefix + (_item_key(item, keys),)
            out.add(path + (".",))
            for key, sub in item.items():
                _walk(sub, _child(node.get("items"), key), path + (f"f:{key}",), out)
        return
    if isinstance(value, list) and kind == "set":
        for item in value:
            out.add(prefix + ("v:" + json.dumps(item, separators=(",", ":"), sort_keys=True),))
        return
    out.add(prefix)


_MISSING = object()


def _find(items, step):
    """The index of the list item a `k:` or `v:` step names, else None."""
    wanted = json.loads(step[2:])
    for i, item in enumerate(items):
        if step.startswith("k:") and isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
            return i
        if step.startswith("v:") and item == wanted:
            return i
    return None


def value_at(obj, path):
    """The value at `path` in `obj`, or _MISSING."""
    current = obj
    for step in path:
        if step == ".":
            continue
        if step.startswith("f:") and isinstance(current, dict) and step[2:] in current:
            current = current[step[2:]]
        elif step[:2] in ("k:", "v:") and isinstance(current, list):
            index = _find(current, step)
            if index is None:
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _remove(obj, path):
    """Remove the field or list item at `path` from `obj` (in place); nothing when it is not there."""
    if path and path[-1] == ".":
        path = path[:-1]
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    step = path[-1] if path else None
    if step is None or parent is _MISSING:
        return
    if step.startswith("f:") and isinstance(parent, dict):
        parent.pop(step[2:], None)
    elif step[:2] in ("k:", "v:") and isinstance(parent, list):
        index = _find(parent, step)
        if index is not None:
            del parent[index]


def merge(live, applied, node):
    """`applied` merged into `live` (a new value): maps field by field, lists of type map item by key, sets as a
    union, anything else replaced."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key), value, _child(node, key))
        return out
    kind, keys = _list_type(node)
    if isinstance(live, list) and isinstance(applied, list) and kind == "map" and keys:
        out = list(live)
        for item in applied:
            index = _find(out, _item_key(item, keys)) if isinstance(item, dict) else None
            if index is None:
                out.append(copy.deepcopy(item))
            else:
                out[index] = merge(out[index], item, node.get("items"))
        return out
    if isinstance(live, list) and isinstance(applied, list) and kind == "set":
        return list(live) + [copy.deepcopy(i) for i in applied if i not in live]
    return copy.deepcopy(applied)


# -- managedFields ------------------------------------------------------------------------------------------------
def to_fields_v1(paths):
    tree = {}
    for path in paths:
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree


def from_fields_v1(tree, prefix=()):
    paths = set()
    for step, below in (tree or {}).items() if isinstance(tree, dict) else ():
        path = prefix + (step,)
        paths |= from_fields_v1(below, path) if below else {path}
    return paths


def entries(obj):
    """[(manager, operation, subresource, paths, entry)] of an object's managedFields."""
    out = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if isinstance(entry, dict):
            out.append((entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""),
                        from_fields_v1(entry.get("fieldsV1")), entry))
    return out


def _entry(manager, operation, paths, api_version, now):
    return {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now,
            "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}


def _rebuild(old_entries, sets, api_version, now):
    """managedFields from the entries' new field sets: unchanged entries keep their time, empty ones go."""
    result = []
    for manager, operation, subresource, paths, entry in old_entries:
        new = sets.get((manager, operation, subresource), paths)
        if not new:
            continue
        result.append(entry if new == paths else {**entry, "time": now, "fieldsV1": to_fields_v1(new)})
    known = {(m, o, s) for m, o, s, _, _ in old_entries}
    for (manager, operation, subresource), paths in sets.items():
        if (manager, operation, subresource) not in known and paths:
            made = _entry(manager, operation, paths, api_version, now)
            if subresource:
                made["subresource"] = subresource
            result.append(made)
    return result


def track_update(old, new, manager, schema, api_version, now):
    """`new`'s managedFields after a write that is not an apply, by `manager`: the fields it added or changed are
    its own (an Update entry) and no one else's; removed fields are no one's. `old` None: a create."""
    old_entries = entries(old) if old else []
    before = fields(old, schema) if old else set()
    after = fields(new, schema)
    changed = {p for p in after if p not in before or value_at(old, p) != value_at(new, p)}
    removed = before - after
    sets = {}
    for owner, operation, subresource, paths, _ in old_entries:
        kept = paths - removed
        if subresource == "" and (owner, operation) != (manager, "Update"):
            kept -= changed
        sets[(owner, operation, subresource)] = kept
    key = (manager, "Update", "")
    sets[key] = (sets.get(key, set()) | changed) - removed
    return _rebuild(old_entries, sets, api_version, now)


class Conflicts(Exception):
    def __init__(self, found):
        super().__init__(f"{len(found)} conflicts")
        self.found = found  # [(manager, api_version, path)]


def show_path(path):
    """A path as kube-apiserver names it in a conflict: `.spec.runPolicy.suspend`, `.spec.x[name="a"].image`."""
    text = ""
    for step in path:
        if step.startswith("f:"):
            text += "." + step[2:]
        elif step.startswith("k:"):
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(step[2:]).items()) + "]"
        elif step.startswith("v:"):
            text += f"[={step[2:]}]"
    return text


def apply(live, applied, manager, force, schema, api_version, now):
    """(the object after `manager` applied `applied` to `live`, its managedFields). `live` None: a create. Raises
    Conflicts unless `force`."""
    applied_fields = fields(applied, schema)
    old_entries = entries(live) if live else []
    sets = {(m, o, s): set(p) for m, o, s, p, _ in old_entries}
    versions = {(m, o, s): e.get("apiVersion", "") for m, o, s, _, e in old_entries}
    mine = (manager, "Apply", "")
    if live is not None:
        found = []
        for (owner, operation, subresource), paths in sets.items():
            if (owner, operation, subresource) == mine or subresource:
                continue
            for path in sorted(paths & applied_fields):
                if path[-1] != "." and value_at(live, path) != value_at(applied, path):
                    found.append((owner, versions[(owner, operation, subresource)], path))
        if found and not force:
            raise Conflicts(found)
        for owner, _, path in found:
            for (other, operation, subresource), paths in sets.items():
                if other == owner and not subresource:
                    paths.discard(path)
    merged = merge(_tracked(live) if live else {}, _tracked(applied), schema)
    others = set().union(*[p for k, p in sets.items() if k != mine and not k[2]]) if sets else set()
    for path in sorted(sets.get(mine, set()) - applied_fields - others, key=len, reverse=True):
        _remove(merged, path)
    sets[mine] = applied_fields
    result = copy.deepcopy(live) if live else {"metadata": copy.deepcopy(applied.get("metadata") or {})}
    for key in [k for k in result if k not in ("apiVersion", "kind", "status", "metadata")]:
        del result[key]
    result.update({k: v for k, v in merged.items() if k != "metadata"})
    meta = {k: v for k, v in (result.get("metadata") or {}).items() if k not in _METADATA_TRACKED}
    meta.update(merged.get("metadata") or {})
    result["metadata"] = meta
    result["apiVersion"], result["kind"] = applied.get("apiVersion"), applied.get("kind")
    return result, _rebuild(old_entries, sets, api_version, now)

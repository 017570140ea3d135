"""Patches of API objects (pure): JSON merge patch (RFC 7386, what `kubectl label/annotate/apply` send for custom
resources) and JSON patch (RFC 6902). Both return a new document and never touch their arguments."""

import copy
import json

MAX_OPERATIONS = 10000  # kube-apiserver's maxJSONPatchOperations
COPY_LIMIT = 3 * 1024 * 1024  # json-patch's AccumulatedCopySizeLimit as kube-apiserver sets it (its body limit)


class PatchError(ValueError):
    """A patch that cannot be applied: its message says which operation and path."""


class PatchTooLarge(PatchError):
    """More operations than MAX_OPERATIONS, or copies that add up to more than COPY_LIMIT bytes."""


def merge_patch(target, patch):
    """RFC 7386: mappings merged key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path):
    """An RFC 6901 JSON pointer as a list of tokens."""
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"path {path!r}: a JSON pointer starts with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(container, token, path, adding=False):
    if not (token.isdigit() and (token == "0" or not token.startswith("0"))) and not (adding and token == "-"):
        raise PatchError(f"path {path!r}: {token!r} is not an index of a list")
    index = len(container) if token == "-" else int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise PatchError(f"path {path!r}: index {index} is out of range")
    return index


def _walk(doc, tokens, path):
    node = doc
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path)]
        else:
            raise PatchError(f"path {path!r}: {token!r} does not exist")
    return node


def _parent(doc, path):
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(f"path {path!r}: the whole document cannot be the target here")
    return _walk(doc, tokens[:-1], path), tokens[-1]


def _get(doc, path):
    return _walk(doc, _pointer(path), path)


def _add(doc, path, value):
    if path == "":
        return value
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, path, adding=True), value)
    else:
        raise PatchError(f"path {path!r}: its parent is not a mapping or a list")
    return doc


def _remove(doc, path):
    parent, token = _parent(doc, path)
    if isinstance(parent, dict) and token in parent:
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, path))
    raise PatchError(f"path {path!r} does not exist")


def json_patch(target, operations):
    """RFC 6902: add, remove, replace, move, copy, test, applied in order to a copy of `target`. Bounded as
    kube-apiserver bounds it: at most MAX_OPERATIONS operations, and what `copy` duplicates adds up to at most
    COPY_LIMIT bytes of JSON (each copy is measured before it is made), so a short patch cannot grow a document
    exponentially. Raises PatchError (PatchTooLarge for the bounds)."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    if len(operations) > MAX_OPERATIONS:
        raise PatchTooLarge(f"the allowed operations count is limited to {MAX_OPERATIONS}, got {len(operations)}")
    doc = copy.deepcopy(target)
    copied = 0
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or "path" not in op:
            raise PatchError(f"operation {i}: needs 'op' and 'path'")
        name, path = op["op"], op["path"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {i} ({name} {path}): needs 'value'")
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            _remove(doc, path)
        elif name == "replace":
            _get(doc, path)
            if path == "":
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {i} ({name} {path}): needs 'from'")
            if name == "copy":
                value = _get(doc, source)
                copied += len(json.dumps(value, separators=(",", ":")))
                if copied > COPY_LIMIT:
                    raise PatchTooLarge(f"operation {i} (copy {source} to {path}): unable to complete the copy, "
                                        f"the accumulated copy size exceeds the limit of {COPY_LIMIT} bytes")
                value = copy.deepcopy(value)
            else:
                value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif name == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"operation {i}: test of {path!r} failed")
        else:
            raise PatchError(f"operation {i}: unknown op {name!r}")
    return doc

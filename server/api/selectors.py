"""Label and field selectors as kube-apiserver reads them (pure).

Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, joined by commas. Fields: for custom
resources only `metadata.name` and `metadata.namespace`, with `=`, `==`, `!=`.
"""

import re

from .apierrors import bad_request

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")


def _split(text):
    """Split at commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def label_selector(text):
    """A predicate labels -> bool for `text` (empty: everything). Raises ApiError 400 naming what does not parse."""
    tests = []
    for part in _split(text or ""):
        eq = _EQ.match(part)
        if eq:
            key, op, value = eq.groups()
            tests.append((lambda k, v: lambda labels: labels.get(k) == v)(key, value) if op != "!=" else
                         (lambda k, v: lambda labels: labels.get(k) != v)(key, value))
            continue
        match = _SET.match(part)
        if not match or (match.group(1) and match.group(3)):
            raise bad_request(f"unable to parse requirement: {part.strip()!r} is not a valid label selector")
        negate, key, op, values = match.groups()
        if op:
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            tests.append((lambda k, a: lambda labels: labels.get(k) in a)(key, allowed) if op == "in" else
                         (lambda k, a: lambda labels: labels.get(k) not in a)(key, allowed))
        else:
            tests.append((lambda k: lambda labels: k not in labels)(key) if negate else
                         (lambda k: lambda labels: k in labels)(key))
    return lambda labels: all(test(labels or {}) for test in tests)


FIELDS = ("metadata.name", "metadata.namespace")


def field_selector(text, supported=FIELDS):
    """A predicate obj -> bool for `text`. Raises ApiError 400 for a field the resource does not support."""
    tests = []
    for part in _split(text or ""):
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid field selector: {part.strip()!r}")
        field, op, value = match.groups()
        if field not in supported:
            raise bad_request(f'field label not supported: {field}')
        path = field.split(".")

        def read(obj, path=path):
            for key in path:
                obj = obj.get(key) if isinstance(obj, dict) else None
            return "" if obj is None else str(obj)
        tests.append((lambda r, v: lambda obj: r(obj) == v)(read, value) if op != "!=" else
                     (lambda r, v: lambda obj: r(obj) != v)(read, value))
    return lambda obj: all(test(obj) for test in tests)

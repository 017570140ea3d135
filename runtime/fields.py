"""Typed reads from an untrusted document that collect every problem with its field path.

A `Field` is a value found (or not) at a path such as `spec.mpiReplicaSpecs.Worker.replicas`. Its readers return the
value when it has the expected type and range, and otherwise record `path: message` in the shared `Problems` and
return the default, so a parser can read a whole document and report everything wrong with it at once.
"""

import re

MISSING = object()

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes resource.Quantity: a signed decimal number with an optional binary, decimal or exponent suffix.
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

INT32_MAX = 2**31 - 1


def type_name(value):
    """The JSON name of a value's type, as used in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def show(value):
    """A short rendering of an offending value with its type, e.g. `'abc' (string)`."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type_name(value)})"


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class Problems:
    """The list of `path: message` lines found while reading one or more documents."""

    def __init__(self):
        self.items = []

    def add(self, path, message):
        self.items.append((path, message))

    @property
    def lines(self):
        return [f"{path or '<document>'}: {message}" for path, message in self.items]

    def __bool__(self):
        return bool(self.items)


class Field:
    """A value at a path in an untrusted document; readers validate it and report problems."""

    __slots__ = ("value", "path", "problems")

    def __init__(self, value, path, problems):
        self.value = value
        self.path = path
        self.problems = problems

    @property
    def present(self):
        return self.value is not MISSING and self.value is not None

    def child_path(self, key):
        key = str(key)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) is None:
            key = repr(key)
        return f"{self.path}.{key}" if self.path else key

    def __getitem__(self, key):
        """The field `key` of this mapping (MISSING when absent or when this is not a mapping)."""
        value = self.value.get(key, MISSING) if isinstance(self.value, dict) else MISSING
        return Field(value, self.child_path(key), self.problems)

    def error(self, message):
        self.problems.add(self.path, message)

    def _require(self, required):
        if required and not self.present:
            self.error("required field is missing" if self.value is MISSING else "must not be null")
        return self.present

    def mapping(self, required=False):
        """The mapping here (a dict), or None when absent or wrong."""
        if not self._require(required):
            return None
        if not isinstance(self.value, dict):
            self.error(f"must be a mapping, got {show(self.value)}")
            return None
        return self.value

    def items(self, required=False):
        """`(key, Field)` pairs of the mapping here; keys that are not strings are reported and skipped."""
        value = self.mapping(required)
        if value is None:
            return []
        pairs = []
        for key in value:
            if isinstance(key, str):
                pairs.append((key, self[key]))
            else:
                self.error(f"keys must be strings, got {show(key)}")
        return pairs

    def elements(self, required=False, nonempty=False):
        """`Field`s for the elements of the list here."""
        if not self._require(required):
            return []
        if not isinstance(self.value, list):
            self.error(f"must be a list, got {show(self.value)}")
            return []
        if nonempty and not self.value:
            self.error("must not be empty")
        return [Field(v, f"{self.path}[{i}]", self.problems) for i, v in enumerate(self.value)]

    def string(self, required=False, default=None, choices=None, nonempty=False):
        if not self._require(required):
            return default
        if not isinstance(self.value, str):
            self.error(f"must be a string, got {show(self.value)}")
            return default
        if nonempty and not self.value:
            self.error("must not be empty")
            return default
        if "\0" in self.value:  # no argv, environment or file name can hold it: refused before anything starts
            self.error(f"must not contain a NUL character, got {self.value!r}")
            return default
        if choices is not None and self.value not in choices:
            self.error(f"must be one of {', '.join(choices)}; got {self.value!r}")
            return default
        return self.value

    def integer(self, required=False, default=None, minimum=None, maximum=INT32_MAX):
        if not self._require(required):
            return default
        if not is_int(self.value):
            self.error(f"must be an integer, got {show(self.value)}")
            return default
        if minimum is not None and self.value < minimum:
            self.error(f"must be >= {minimum}, got {self.value}")
            return default
        if maximum is not None and self.value > maximum:
            self.error(f"must be <= {maximum}, got {self.value}")
            return default
        return self.value

    def boolean(self, default=None):
        if not self.present:
            return default
        if not isinstance(self.value, bool):
            self.error(f"must be true or false, got {show(self.value)}")
            return default
        return self.value

    def strings(self, required=False, nonempty=False):
        """A tuple of the strings in the list here."""
        elements = self.elements(required=required, nonempty=nonempty)
        return tuple(s for s in (e.string(required=True) for e in elements) if s is not None)

    def string_map(self):
        """A tuple of `(key, value)` pairs from a map[string]string, in document order."""
        return tuple((k, v) for k, v in ((k, f.string(required=True)) for k, f in self.items()) if v is not None)

    def _matching(self, required, default, pattern, limit, what):
        value = self.string(required=required, default=default)
        given = isinstance(self.value, str)  # else `value` is the default (absent, or reported as wrong)
        if given and value is not None and (len(value) > limit or not pattern.match(value)):
            self.error(f"must be a {what}, got {value!r}")
            return default
        return value

    def dns_label(self, required=False, default=None):
        return self._matching(required, default, _DNS1123_LABEL, 63,
                              "DNS-1123 label (lowercase letters, digits and '-', at most 63)")

    def absolute_path(self, default=None):
        """An absolute, normalized path (no `.` or `..` parts, no doubled `/`) without control characters."""
        value = self.string(default=default, nonempty=True)
        if not isinstance(self.value, str) or value is None:
            return value
        parts = value.split("/")
        if not value.startswith("/") or any(p in (".", "..") for p in parts) or "//" in value \
                or any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.error(f"must be an absolute path without '.' or '..' parts or control characters, got {value!r}")
            return default
        return value

    def quantity(self):
        """A Kubernetes resource quantity: 1, 0.5, "2Gi", "1000m". Returns it as a string."""
        if not self.present:
            return None
        value = self.value
        if is_int(value) or isinstance(value, float):
            if value < 0 or value != value:
                self.error(f"must be a non-negative quantity, got {show(value)}")
                return None
            return str(value)
        if isinstance(value, str) and _QUANTITY.match(value) and not value.startswith("-"):
            return value
        self.error(f"must be a resource quantity such as 1, \"500m\" or \"2Gi\", got {show(value)}")
        return None

    def env_name(self, required=False):
        value = self.string(required=required, nonempty=True)
        if value is not None and not _ENV_NAME.match(value):
            self.error(f"must be a valid environment variable name, got {value!r}")
            return None
        return value

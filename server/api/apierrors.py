"""Kubernetes API errors as data (pure): every failure of `ringrun serve` is one `ApiError`, whose `status()` is the
`metav1.Status` body kube-apiserver would send (apimachinery's pkg/api/errors: same codes, reasons, message wording
and details)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cause:
    """One problem of an Invalid request: reason FieldValueInvalid | FieldValueRequired | FieldValueNotSupported |
    FieldValueForbidden, its message and the field path."""

    reason: str
    message: str
    field: str

    def body(self):
        return {"reason": self.reason, "message": self.message, "field": self.field}


class ApiError(Exception):
    """An error answer: HTTP `code`, Status `reason`, `message`, `details` (name, group, kind, causes)."""

    def __init__(self, code, reason, message, details=None, retry_after=None, metadata=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details or {}
        self.retry_after = retry_after
        self.metadata = metadata or {}  # ListMeta of the Status (an expired continue's inconsistent token)

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": dict(self.metadata), "status": "Failure",
                "message": self.message,
                "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class Target:
    """What a request is about, for messages: `plural.group` and the object's name (may be empty)."""

    plural: str
    group: str
    name: str = ""
    kind: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def details(self, kind=None):
        details = {"group": self.group, "kind": kind or self.plural} if self.group else {"kind": kind or self.plural}
        if self.name:
            details = {"name": self.name, **details}
        return details


def success(target, uid=None):
    """The Status a delete returns: status Success with the object's name, group, kind (plural) and uid."""
    details = target.details()
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def not_found(target):
    return ApiError(404, "NotFound", f'{target.qualified} "{target.name}" not found', target.details())


def no_route():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(target):
    return ApiError(409, "AlreadyExists", f'{target.qualified} "{target.name}" already exists', target.details())


def conflict(target, why="the object has been modified; please apply your changes to the latest version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {target.qualified} "{target.name}": {why}',
                    target.details())


def bad_request(message):
    return ApiError(400, "BadRequest", message, {})


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized", {})


def forbidden(user, verb, target, namespace, subresource=""):
    resource = target.plural + (f"/{subresource}" if subresource else "")
    shown = f'{target.qualified} "{target.name}"' if target.name else target.qualified
    group = f'in API group "{target.group}"'
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return ApiError(403, "Forbidden", f'{shown} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                                      f"{group}{where}", target.details())


def method_not_allowed(method):
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                    {}) if method else no_route()


def unsupported_media_type(content_type, accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted), {})


def too_large(limit):
    return ApiError(413, "RequestEntityTooLarge", f"the request body is larger than the limit of {limit} bytes", {})


def expired(requested, oldest):
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})", {})


def internal(message):
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [
        {"message": message}]})


def _cause(line):
    """A SpecError line `field.path: message` as a Cause."""
    path, sep, message = line.partition(": ")
    if not sep:
        path, message = "", line
    reason = "FieldValueInvalid"
    if message.startswith("required") or message == "must not be null":
        reason = "FieldValueRequired"
    elif message.startswith("unknown field"):
        reason = "FieldValueNotSupported"
    elif message.startswith("may not be changed") or message.startswith("field is immutable"):
        reason = "FieldValueForbidden"
    label = {"FieldValueRequired": "Required value", "FieldValueNotSupported": "Unsupported value",
             "FieldValueForbidden": "Forbidden"}.get(reason, "Invalid value")
    return Cause(reason, f"{label}: {message}", "" if path == "<document>" else path)


def invalid(kind, group, name, lines):
    """422 Invalid: `Kind.group "name" is invalid: field: message` (several in brackets), one cause per line."""
    causes = [_cause(line) for line in lines]
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    shown = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {"name": name, "group": group, "kind": kind, "causes": [c.body() for c in causes]}
    return ApiError(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {shown}', details)

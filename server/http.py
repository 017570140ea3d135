"""HTTP plumbing shared by the handlers: a parsed request (`Call`), JSON responses (`pretty=true`), Status bodies."""

import json
from dataclasses import dataclass, field

from aiohttp import web

from ringrun.server.api import apierrors

JSON = "application/json"


@dataclass
class Call:
    """One API request: who (`user`), what path parts, query, and the aiohttp request."""

    request: web.Request
    user: object
    query: dict
    parts: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # `Warning` header values for the response (`299 - "text"`)

    @property
    def method(self):
        return self.request.method

    def flag(self, name):
        return self.query.get(name, "").lower() in ("true", "1")

    @property
    def pretty(self):
        return self.flag("pretty")

    @property
    def field_validation(self):
        """fieldValidation: Strict, Warn (the default, as kube-apiserver's) or Ignore; 400 for anything else."""
        value = self.query.get("fieldValidation") or "Warn"
        if value not in ("Strict", "Warn", "Ignore"):
            raise apierrors.bad_request(f'fieldValidation: Unsupported value: "{value}": supported values: '
                                        '"Ignore", "Strict", "Warn"')
        return value

    @property
    def dry_run(self):
        values = self.request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise apierrors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def integer(self, name, minimum=0):
        text = self.query.get(name)
        if text in (None, ""):
            return None
        try:
            value = int(text)
        except ValueError:
            raise apierrors.bad_request(f"{name}: Invalid value: {text!r}: must be an integer") from None
        if value < minimum:
            raise apierrors.bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
        return value


def dumps(obj, pretty=False):
    return (json.dumps(obj, indent=4) if pretty else json.dumps(obj, separators=(",", ":"))) + "\n"


def respond(obj, status=200, pretty=False, headers=None):
    return web.Response(text=dumps(obj, pretty), status=status, content_type=JSON, headers=headers)


def error_response(error, pretty=False):
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return respond(error.status(), status=error.code, pretty=pretty, headers=headers)

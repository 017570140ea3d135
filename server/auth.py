"""Who is asking, and may they: bearer tokens in kube-apiserver's `--token-auth-file` CSV format, and a small
policy file.

Tokens: one line per user, `token,user,uid,"group1,group2"` (groups optional); every authenticated user is also in
`system:authenticated`. The server's own admin token (written on first start) belongs to `admin` in the group
`system:masters`, which may do everything.

Policy (YAML or JSON, `--policy FILE`): a list of rules under `rules:`, each
`{user: NAME | group: NAME, namespaces: [NS... | "*"], verbs: [VERB... | "*"], resources: [PLURAL... | "*"]}`
(resources default "*"; a subresource is named on its own, as in RBAC: `mpijobs` does not grant `mpijobs/status`,
`pods` does not grant `pods/log`); a request is allowed when one rule matches. Verbs are kube-apiserver's: get, list, watch,
create, update, patch, delete, deletecollection.

Host paths (`hostPaths:` beside `rules:`, a list of `{namespaces: [NS... | "*"], paths: [/ABSOLUTE...]}`): where a
namespace's jobs may work besides their own folder (a workingDir inside one of the paths). Nothing by default, for
everyone: an admin's job is a job too.
"""

import csv
import hmac
import io
import json
import os
from dataclasses import dataclass

MASTERS = "system:masters"


@dataclass(frozen=True)
class User:
    name: str
    uid: str
    groups: tuple[str, ...]


class AuthFileError(ValueError):
    """A token or policy file that cannot be read: the message names the file, line and problem."""


def read_tokens(text, source):
    """{token: User} from the CSV text of a token file. Raises AuthFileError."""
    users = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3 or not row[0].strip() or not row[1].strip():
            raise AuthFileError(f"{source}:{number}: expected token,user,uid[,\"group1,group2\"]")
        token, name, uid = (v.strip() for v in row[:3])
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        if token in users:
            raise AuthFileError(f"{source}:{number}: the token of user {name!r} is also another user's")
        users[token] = User(name, uid, groups + ("system:authenticated",))
    return users


def bearer(header):
    """The token of an `Authorization: Bearer TOKEN` header, else None."""
    if not header or not header.startswith("Bearer "):
        return None
    return header[len("Bearer "):].strip()


def authenticate(users, header):
    """The User of an `Authorization: Bearer TOKEN` header, else None (compared in constant time)."""
    if bearer(header) is None:
        return None
    given = bearer(header).encode()
    found = None
    for token, user in users.items():
        if hmac.compare_digest(token.encode(), given):
            found = user
    return found


@dataclass(frozen=True)
class Rule:
    user: str | None
    group: str | None
    namespaces: tuple[str, ...]
    verbs: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)

    def matches(self, user, verb, resource, namespace):
        who = (self.user is not None and self.user == user.name) or (self.group is not None
                                                                    and self.group in user.groups)
        return who and _any(self.verbs, verb) and _any(self.resources, resource) and (
            _any(self.namespaces, namespace) if namespace else "*" in self.namespaces)


def _any(allowed, value):
    return "*" in allowed or value in allowed


@dataclass(frozen=True)
class Policy:
    rules: tuple = ()
    host_paths: tuple = ()  # (namespaces, paths) pairs

    def paths_of(self, namespace):
        """The host paths granted to `namespace`'s jobs."""
        return tuple(p for namespaces, paths in self.host_paths if _any(namespaces, namespace) for p in paths)


def read_policy(text, source):
    """The Policy of a policy document. Raises AuthFileError naming the rule and field."""
    import yaml

    try:
        doc = yaml.safe_load(text) if text.strip() else {"rules": []}
    except yaml.YAMLError as exc:
        raise AuthFileError(f"{source}: not valid YAML or JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules", []), list) or not (
            "rules" in doc or "hostPaths" in doc):
        raise AuthFileError(f"{source}: expected a mapping with a list `rules`")
    unknown = set(doc) - {"rules", "hostPaths"}
    if unknown:
        raise AuthFileError(f"{source}: unknown field {sorted(map(str, unknown))[0]!r} (rules, hostPaths)")
    return Policy(_read_rules(doc.get("rules", []), source), _read_host_paths(doc.get("hostPaths", []), source))


def _strings(value, where, field):
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AuthFileError(f"{where}.{field}: must be a non-empty list of strings, got {json.dumps(value)}")
    return tuple(value)


def _read_host_paths(items, source):
    if not isinstance(items, list):
        raise AuthFileError(f"{source}: hostPaths: must be a list")
    result = []
    for i, item in enumerate(items):
        where = f"{source}: hostPaths[{i}]"
        if not isinstance(item, dict) or set(item) != {"namespaces", "paths"}:
            raise AuthFileError(f"{where}: needs exactly the fields namespaces and paths")
        paths = _strings(item["paths"], where, "paths")
        for path in paths:
            if not os.path.isabs(path) or os.path.normpath(path) != path:
                raise AuthFileError(f"{where}.paths: must be absolute clean paths, got {path!r}")
        result.append((_strings(item["namespaces"], where, "namespaces"), paths))
    return tuple(result)


def _read_rules(rules, source):
    result = []
    for i, item in enumerate(rules):
        where = f"{source}: rules[{i}]"
        if not isinstance(item, dict) or ("user" in item) == ("group" in item):
            raise AuthFileError(f"{where}: needs exactly one of user or group")
        lists = {field: _strings(item.get(field, ["*"] if field == "resources" else None), where, field)
                 for field in ("namespaces", "verbs", "resources")}
        unknown = set(item) - {"user", "group", "namespaces", "verbs", "resources"}
        if unknown:
            raise AuthFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        result.append(Rule(item.get("user"), item.get("group"), lists["namespaces"], lists["verbs"],
                           lists["resources"]))
    return tuple(result)


def allowed(rules, user, verb, resource, namespace):
    """Whether `user` may `verb` `resource` (plural, or plural/subresource) in `namespace` ("" = all)."""
    if MASTERS in user.groups:
        return True
    return any(r.matches(user, verb, resource, namespace) for r in rules)

"""The generic handler of every served resource: create, get, list, replace, patch, apply, delete,
deletecollection, watch (server/watches.py) and /status, following kube-apiserver's conventions over the one store;
what differs per resource is its strategy (server/strategies.py).

- Lists are pages at one snapshot: a continued page is read at the first page's resourceVersion (410 with an
  inconsistent continue token once the history no longer holds it); `remainingItemCount` when no selector.
- Watches: from a list (ADDED events) or from a resourceVersion (the history); `sendInitialEvents=true` ends the
  initial events with a BOOKMARK annotated `k8s.io/initial-events-end`; `allowWatchBookmarks` sends a BOOKMARK
  a minute; an object that starts matching the selector comes as ADDED, one that stops as DELETED.
- fieldValidation: Strict refuses unknown and duplicate fields (400), Warn (the default) prunes them with a
  `Warning` header, Ignore prunes them silently.
- Finalizers: a delete of an object with finalizers sets `deletionTimestamp`; removing the last one removes it.
- An update that changes nothing is no write (no new resourceVersion, no event)."""

import base64
import contextlib
import functools
import json
import re
import secrets
import uuid
from datetime import datetime, timezone

from multidict import MultiDict

from ringrun.runtime import schema as crd_schemas
from ringrun.runtime.errors import SpecError
from ringrun.runtime.parse import load_documents

from . import store as store_module
from .api import apierrors, apply, objects, protobuf, table
from .api.patch import PatchError, PatchTooLarge, json_patch, merge_patch
from .api.resources import EVENTS, NAMESPACES, PODS
from .api.selectors import field_selector, label_selector
from .clock import utc_now
from .http import respond
from .strategies import check_namespace_name, namespace_object, strategy
from .trainerapi import runtime_lookup
from .watches import Watching, list_options_error

MERGE, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"  # kubectl's patch for core resources (read as a merge patch)
APPLY = ("application/apply-patch+yaml", "application/apply-patch+json")
PATCH_TYPES = (JSON_PATCH, MERGE)
PROTOBUF = "application/vnd.kubernetes.protobuf"
OTHER_ENCODINGS = (PROTOBUF, "application/cbor", "application/yaml")
EVENTS_PER_NAMESPACE = 10000  # events a namespace may hold (kube-apiserver bounds them by a TTL and admission)
PROPAGATION = ("Orphan", "Background", "Foreground")


PATCH_RETRIES = 5


def _names_version(patch):
    """Whether a patch sets metadata.resourceVersion (then it is a precondition, never retried)."""
    if isinstance(patch, dict):
        return bool((patch.get("metadata") or {}).get("resourceVersion")) if isinstance(patch.get("metadata"),
                                                                                       dict) else False
    return any(isinstance(op, dict) and str(op.get("path", "")).startswith("/metadata/resourceVersion")
               for op in patch) if isinstance(patch, list) else False


def _warned(obj, call, rules):
    """`Warning` headers: the request's own (duplicate and pruned fields) and the fields of `obj` accepted in another
    form than its CRD's (kubectl prints them)."""
    values = call.warnings + rules.warnings(obj)
    return MultiDict(("Warning", v) for v in values) if values else None


def _now():
    return datetime.now(timezone.utc)


def _list_options_error(message):
    return apierrors.ApiError(422, "Invalid", f"ListOptions.meta.k8s.io \"\" is invalid: {message}",
                              {"group": "meta.k8s.io", "kind": "ListOptions",
                               "causes": [{"reason": "FieldValueForbidden", "message": message.split(": ", 1)[-1],
                                           "field": message.split(":", 1)[0]}]})


class Rest(Watching):
    """The generic handler: every method takes the request (`call`), the Resource, the URL's version and namespace
    (None: all namespaces, or a cluster-scoped resource)."""

    def __init__(self, store, clock_now=utc_now, new_uid=lambda: str(uuid.uuid4())):
        super().__init__()
        self.store, self.now, self.new_uid = store, clock_now, new_uid
        # namespace name -> being deleted?, kept from the store's events: a create checks its namespace without a
        # store read (one would wait for the store's lock while the controller writes)
        self._spaces = {n["metadata"]["name"]: bool(n["metadata"].get("deletionTimestamp"))
                        for n in store.list(NAMESPACES.qualified)[0]}
        store.listen(self._on_event)

    def _on_event(self, event):  # in the writer's thread: a dict assignment, atomic
        if event["resource"] == NAMESPACES.qualified:
            meta = event["object"]["metadata"]
            if event["type"] == "DELETED":
                self._spaces.pop(meta["name"], None)
            else:
                self._spaces[meta["name"]] = bool(meta.get("deletionTimestamp"))

    # -- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _serve(obj, resource, version):
        rules = strategy(resource)
        served = objects.at_version(obj, resource, version)
        if rules.present is not None:
            served = rules.present(served)
        if rules.self_link:
            served = objects.with_self_link(served, resource, version)
        return served

    def _current(self, resource, namespace, name):
        obj = self.store.get(resource.key, namespace or "", name)
        if obj is None:
            raise apierrors.not_found(objects.target(resource, name))
        return obj

    async def _body(self, call, resource=None):
        """The request's JSON; duplicate keys as fieldValidation says: 400 under Strict, a warning under Warn."""
        mode = call.field_validation
        kind = (call.request.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind == PROTOBUF and resource == NAMESPACES:  # `kubectl create namespace` sends it so
            try:
                return protobuf.decode_namespace(await call.request.read())
            except protobuf.ProtobufError as exc:
                raise apierrors.bad_request(f"the request body cannot be read: {exc}") from None
        if kind in OTHER_ENCODINGS:
            raise apierrors.unsupported_media_type(kind, ("application/json",))
        duplicates = None if mode == "Strict" else []
        body = objects.decode(await call.request.read(), duplicates=duplicates)
        if mode == "Warn":
            call.warnings += ["299 - " + json.dumps(f'duplicate field "{key}"') for key in duplicates]
        return body

    @staticmethod
    def _unknown_fields(call, obj, resource, version, as_version=None):
        """`obj` without the fields its schema prunes (checked at `as_version`, the stored object's apiVersion, when
        given): 400 under fieldValidation Strict, a warning each under Warn."""
        if not isinstance(obj, dict):
            return obj
        checked = {**obj, "apiVersion": as_version} if as_version else obj
        pruned, unknown = strategy(resource).prune(checked)
        if not unknown:
            return obj
        mode = call.field_validation
        if mode == "Strict":
            kind = resource.kind
            raise apierrors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding '
                                        "error: " + ", ".join(f'unknown field "{path}"' for path in unknown))
        if mode == "Warn":
            call.warnings += ["299 - " + json.dumps(f'unknown field "{path}"') for path in unknown]
        return {**pruned, "apiVersion": obj.get("apiVersion")} if as_version else pruned

    @staticmethod
    def _manager(call):
        """The write's field manager: `fieldManager`, else the client's User-Agent up to its first "/" (as
        kube-apiserver names it). 422 for one that is too long or not printable."""
        given = call.query.get("fieldManager")
        if given is not None and (len(given) > 128 or not _PRINTABLE.fullmatch(given)):
            raise apierrors.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Invalid '
                                                     f"value: {json.dumps(given[:140])}: must be at most 128 "
                                                     "printable characters", {})
        if given:
            return given
        agent = (call.request.headers.get("User-Agent") or "unknown").split("/")[0]
        return agent[:128] or "unknown"

    def _owned(self, call, resource, version, old, new):
        """`new` with its managedFields after this write by the request's field manager (`old` None: a create)."""
        meta = {**new["metadata"], "managedFields": apply.track_update(
            old, new, self._manager(call), _schema_of(new.get("apiVersion"), new.get("kind")),
            resource.api_version(version), self.now())}
        return {**new, "metadata": meta}

    @staticmethod
    def _table(call):
        return table.wants_table(call.request.headers.get("Accept"))

    def _as_table(self, resource, items, rv):
        return strategy(resource).table(items, rv, _now())

    def _selectors(self, call, resource):
        """(labels predicate, fields predicate over a stored object) of the request's selectors."""
        rules = strategy(resource)
        fields = field_selector(call.query.get("fieldSelector"), rules.fields)
        if rules.present is not None:  # field names of the resource as it shows its objects
            fields = (lambda test, present: lambda obj: test(present(obj)))(fields, rules.present)
        return label_selector(call.query.get("labelSelector")), fields

    # -- reads -------------------------------------------------------------------------------------------------
    async def get(self, call, resource, version, namespace, name):
        obj = self._serve(self._current(resource, namespace, name), resource, version)
        if self._table(call):
            return respond(self._as_table(resource, [obj], obj["metadata"]["resourceVersion"]), pretty=call.pretty)
        return respond(obj, pretty=call.pretty)

    async def list(self, call, resource, version, namespace):
        if call.flag("watch"):
            return await self.watch(call, resource, version, namespace)
        if "sendInitialEvents" in call.query:
            raise list_options_error("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")
        labels, fields = self._selectors(call, resource)
        limit = call.integer("limit")
        after, first_rv = self._continue(call.query.get("continue"))
        try:
            items, rv = self.store.list(resource.key, namespace, after=after,
                                        at=first_rv if first_rv and first_rv > 0 else None)
        except store_module.TooOld:
            raise apierrors.ApiError(
                410, "Expired", "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue token in this "
                "response to retrieve the remainder of the results. Continuing with the provided token results in "
                "an inconsistent list - objects that were created, modified, or deleted between the time the first "
                "chunk was returned and now may show up in the list.", {},
                metadata={"continue": self._token(after, -1)}) from None
        chosen = [o for o in items if labels(o["metadata"].get("labels")) and fields(o)]
        meta = {"resourceVersion": str(rv)}
        if limit and len(chosen) > limit:
            last = chosen[limit - 1]["metadata"]
            meta["continue"] = self._token((last["namespace"], last["name"]), rv if first_rv != -1 else -1)
            if not call.query.get("labelSelector") and not call.query.get("fieldSelector"):
                meta["remainingItemCount"] = len(chosen) - limit
            chosen = chosen[:limit]
        served = [self._serve(o, resource, version) for o in chosen]
        if self._table(call):
            body = self._as_table(resource, served, rv)
            body["metadata"].update(meta)
            return respond(body, pretty=call.pretty)
        body = {"apiVersion": resource.api_version(version), "kind": f"{resource.kind}List", "metadata": meta,
                "items": served}
        return respond(body, pretty=call.pretty)

    @staticmethod
    def _token(after, rv):
        raw = json.dumps({"v": "ringrun/1", "rv": rv, "after": list(after or ("", ""))}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _continue(token):
        """(after, resourceVersion of the first page; -1: an inconsistent continue) from a continue token; 400 when
        it is not one of ours."""
        if not token:
            return None, None
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            after = tuple(data["after"])
            if data.get("v") != "ringrun/1" or len(after) != 2 or not all(isinstance(a, str) for a in after):
                raise ValueError
            return after, int(data["rv"])
        except (ValueError, KeyError, TypeError):
            raise apierrors.bad_request("continue key is not valid: it was not returned by this server") from None

    # -- writes ------------------------------------------------------------------------------------------------
    def _namespace_open(self, resource, namespace):
        """A namespaced write goes to a namespace that exists: made on the first write in it (every valid name is
        one here), 403 while it is being deleted."""
        if not resource.namespaced:
            return
        terminating = self._spaces.get(namespace)
        if terminating is None:
            check_namespace_name(namespace)
            with contextlib.suppress(store_module.Exists):
                self.store.create(NAMESPACES.qualified, namespace_object(namespace, self.new_uid(), self.now()))
        elif terminating:
            raise apierrors.ApiError(403, "Forbidden", f'{resource.qualified} "" is forbidden: unable to create new '
                                                       f"content in namespace {namespace} because it is being "
                                                       "terminated", {"kind": resource.plural})

    def _room_for_events(self, resource, namespace):
        if resource.key == EVENTS.qualified and self.store.count(resource.key, namespace) >= EVENTS_PER_NAMESPACE:
            raise apierrors.ApiError(429, "TooManyRequests", f"namespace {namespace} holds {EVENTS_PER_NAMESPACE} "
                                                             "events, as many as it may: older ones expire after an "
                                                             "hour", {"retryAfterSeconds": 60}, retry_after=60)

    async def create(self, call, resource, version, namespace):
        rules = strategy(resource)
        if rules.create is None:
            raise apierrors.method_not_allowed(call.method)
        body = self._unknown_fields(call, await self._body(call, resource), resource, version)
        dry_run = call.dry_run
        meta = body.get("metadata") if isinstance(body, dict) else None
        generate = isinstance(meta, dict) and not meta.get("name") and isinstance(meta.get("generateName"), str)
        if not dry_run:
            self._room_for_events(resource, namespace)
        for attempt in range(8 if generate else 1):
            name = objects.generated_name(meta["generateName"], iter(secrets.token_bytes(5))) if generate else None
            obj = rules.create(body, resource, version, namespace, self.new_uid(), self.now(), name)
            key = obj["metadata"].setdefault("namespace", namespace or "")
            obj = self._owned(call, resource, version, None, obj)
            self._admit(rules, obj, None)
            if dry_run:
                if self.store.get(resource.key, key, obj["metadata"]["name"]) is not None:
                    raise apierrors.already_exists(objects.target(resource, obj["metadata"]["name"]))
                return respond(self._serve(obj, resource, version), 201, call.pretty, _warned(obj, call, rules))
            self._namespace_open(resource, namespace)
            try:
                stored = self.store.create(resource.key, obj)
            except store_module.Exists:
                if generate and attempt < 7:
                    continue
                raise apierrors.already_exists(objects.target(resource, obj["metadata"]["name"])) from None
            return respond(self._serve(stored, resource, version), 201, call.pretty, _warned(stored, call, rules))

    def _admit(self, rules, obj, old):
        """The resource's admission step (Strategy.admit), which may read other objects."""
        if rules.admit is not None:
            rules.admit(obj, old, runtime_lookup(self.store))

    def _commit(self, call, resource, version, old, new, owned=False, status=False):
        """Store `new` in place of `old` (checked against old's resourceVersion); 200 with the result. Raises
        store.Stale when old is no longer current (409 for the caller, or a retry). `owned`: its managedFields
        are set already (a status write keeps them, an apply makes them); `status`: a write of the status
        subresource (no admission step)."""
        rules = strategy(resource)
        if not owned:
            new = self._owned(call, resource, version, old, new)
        if not status:
            self._admit(rules, new, old)
        if call.dry_run:
            return respond(self._serve(new, resource, version), pretty=call.pretty, headers=_warned(new, call, rules))
        try:
            stored = self.store.update(resource.key, new, expect_rv=old["metadata"]["resourceVersion"])
        except store_module.Missing:
            raise apierrors.not_found(objects.target(resource, new["metadata"]["name"])) from None
        return respond(self._serve(stored, resource, version), pretty=call.pretty, headers=_warned(stored, call, rules))

    def _commit_or_conflict(self, call, resource, version, old, new, owned=False):
        try:
            return self._commit(call, resource, version, old, new, owned, status=owned)
        except store_module.Stale:
            raise apierrors.conflict(objects.target(resource, new["metadata"]["name"])) from None

    @staticmethod
    def _rule(call, resource, status):
        rules = strategy(resource)
        rule = rules.status if status else rules.replace
        if rule is None:
            raise apierrors.method_not_allowed(call.method)
        return rule

    async def replace(self, call, resource, version, namespace, name, status=False):
        rule = self._rule(call, resource, status)
        body = await self._body(call)
        old = self._current(resource, namespace, name)
        body = self._unknown_fields(call, body, resource, version, as_version=old.get("apiVersion"))
        return self._commit_or_conflict(call, resource, version, old,
                                        rule(old, body, resource, version, namespace, name), owned=status)

    async def patch(self, call, resource, version, namespace, name, status=False):
        rule = self._rule(call, resource, status)
        kind = (call.request.content_type or "").split(";")[0].strip()
        if kind in APPLY and not status:
            return await self.apply(call, resource, version, namespace, name)
        merging = (MERGE, STRATEGIC) if not resource.group else (MERGE,)
        if kind not in merging + (JSON_PATCH,):
            raise apierrors.unsupported_media_type(kind or "none", PATCH_TYPES + merging[1:] + APPLY[:1])
        patch = await self._body(call)
        if kind == JSON_PATCH and not isinstance(patch, list):  # as kube-apiserver's decoder says it
            raise apierrors.bad_request(f"json: cannot unmarshal {_json_type(patch)} into Go value of type "
                                        "jsonpatch.Patch")
        warnings = list(call.warnings)
        # a patch that names no resourceVersion applies to whatever is current: retried when the controller wrote
        # the status in between (as kube-apiserver retries unconditional patches)
        for attempt in range(PATCH_RETRIES):
            old = self._current(resource, namespace, name)
            served = objects.at_version(old, resource, version)
            try:
                patched = merge_patch(served, patch) if kind in merging else json_patch(served, patch)
            except PatchTooLarge as exc:
                raise apierrors.ApiError(413, "RequestEntityTooLarge", f"the patch cannot be applied: {exc}",
                                         {}) from None
            except PatchError as exc:
                raise apierrors.ApiError(422, "Invalid", f"the patch cannot be applied: {exc}", {}) from None
            if not isinstance(patched, dict):
                raise apierrors.bad_request("the patched object is not a JSON object")
            meta = patched.setdefault("metadata", {}) if isinstance(patched.get("metadata"), dict) else None
            if meta is None:
                raise apierrors.bad_request("metadata: must be an object")
            conditional = _names_version(patch)
            if not meta.get("resourceVersion"):
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            call.warnings = list(warnings)  # a retry warns of what it prunes once
            patched = self._unknown_fields(call, patched, resource, version, as_version=old.get("apiVersion"))
            try:
                return self._commit(call, resource, version, old,
                                    rule(old, patched, resource, version, namespace, name), owned=status,
                                    status=status)
            except store_module.Stale:
                if conditional or attempt == PATCH_RETRIES - 1:
                    raise apierrors.conflict(objects.target(resource, name)) from None

    async def apply(self, call, resource, version, namespace, name):
        """Server-side apply (server/api/apply.py): the object made or changed to hold what the field manager
        applies, 409 on conflicts with other managers unless `force=true`."""
        manager = call.query.get("fieldManager")
        if not manager:
            raise apierrors.ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                                                     "value: is required for apply patch", {})
        self._manager(call)
        try:
            documents = load_documents((await call.request.read()).decode("utf-8", "replace"), "the apply patch")
        except SpecError as exc:
            raise apierrors.bad_request(str(exc)) from None
        if len(documents) != 1 or not isinstance(documents[0], dict):
            raise apierrors.bad_request("the apply patch must be one object")
        applied = documents[0]
        objects.check_url(applied, resource, version, namespace if resource.namespaced else None, name)
        if not (applied.get("metadata") or {}).get("name"):
            raise apierrors.bad_request("metadata.name: Required value: name is required for apply patch")
        rules, api_version = strategy(resource), resource.api_version(version)
        for attempt in range(PATCH_RETRIES):
            old = self.store.get(resource.key, namespace or "", name)
            at = old.get("apiVersion") if old else None
            call.warnings = []
            pruned = self._unknown_fields(call, applied, resource, version, as_version=at)
            node = _schema_of(at or api_version, resource.kind)
            if old is None:
                if rules.create is None:
                    raise apierrors.not_found(objects.target(resource, name))
                obj, managed = apply.apply(None, pruned, manager, True, node, api_version, self.now())
                made = rules.create(obj, resource, version, namespace, self.new_uid(), self.now(), None)
                made["metadata"].setdefault("namespace", namespace or "")
                made["metadata"]["managedFields"] = managed
                self._admit(rules, made, None)
                if call.dry_run:
                    return respond(self._serve(made, resource, version), 201, call.pretty, _warned(made, call, rules))
                self._namespace_open(resource, namespace)
                try:
                    stored = self.store.create(resource.key, made)
                except store_module.Exists:
                    continue
                return respond(self._serve(stored, resource, version), 201, call.pretty,
                               _warned(stored, call, rules))
            wanted = (applied.get("metadata") or {}).get("resourceVersion")
            if wanted and str(wanted) != old["metadata"]["resourceVersion"]:
                raise apierrors.conflict(objects.target(resource, name))
            try:
                merged, managed = apply.apply(objects.at_version(old, resource, version), pruned, manager,
                                              call.flag("force"), node, api_version, self.now())
            except apply.Conflicts as exc:
                raise _conflicts(exc.found, resource, name) from None
            merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            new = rules.replace(old, merged, resource, version, namespace, name)
            new["metadata"]["managedFields"] = managed
            try:
                return self._commit(call, resource, version, old, new, owned=True)
            except store_module.Stale:
                continue
        raise apierrors.conflict(objects.target(resource, name))

    async def _delete_options(self, call):
        raw = await call.request.read()
        options = objects.decode(raw) if raw.strip() else {}
        if not isinstance(options, dict):
            raise apierrors.bad_request("DeleteOptions: must be a JSON object")
        policy = options.get("propagationPolicy") or call.query.get("propagationPolicy")
        if policy is not None and policy not in PROPAGATION:
            raise apierrors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                                        '"Foreground", "Background", "Orphan"')
        dry = options.get("dryRun") or []
        if dry and dry != ["All"]:
            raise apierrors.bad_request(f'dryRun: Unsupported value: {json.dumps(dry)}: supported values: "All"')
        return options, bool(dry) or call.dry_run

    async def delete(self, call, resource, version, namespace, name):
        if not strategy(resource).deletable:
            raise apierrors.method_not_allowed(call.method)
        options, dry_run = await self._delete_options(call)
        old = self._current(resource, namespace, name)
        pre = options.get("preconditions") or {}
        target = objects.target(resource, name)
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise apierrors.conflict(target, f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                             f"object meta: {old['metadata']['uid']}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != old["metadata"]["resourceVersion"]:
            raise apierrors.conflict(target, "Precondition failed: ResourceVersion in precondition: "
                                             f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                             f"{old['metadata']['resourceVersion']}")
        if dry_run:
            return respond(apierrors.success(target, old["metadata"]["uid"]), pretty=call.pretty)
        if resource == NAMESPACES:
            return respond(self._serve(self.delete_namespace(old), resource, version), pretty=call.pretty)
        try:
            gone = self.store.delete(resource.key, namespace or "", name, expect_uid=old["metadata"]["uid"],
                                     expect_rv=pre.get("resourceVersion"), now=self.now())
        except store_module.Missing:
            raise apierrors.not_found(target) from None
        except store_module.Stale:
            raise apierrors.conflict(target, "Precondition failed: the object was changed or created again "
                                             "since it was read") from None
        if gone["metadata"].get("finalizers"):  # still there, being deleted: the object as it is now
            return respond(self._serve(gone, resource, version), pretty=call.pretty)
        return respond(apierrors.success(target, old["metadata"]["uid"]), pretty=call.pretty)

    def delete_namespace(self, namespace_obj):
        """Delete a namespace as kube-apiserver does: Terminating, every object in it deleted (pods go with their
        jobs), then the namespace itself once nothing is left (server/controller.py finishes it when objects with
        finalizers held it). Returns the namespace as it is then."""
        name = namespace_obj["metadata"]["name"]
        now = self.now()

        def terminating(current):
            if current["metadata"].get("deletionTimestamp"):
                return None
            return {**current, "metadata": {**current["metadata"], "deletionTimestamp": now,
                                            "deletionGracePeriodSeconds": 0},
                    "status": {**(current.get("status") or {}), "phase": "Terminating"}}
        marked = self.store.modify(NAMESPACES.qualified, "", name, terminating)
        for resource, obj in self.store.all_objects(namespace=name):
            if resource != PODS.qualified:
                with contextlib.suppress(store_module.StoreError):
                    self.store.delete(resource, name, obj["metadata"]["name"], expect_uid=obj["metadata"]["uid"],
                                      now=now)
        return finish_namespace(self.store, name, self.now) or marked

    async def delete_collection(self, call, resource, version, namespace):
        if not strategy(resource).deletable:
            raise apierrors.method_not_allowed(call.method)
        _, dry_run = await self._delete_options(call)
        labels, fields = self._selectors(call, resource)
        items, _ = self.store.list(resource.key, namespace)
        deleted = []
        for obj in items:
            if labels(obj["metadata"].get("labels")) and fields(obj):
                meta = obj["metadata"]
                if not dry_run:
                    try:
                        obj = self.store.delete(resource.key, meta["namespace"], meta["name"],
                                                expect_uid=meta["uid"], now=self.now())
                    except (store_module.Missing, store_module.Stale):
                        continue
                deleted.append(self._serve(obj, resource, version))
        body = {"apiVersion": resource.api_version(version), "kind": f"{resource.kind}List",
                "metadata": {"resourceVersion": str(self.store.current())}, "items": deleted}
        return respond(body, pretty=call.pretty)


_PRINTABLE = re.compile(r"[ -~]+")


@functools.cache
def _schema_of(api_version, kind):
    """The CRD schema of objects of `api_version`/`kind` (None for the core kinds); shared, never changed."""
    if (api_version, kind) not in crd_schemas.SCHEMA_FILES:
        return None
    return crd_schemas.crd_schema(api_version, kind)


def _conflicts(found, resource, name):
    """409 for an apply's conflicts, as kube-apiserver words it."""
    lines = [f'conflict with "{manager}" using {api_version}: {apply.show_path(path)}'
             for manager, api_version, path in found]
    message = (f"Apply failed with {len(lines)} conflict{'s' if len(lines) > 1 else ''}: " + "\n".join(lines))
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{manager}" using {api_version}',
               "field": apply.show_path(path)} for manager, api_version, path in found]
    return apierrors.ApiError(409, "Conflict", message, {**objects.target(resource, name).details(resource.kind),
                                                         "causes": causes})


def _json_type(value):
    return {dict: "object", str: "string", bool: "bool", type(None): "null"}.get(type(value), "number")


def finish_namespace(store, name, now):
    """Remove a Terminating namespace that holds nothing but pods of gone jobs; returns it as last stored, or None
    when it still holds objects (or is not being deleted)."""
    if any(resource != PODS.qualified for resource, _ in store.all_objects(namespace=name)):
        return None
    current = store.get(NAMESPACES.qualified, "", name)
    if current is None or not current["metadata"].get("deletionTimestamp"):
        return None
    try:
        return store.delete(NAMESPACES.qualified, "", name, expect_uid=current["metadata"]["uid"], now=now())
    except store_module.StoreError:
        return None

"""The job resources: create, get, list, replace, patch, delete, deletecollection, watch and /status, following
kube-apiserver's conventions (runtime/objects.py holds the rules; this module reads requests and uses the store)."""

import asyncio
import base64
import collections
import json
import secrets
import uuid
from datetime import datetime, timezone

from aiohttp import web
from multidict import MultiDict

from ringrun.launcher.execute import utc_now
from ringrun.runtime import apierrors, objects, table
from ringrun.runtime.patch import PatchError, PatchTooLarge, json_patch, merge_patch
from ringrun.runtime.selectors import field_selector, label_selector

from . import store as store_module
from .http import dumps, respond

MERGE, JSON_PATCH = "application/merge-patch+json", "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE)
WATCH_SECONDS = 1800  # a watch with no timeoutSeconds ends after this long (kube-apiserver's minimum request timeout)
PROPAGATION = ("Orphan", "Background", "Foreground")


PATCH_RETRIES = 5


def _names_version(patch):
    """Whether a patch sets metadata.resourceVersion (then it is a precondition, never retried)."""
    if isinstance(patch, dict):
        return bool((patch.get("metadata") or {}).get("resourceVersion")) if isinstance(patch.get("metadata"),
                                                                                       dict) else False
    return any(isinstance(op, dict) and str(op.get("path", "")).startswith("/metadata/resourceVersion")
               for op in patch) if isinstance(patch, list) else False


def _warned(obj, call):
    """`Warning` headers: the request's own (duplicate fields) and the fields of `obj` accepted in another form than
    its CRD's (kubectl prints them)."""
    values = call.warnings + objects.warnings(obj)
    return MultiDict(("Warning", v) for v in values) if values else None


def _now():
    return datetime.now(timezone.utc)


WATCH_EVENTS = 1000  # events waiting for one watcher at most ...
WATCH_BYTES = 32 * 1024 * 1024  # ... and their bytes: past either, the watcher is too slow and its watch ends
WATCH_WRITE_SECONDS = 60  # a watcher that has not taken one event in this long is dropped


class _TooSlow(Exception):
    """A watcher did not take an event within WATCH_WRITE_SECONDS, or fell so far behind that its mailbox
    overflowed while an event was being written to it."""


async def _write(response, data, box=None):
    """Write `data`; raises _TooSlow when that takes WATCH_WRITE_SECONDS, or when `box` overflows meanwhile."""
    write = asyncio.ensure_future(response.write(data))
    waits = {write} | ({asyncio.ensure_future(box.overflow.wait())} if box is not None else set())
    done, pending = await asyncio.wait(waits, timeout=WATCH_WRITE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if write not in done:
        raise _TooSlow()
    write.result()


class _Mailbox:
    """The events waiting for one watcher, bounded by WATCH_EVENTS and WATCH_BYTES: past either the box overflows
    (it drops what it holds and takes nothing more) and the watch ends, as kube-apiserver ends a watcher that falls
    behind; clients watch again from a list. put() runs in the event loop (the store's writer calls it through
    call_soon_threadsafe)."""

    def __init__(self, events=WATCH_EVENTS, size=WATCH_BYTES):
        self.limit, self.size_limit = events, size
        self.items, self.size, self.overflowed = collections.deque(), 0, False
        self.floor = 0  # the newest resourceVersion the watch has sent
        self.ready, self.overflow = asyncio.Event(), asyncio.Event()

    def put(self, event):
        if self.overflowed or event["rv"] <= self.floor:  # already sent (by a replay of the history): not kept
            return
        if len(self.items) >= self.limit or self.size + event.get("size", 0) > self.size_limit:
            self.overflowed = True
            self.items.clear()
            self.overflow.set()
        else:
            self.items.append(event)
            self.size += event.get("size", 0)
        self.ready.set()

    async def get(self, timeout):
        """The next event, or None after `timeout` seconds or when the box overflowed."""
        if not self.items and not self.overflowed:
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        if self.overflowed or not self.items:
            return None
        event = self.items.popleft()
        self.size -= event.get("size", 0)
        return event


class Jobs:
    def __init__(self, store, clock_now=utc_now, new_uid=lambda: str(uuid.uuid4())):
        self.store, self.now, self.new_uid = store, clock_now, new_uid

    # -- helpers -----------------------------------------------------------------------------------------------
    def _serve(self, obj, resource, version):
        return objects.with_self_link(objects.at_version(obj, resource, version), resource, version)

    def _current(self, resource, namespace, name):
        obj = self.store.get(resource.qualified, namespace, name)
        if obj is None:
            raise apierrors.not_found(objects.target(resource, name))
        return obj

    async def _body(self, call):
        """The request's JSON; duplicate keys as fieldValidation says: 400 under Strict, a warning under Warn."""
        mode = call.field_validation
        duplicates = None if mode == "Strict" else []
        body = objects.decode(await call.request.read(), duplicates=duplicates)
        if mode == "Warn":
            call.warnings += ["299 - " + json.dumps(f'duplicate field "{key}"') for key in duplicates]
        return body

    # -- reads -------------------------------------------------------------------------------------------------
    @staticmethod
    def _table(call):
        return table.wants_table(call.request.headers.get("Accept"))

    async def get(self, call, resource, version, namespace, name):
        obj = self._serve(self._current(resource, namespace, name), resource, version)
        if self._table(call):
            return respond(table.job_table([obj], obj["metadata"]["resourceVersion"], _now()), pretty=call.pretty)
        return respond(obj, pretty=call.pretty)

    async def list(self, call, resource, version, namespace):
        if call.flag("watch"):
            return await self.watch(call, resource, version, namespace)
        labels = label_selector(call.query.get("labelSelector"))
        fields = field_selector(call.query.get("fieldSelector"))
        limit = call.integer("limit")
        after, first_rv = self._continue(call.query.get("continue"))
        if first_rv is not None and first_rv < self.store.compacted():
            raise apierrors.ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                                                     "consistent list result. You can start a new list without the "
                                                     "continue parameter.", {})
        items, rv = self.store.list(resource.qualified, namespace, after=after)
        chosen, more = [], None
        for obj in items:
            if labels(obj["metadata"].get("labels")) and fields(obj):
                if limit and len(chosen) == limit:
                    last = chosen[-1]["metadata"]
                    more = self._token((last["namespace"], last["name"]), first_rv or rv)
                    break
                chosen.append(obj)
        meta = {"resourceVersion": str(first_rv or rv)}
        if more:
            meta["continue"] = more
        if self._table(call):
            body = table.job_table([self._serve(o, resource, version) for o in chosen], first_rv or rv, _now())
            body["metadata"].update(meta)
            return respond(body, pretty=call.pretty)
        body = {"apiVersion": resource.api_version(version), "kind": f"{resource.kind}List", "metadata": meta,
                "items": [self._serve(o, resource, version) for o in chosen]}
        return respond(body, pretty=call.pretty)

    @staticmethod
    def _token(after, rv):
        raw = json.dumps({"v": "ringrun/1", "rv": rv, "after": list(after)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _continue(token):
        """(after, resourceVersion of the first page) from a continue token; 400 when it is not one of ours."""
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

    # -- watch -------------------------------------------------------------------------------------------------
    async def watch(self, call, resource, version, namespace, name=None):
        labels = label_selector(call.query.get("labelSelector"))
        fields = field_selector(call.query.get("fieldSelector"))
        timeout = call.integer("timeoutSeconds")
        timeout = WATCH_SECONDS if timeout is None or timeout == 0 else min(timeout, WATCH_SECONDS)
        given = call.query.get("resourceVersion", "")
        if given not in ("", "0") and not given.isdigit():
            raise apierrors.bad_request(f"resourceVersion: Invalid value: {given!r}: must be an integer")
        as_table = self._table(call)
        loop = asyncio.get_running_loop()
        box = _Mailbox()

        def listener(event):  # in the writer's thread: only this resource's events, never after the loop closed
            if event["resource"] == resource.qualified and not loop.is_closed():
                loop.call_soon_threadsafe(box.put, event)

        def wanted(obj):
            meta = obj["metadata"]
            return (namespace is None or meta["namespace"] == namespace) and (name is None or meta["name"] == name) \
                and labels(meta.get("labels")) and fields(obj)

        self.store.listen(listener)
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        try:
            await response.prepare(call.request)
            if given in ("", "0"):
                items, last = self.store.list(resource.qualified, namespace)
                backlog = ({"type": "ADDED", "object": o, "rv": last} for o in items)
            else:
                last = int(given)
                backlog = self.store.events_since(last, resource.qualified)
            for event in backlog:  # the history is read a page at a time, as it is sent
                if wanted(event["object"]):
                    await self._send(response, event, resource, version, as_table, box)
                last = box.floor = max(last, event["rv"])
            deadline = loop.time() + timeout
            while not box.overflowed:
                remaining = min(deadline - loop.time(), 5.0)
                transport = call.request.transport
                if remaining <= 0 or transport is None or transport.is_closing():
                    break
                event = await box.get(remaining)
                if event is None or event["rv"] <= last:
                    continue
                last = event["rv"]
                if wanted(event["object"]):
                    await self._send(response, event, resource, version, as_table, box)
            if box.overflowed:
                raise _TooSlow()
        except store_module.TooOld as exc:
            error = apierrors.expired(exc.requested, exc.oldest).status()
            await _write(response, dumps({"type": "ERROR", "object": error}).encode())
        except ConnectionResetError:
            pass
        except _TooSlow:  # a client that does not read: its connection dropped, nothing more buffered for it
            if call.request.transport is not None:
                call.request.transport.abort()
        finally:
            self.store.unlisten(listener)
        return response

    async def _send(self, response, event, resource, version, as_table=False, box=None):
        obj = self._serve(event["object"], resource, version)
        if as_table:
            obj = table.job_table([obj], obj["metadata"]["resourceVersion"], _now())
        line = dumps({"type": event["type"], "object": obj})
        await _write(response, line.encode(), box)

    # -- writes ------------------------------------------------------------------------------------------------
    async def create(self, call, resource, version, namespace):
        body = await self._body(call)
        dry_run = call.dry_run
        meta = body.get("metadata") if isinstance(body, dict) else None
        generate = isinstance(meta, dict) and not meta.get("name") and isinstance(meta.get("generateName"), str)
        for attempt in range(8 if generate else 1):
            name = objects.generated_name(meta["generateName"], iter(secrets.token_bytes(5))) if generate else None
            obj = objects.for_create(body, resource, version, namespace, self.new_uid(), self.now(), name=name)
            obj["status"] = {}  # the seeds' responses show an empty status until the controller writes one
            if dry_run:
                if self.store.get(resource.qualified, namespace, obj["metadata"]["name"]) is not None:
                    raise apierrors.already_exists(objects.target(resource, obj["metadata"]["name"]))
                return respond(self._serve(obj, resource, version), 201, call.pretty, _warned(obj, call))
            try:
                stored = self.store.create(resource.qualified, obj)
            except store_module.Exists:
                if generate and attempt < 7:
                    continue
                raise apierrors.already_exists(objects.target(resource, obj["metadata"]["name"])) from None
            return respond(self._serve(stored, resource, version), 201, call.pretty, _warned(stored, call))

    def _commit(self, call, resource, version, old, new):
        """Store `new` in place of `old` (checked against old's resourceVersion); 200 with the result. Raises
        store.Stale when old is no longer current (409 for the caller, or a retry)."""
        if call.dry_run:
            return respond(self._serve(new, resource, version), pretty=call.pretty, headers=_warned(new, call))
        try:
            stored = self.store.update(resource.qualified, new, expect_rv=old["metadata"]["resourceVersion"])
        except store_module.Missing:
            raise apierrors.not_found(objects.target(resource, new["metadata"]["name"])) from None
        return respond(self._serve(stored, resource, version), pretty=call.pretty, headers=_warned(stored, call))

    def _commit_or_conflict(self, call, resource, version, old, new):
        try:
            return self._commit(call, resource, version, old, new)
        except store_module.Stale:
            raise apierrors.conflict(objects.target(resource, new["metadata"]["name"])) from None

    async def replace(self, call, resource, version, namespace, name, status=False):
        body = await self._body(call)
        old = self._current(resource, namespace, name)
        rule = objects.for_status if status else objects.for_replace
        return self._commit_or_conflict(call, resource, version, old,
                                        rule(old, body, resource, version, namespace, name))

    async def patch(self, call, resource, version, namespace, name, status=False):
        kind = (call.request.content_type or "").split(";")[0].strip()
        if kind not in (MERGE, JSON_PATCH):
            raise apierrors.unsupported_media_type(kind or "none", PATCH_TYPES)
        patch = await self._body(call)
        rule = objects.for_status if status else objects.for_replace
        # a patch that names no resourceVersion applies to whatever is current: retried when the controller wrote
        # the status in between (as kube-apiserver retries unconditional patches)
        for attempt in range(PATCH_RETRIES):
            old = self._current(resource, namespace, name)
            served = objects.at_version(old, resource, version)
            try:
                patched = merge_patch(served, patch) if kind == MERGE else json_patch(served, patch)
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
            try:
                return self._commit(call, resource, version, old,
                                    rule(old, patched, resource, version, namespace, name))
            except store_module.Stale:
                if conditional or attempt == PATCH_RETRIES - 1:
                    raise apierrors.conflict(objects.target(resource, name)) from None

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
        if not dry_run:
            try:
                self.store.delete(resource.qualified, namespace, name, expect_uid=old["metadata"]["uid"],
                                  expect_rv=pre.get("resourceVersion"))
            except store_module.Missing:
                raise apierrors.not_found(target) from None
            except store_module.Stale:
                raise apierrors.conflict(target, "Precondition failed: the object was changed or created again "
                                                 "since it was read") from None
        return respond(apierrors.success(target, old["metadata"]["uid"]), pretty=call.pretty)

    async def delete_collection(self, call, resource, version, namespace):
        _, dry_run = await self._delete_options(call)
        labels = label_selector(call.query.get("labelSelector"))
        fields = field_selector(call.query.get("fieldSelector"))
        items, _ = self.store.list(resource.qualified, namespace)
        deleted = []
        for obj in items:
            if labels(obj["metadata"].get("labels")) and fields(obj):
                meta = obj["metadata"]
                if not dry_run:
                    try:
                        obj = self.store.delete(resource.qualified, meta["namespace"], meta["name"],
                                                expect_uid=meta["uid"])
                    except (store_module.Missing, store_module.Stale):
                        continue
                deleted.append(self._serve(obj, resource, version))
        body = {"apiVersion": resource.api_version(version), "kind": f"{resource.kind}List",
                "metadata": {"resourceVersion": str(self.store.current())}, "items": deleted}
        return respond(body, pretty=call.pretty)

"""Watches (the generic handler's, server/rest.py): each watcher's bounded mailbox, the stream of events, and how
a store event looks to a watcher with a selector.

- From a list (ADDED events, `resourceVersion` "" or "0") or from a resourceVersion (the store's history, a page at a
  time); `sendInitialEvents=true` ends the initial events with a BOOKMARK annotated `k8s.io/initial-events-end`;
  `allowWatchBookmarks` brings a BOOKMARK a minute.
- An object that starts matching the selector comes as ADDED, one that stops as DELETED (its last matching content
  at the new resourceVersion), as kube-apiserver's watch cache sends them.
- A watcher that falls behind (WATCH_EVENTS / WATCH_BYTES waiting) or takes nothing for WATCH_WRITE_SECONDS is
  dropped; its client watches again from a list.
- One event, many watchers: each event's line is serialized once.
"""

import asyncio
import collections
import contextlib
import functools

from aiohttp import web

from . import store as store_module
from .api import apierrors
from .http import dumps

BOOKMARK_SECONDS = 60  # a watch that asked for bookmarks gets one this often
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
SERIALIZED_EVENTS = 256  # watch lines kept serialized for the next watcher of the same event
WATCH_SECONDS = 1800  # a watch with no timeoutSeconds ends after this long (kube-apiserver's minimum request timeout)
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


def list_options_error(message):
    return apierrors.ApiError(422, "Invalid", f"ListOptions.meta.k8s.io \"\" is invalid: {message}",
                              {"group": "meta.k8s.io", "kind": "ListOptions",
                               "causes": [{"reason": "FieldValueForbidden", "message": message.split(": ", 1)[-1],
                                           "field": message.split(":", 1)[0]}]})


class Watching:
    """The watch half of the generic handler (server/rest.py's Rest): it needs `store`, `_serve`, `_selectors`,
    `_table` and `_as_table` of the handler."""

    def __init__(self):
        self._lines = collections.OrderedDict()  # the watch lines of the latest events, serialized once

    # -- watch -------------------------------------------------------------------------------------------------
    def _watch_mode(self, call):
        """(start from a list?, end the initial events with a bookmark?) from the watch's options; 422 for the
        combinations kube-apiserver refuses."""
        given = call.query.get("resourceVersion", "")
        match = call.query.get("resourceVersionMatch")
        initial = call.query.get("sendInitialEvents")
        if match not in (None, "", "NotOlderThan", "Exact"):
            raise list_options_error(f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                                      '"Exact", "NotOlderThan"')
        if initial is None:
            if match:
                raise list_options_error("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for "
                                          "watch unless sendInitialEvents is provided")
            return given in ("", "0"), False
        if match != "NotOlderThan":
            raise list_options_error("resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                                      "resourceVersionMatch to NotOlderThan")
        wanted = initial.lower() == "true"
        if wanted and not call.flag("allowWatchBookmarks"):
            raise list_options_error("allowWatchBookmarks: Forbidden: sendInitialEvents requires setting "
                                      "allowWatchBookmarks to true")
        return wanted or given in ("", "0"), wanted

    async def watch(self, call, resource, version, namespace, name=None):
        labels, fields = self._selectors(call, resource)
        timeout = call.integer("timeoutSeconds")
        timeout = WATCH_SECONDS if timeout is None or timeout == 0 else min(timeout, WATCH_SECONDS)
        given = call.query.get("resourceVersion", "")
        if given not in ("", "0") and not given.isdigit():
            raise apierrors.bad_request(f"resourceVersion: Invalid value: {given!r}: must be an integer")
        from_list, end_bookmark = self._watch_mode(call)
        if given not in ("", "0") and int(given) > self.store.current():
            raise apierrors.ApiError(504, "Timeout", f"Timeout: Too large resource version: {given}, current: "
                                                     f"{self.store.current()}",
                                     {"causes": [{"reason": "ResourceVersionTooLarge",
                                                  "message": "Too large resource version"}],
                                      "retryAfterSeconds": 1}, retry_after=1)
        bookmarks = call.flag("allowWatchBookmarks")
        as_table = self._table(call)
        loop = asyncio.get_running_loop()
        box = _Mailbox()

        def listener(event):  # in the writer's thread: only this resource's events, never after the loop closed
            if event["resource"] == resource.key and not loop.is_closed():
                loop.call_soon_threadsafe(box.put, event)

        def wanted(obj):
            meta = obj["metadata"]
            return (namespace is None or meta.get("namespace") == namespace) and \
                (name is None or meta.get("name") == name) and labels(meta.get("labels")) and fields(obj)

        self.store.listen(listener)
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        send = functools.partial(self._send, response, resource, version, as_table, box)
        try:
            await response.prepare(call.request)
            if from_list:
                items, last = self.store.list(resource.key, namespace)
                backlog = ({"type": "ADDED", "object": o, "rv": last} for o in items)
            else:
                last = int(given)
                backlog = self.store.events_since(last, resource.key)
            for event in backlog:  # the history is read a page at a time, as it is sent
                shown = _as_seen(event, wanted)
                if shown is not None:
                    await send(*shown)
                last = box.floor = max(last, event["rv"])
            if end_bookmark:
                await send("BOOKMARK", self._bookmark(resource, version, last, initial_end=True))
            deadline = loop.time() + timeout
            marked = loop.time()
            while not box.overflowed:
                remaining = min(deadline - loop.time(), 5.0)
                transport = call.request.transport
                if remaining <= 0 or transport is None or transport.is_closing():
                    break
                event = await box.get(remaining)
                if bookmarks and loop.time() - marked >= BOOKMARK_SECONDS:
                    marked = loop.time()
                    await send("BOOKMARK", self._bookmark(resource, version, last))
                if event is None or event["rv"] <= last:
                    continue
                last = event["rv"]
                shown = _as_seen(event, wanted)
                if shown is not None:
                    await send(*shown)
            if box.overflowed:
                raise _TooSlow()
        except store_module.TooOld as exc:
            error = apierrors.expired(exc.requested, exc.oldest).status()
            with contextlib.suppress(_TooSlow, ConnectionResetError):
                await _write(response, dumps({"type": "ERROR", "object": error}).encode())
        except ConnectionResetError:
            pass
        except _TooSlow:  # a client that does not read: its connection dropped, nothing more buffered for it
            if call.request.transport is not None:
                call.request.transport.abort()
        finally:
            self.store.unlisten(listener)
        return response

    @staticmethod
    def _bookmark(resource, version, rv, initial_end=False):
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return {"kind": resource.kind, "apiVersion": resource.api_version(version), "metadata": meta}

    async def _send(self, response, resource, version, as_table, box, kind, obj):
        if kind == "BOOKMARK":
            line = dumps({"type": kind, "object": obj}).encode()
        elif as_table:
            served = self._serve(obj, resource, version)
            line = dumps({"type": kind, "object": self._as_table(resource, [served],
                                                                 served["metadata"]["resourceVersion"])}).encode()
        else:  # one event, many watchers: serialized once (the event loop is the only user of the cache)
            meta = obj["metadata"]
            key = (resource.qualified, version, kind, meta.get("uid"), meta.get("resourceVersion"))
            line = self._lines.get(key)
            if line is None:
                line = dumps({"type": kind, "object": self._serve(obj, resource, version)}).encode()
                self._lines[key] = line
                if len(self._lines) > SERIALIZED_EVENTS:
                    self._lines.popitem(last=False)
        await _write(response, line, box)


def _as_seen(event, wanted):
    """(type, object) of a store event as a watcher with the selector `wanted` sees it, or None: an object that
    starts matching comes as ADDED, one that stops as DELETED (its last matching content, at the new
    resourceVersion), as kube-apiserver's watch cache sends them."""
    obj, kind = event["object"], event["type"]
    if kind != "MODIFIED":
        return (kind, obj) if wanted(obj) else None
    before = event.get("before") or event.get("prev")
    now_ok = wanted(obj)
    was_ok = wanted(before) if before is not None else now_ok
    if now_ok:
        return ("MODIFIED" if was_ok else "ADDED"), obj
    if not was_ok:
        return None
    old = event.get("before")
    if old is None:  # from the history, which keeps only what selectors see of the object before
        return "DELETED", obj
    return "DELETED", {**old, "metadata": {**old["metadata"], "resourceVersion": str(event["rv"])}}

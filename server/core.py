"""The core API that clients need besides the jobs: /version, discovery, namespaces, pods and their logs, OpenAPI."""

import asyncio
import os
from datetime import datetime, timezone

from aiohttp import web

from ringrun.runtime import apierrors, resources, table
from ringrun.runtime.apierrors import Target
from ringrun.runtime.selectors import field_selector, label_selector

from ringrun.launcher import logfiles

from . import openapi, pods
from .http import respond

VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-ringrun", "gitCommit": "", "gitTreeState": "clean",
           "buildDate": "2026-12-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}
LOG_FOLLOW_SECONDS = 3600  # a followed log ends after this long at most
CHUNK = 64 * 1024  # a followed log is read and sent this much at a time
FOLLOW_WRITE_SECONDS = 60  # a follower that takes no chunk in this long is let go
_POLL = 0.2


class Core:
    def __init__(self, store, controller, address):
        self.store, self.controller, self.address = store, controller, address

    # -- discovery ---------------------------------------------------------------------------------------------
    async def version(self, call):
        return respond(VERSION, pretty=call.pretty)

    async def discovery(self, call, kind, *args):
        documents = {"api": lambda: resources.api_versions(self.address), "apis": resources.api_group_list,
                     "group": lambda: resources.api_group(*args),
                     "resources": lambda: resources.api_resource_list(*args)}
        body = documents[kind]()
        if body is None:
            raise apierrors.no_route()
        return respond(body, pretty=call.pretty)

    async def openapi(self, call, path=None):
        body = openapi.root() if path is None else openapi.document(path)
        if body is None:
            raise apierrors.no_route()
        return respond(body, pretty=call.pretty)

    # -- namespaces: every valid name exists (objects make them visible in the list) ---------------------------
    @staticmethod
    def _namespace(name):
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    async def namespace(self, call, name):
        return respond(self._namespace(name), pretty=call.pretty)

    async def namespaces(self, call):
        names = sorted(set(self.store.namespaces()) | {"default"})
        return respond({"apiVersion": "v1", "kind": "NamespaceList",
                        "metadata": {"resourceVersion": str(self.store.current())},
                        "items": [self._namespace(n) for n in names]}, pretty=call.pretty)

    # -- pods --------------------------------------------------------------------------------------------------
    def _pods(self, namespace):
        found = []
        for resource in resources.JOBS:
            items, _ = self.store.list(resource.qualified, namespace)
            for job in items:
                recorded = pods.read_replicas(self.controller.logs_of(job["metadata"]["uid"]))
                for pod in pods.pods_of(job, recorded):
                    found.append((pod, os.path.join(self.controller.logs_of(job["metadata"]["uid"]), pod["_log"])))
        return found

    @staticmethod
    def _public(pod):
        return {k: v for k, v in pod.items() if k != "_log"}

    async def pod_list(self, call, namespace):
        labels = label_selector(call.query.get("labelSelector"))
        fields = field_selector(call.query.get("fieldSelector"))
        items = [self._public(p) for p, _ in self._pods(namespace)
                 if labels(p["metadata"]["labels"]) and fields(p)]
        items.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        if table.wants_table(call.request.headers.get("Accept")):
            return respond(table.pod_table(items, self.store.current(), _now()), pretty=call.pretty)
        return respond({"apiVersion": "v1", "kind": "PodList",
                        "metadata": {"resourceVersion": str(self.store.current())}, "items": items},
                       pretty=call.pretty)

    def _find(self, namespace, name):
        for pod, log in self._pods(namespace):
            if pod["metadata"]["name"] == name:
                return pod, log
        raise apierrors.not_found(Target("pods", "", name, "Pod"))

    async def pod(self, call, namespace, name):
        pod = self._public(self._find(namespace, name)[0])
        if table.wants_table(call.request.headers.get("Accept")):
            return respond(table.pod_table([pod], self.store.current(), _now()), pretty=call.pretty)
        return respond(pod, pretty=call.pretty)

    async def log(self, call, namespace, name):
        pod, base = self._find(namespace, name)
        container = call.query.get("container")
        own = pod["spec"]["containers"][0]["name"]
        if container and container != own:
            raise apierrors.bad_request(f"container {container} is not valid for pod {name}")
        tail = call.integer("tailLines")
        limit = call.integer("limitBytes", minimum=1)
        since = call.integer("sinceSeconds", minimum=1)
        path = base + (".previous.log" if call.flag("previous") else ".log")
        if call.flag("previous") and not os.path.exists(path):
            raise apierrors.bad_request(f'previous terminated container "{own}" in pod "{name}" not found')
        # from the end or a known offset: never more read than sent (the file is at most --log-max-size)
        start = logfiles.since_offset(path, since) if since is not None else 0
        if tail is not None:
            start = max(start, logfiles.tail_offset(path, tail))
        data = logfiles.read(path, start, limit)
        if not call.flag("follow") or call.flag("previous"):
            return web.Response(body=data, content_type="text/plain", charset="utf-8")
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(call.request)
        await response.write(data)
        sent = len(data)
        file_id, offset = _identity(path), start + len(data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOG_FOLLOW_SECONDS
        checked = 0.0
        try:
            while loop.time() < deadline and (limit is None or sent < limit):
                transport = call.request.transport
                if transport is None or transport.is_closing():
                    break
                if _identity(path) != file_id or logfiles.size(path) < offset:  # a restart or a rotation: a new file
                    file_id, offset = _identity(path), 0
                more = logfiles.read(path, offset, min(CHUNK, CHUNK if limit is None else limit - sent))
                if more:
                    await asyncio.wait_for(response.write(more), FOLLOW_WRITE_SECONDS)
                    offset += len(more)
                    sent += len(more)
                    continue
                if loop.time() - checked >= 1.0:  # is the replica still running? (once a second)
                    checked = loop.time()
                    recorded = pods.read_replicas(os.path.dirname(base))
                    phase = next((r["phase"] for r in recorded.get("replicas", []) if r["name"] == name), None)
                    if phase not in ("Pending", "Running"):
                        while limit is None or sent < limit:  # what it wrote last, a chunk at a time
                            rest = logfiles.read(path, offset, min(CHUNK, CHUNK if limit is None else limit - sent))
                            if not rest:
                                break
                            await asyncio.wait_for(response.write(rest), FOLLOW_WRITE_SECONDS)
                            offset += len(rest)
                            sent += len(rest)
                        break
                await asyncio.sleep(_POLL)
        except (ConnectionResetError, asyncio.TimeoutError):  # gone, or not reading: the follow ends
            pass
        return response


def _now():
    return datetime.now(timezone.utc)


def _identity(path):
    try:
        stat = os.stat(path)
        return (stat.st_dev, stat.st_ino)
    except FileNotFoundError:
        return None

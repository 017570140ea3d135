"""What clients need besides the resources' objects: /version, discovery, OpenAPI, and pods' logs."""

import asyncio
import os

from aiohttp import web

from ringrun.launcher import logfiles

from . import openapi, pods
from .api import apierrors, resources
from .api.apierrors import Target
from .api.resources import PODS
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

    # -- pods' logs --------------------------------------------------------------------------------------------
    def _find(self, namespace, name):
        """(the pod, its log file's path without `.log`); 404 when there is no such pod."""
        pod = self.store.get(PODS.qualified, namespace, name)
        if pod is None:
            raise apierrors.not_found(Target("pods", "", name, "Pod"))
        return pod, pods.log_base(pod, self.controller.logs_of)

    def _phase(self, namespace, name):
        pod = self.store.get(PODS.qualified, namespace, name)
        return (pod.get("status") or {}).get("phase") if pod else None

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
                    if self._phase(namespace, name) not in ("Pending", "Running"):
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


def _identity(path):
    try:
        stat = os.stat(path)
        return (stat.st_dev, stat.st_ino)
    except FileNotFoundError:
        return None

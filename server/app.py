"""`ringrun serve`: the HTTPS server. Routes each request (authenticated, then authorized) to the job resources
(jobs.py) or the core API (core.py); every error is a metav1.Status body, anything unexpected a 500 that wrote
nothing half-way (each store write is one transaction)."""

import asyncio
import os
import secrets
import signal
import socket
import ssl
import traceback
from dataclasses import dataclass

from aiohttp import web

from ringrun.runtime import apierrors, resources
from ringrun.runtime.apierrors import ApiError, Target

from . import auth, tls
from .controller import Controller
from .core import Core
from .http import Call, error_response
from .jobs import Jobs
from .store import Store

MAX_BODY = 3 * 1024 * 1024 + 4096
UNAUTHENTICATED = {("version",), ("healthz",), ("livez",), ("readyz",)}
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Settings:
    data_dir: str
    host: str = "127.0.0.1"
    port: int = 6443
    token_files: tuple[str, ...] = ()
    policy_file: str | None = None
    capacity: tuple | None = None
    grace: float = 5.0
    watch_history: int = 20000


class Server:
    def __init__(self, store, controller, users, rules, address, log):
        self.store, self.controller, self.users, self.rules, self.log = store, controller, users, rules, log
        self.jobs = Jobs(store)
        self.core = Core(store, controller, address)

    def app(self):
        application = web.Application(client_max_size=MAX_BODY)
        application.router.add_route("*", "/{tail:.*}", self.handle)
        return application

    async def handle(self, request):
        pretty = request.query.get("pretty", "").lower() in ("true", "1")
        try:
            parts = [p for p in request.path.split("/") if p]
            user = None
            if tuple(parts) not in UNAUTHENTICATED:
                user = auth.authenticate(self.users, request.headers.get("Authorization"))
                if user is None:
                    raise apierrors.unauthorized()
            call = Call(request, user, dict(request.query), parts)
            return await self.route(call, parts)
        except ApiError as error:
            return error_response(error, pretty)
        except web.HTTPRequestEntityTooLarge:
            return error_response(apierrors.too_large(MAX_BODY), pretty)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - answered as a Status 500; the store is untouched (one transaction)
            self.log("".join(traceback.format_exception(exc)))
            return error_response(apierrors.internal(f"{type(exc).__name__}: {exc}"), pretty)

    def authorize(self, call, verb, target, namespace, subresource=""):
        resource = target.plural + (f"/{subresource}" if subresource else "")
        if not auth.allowed(self.rules, call.user, verb, resource, namespace or ""):
            raise apierrors.forbidden(call.user.name, verb, target, namespace, subresource)

    async def route(self, call, parts):
        method = call.method
        n = len(parts)
        if tuple(parts) in UNAUTHENTICATED:
            if method != "GET":
                raise apierrors.method_not_allowed(method)
            return await self.core.version(call) if parts == ["version"] else web.Response(text="ok")
        if method == "GET" and parts[:1] == ["openapi"]:
            if parts == ["openapi", "v3"]:
                return await self.core.openapi(call)
            if parts[:2] == ["openapi", "v3"]:
                return await self.core.openapi(call, "/".join(parts[2:]))
            raise apierrors.no_route()
        if parts == ["api"] or parts == ["apis"]:
            return await self._get_only(call, self.core.discovery(call, parts[0]))
        if n == 2 and parts[0] == "apis":
            return await self._get_only(call, self.core.discovery(call, "group", parts[1]))
        if (n == 3 and parts[0] == "apis") or parts == ["api", "v1"]:
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            return await self._get_only(call, self.core.discovery(call, "resources", group, version))
        if parts[:2] == ["api", "v1"]:
            return await self.route_core(call, parts[2:])
        if parts[0] == "apis" and n >= 4:
            return await self.route_jobs(call, parts[1], parts[2], parts[3:])
        raise apierrors.no_route()

    async def _get_only(self, call, coroutine):
        if call.method != "GET":
            coroutine.close()
            raise apierrors.method_not_allowed(call.method)
        return await coroutine

    async def route_core(self, call, rest):
        pods = Target("pods", "", "", "Pod")
        namespaces = Target("namespaces", "", "", "Namespace")
        if call.method != "GET":
            raise apierrors.method_not_allowed(call.method)
        if rest == ["namespaces"]:
            self.authorize(call, "list", namespaces, None)
            return await self.core.namespaces(call)
        if len(rest) == 2 and rest[0] == "namespaces":
            self.authorize(call, "get", Target("namespaces", "", rest[1], "Namespace"), None)
            return await self.core.namespace(call, rest[1])
        if rest == ["pods"]:
            self.authorize(call, "list", pods, None)
            return await self.core.pod_list(call, None)
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            namespace = rest[1]
            if len(rest) == 3:
                self.authorize(call, "list", pods, namespace)
                return await self.core.pod_list(call, namespace)
            target = Target("pods", "", rest[3], "Pod")
            if len(rest) == 4:
                self.authorize(call, "get", target, namespace)
                return await self.core.pod(call, namespace, rest[3])
            if len(rest) == 5 and rest[4] == "log":
                self.authorize(call, "get", target, namespace, "log")
                return await self.core.log(call, namespace, rest[3])
        raise apierrors.no_route()

    async def route_jobs(self, call, group, version, rest):
        method, jobs = call.method, self.jobs
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, plural, tail = rest[1], rest[2], rest[3:]
        elif len(rest) == 1:
            namespace, plural, tail = None, rest[0], []
        else:
            raise apierrors.no_route()
        resource = resources.job_resource(group, version, plural)
        if resource is None or len(tail) > 2 or (len(tail) == 2 and tail[1] != "status"):
            raise apierrors.no_route()
        target = Target(resource.plural, resource.group, tail[0] if tail else "", resource.kind)
        if not tail:
            if method == "GET":
                verb = "watch" if call.flag("watch") else "list"
                self.authorize(call, verb, target, namespace)
                return await jobs.list(call, resource, version, namespace)
            if namespace is None:
                raise apierrors.method_not_allowed(method)
            if method == "POST":
                self.authorize(call, "create", target, namespace)
                return await jobs.create(call, resource, version, namespace)
            if method == "DELETE":
                self.authorize(call, "deletecollection", target, namespace)
                return await jobs.delete_collection(call, resource, version, namespace)
            raise apierrors.method_not_allowed(method)
        if namespace is None:
            raise apierrors.no_route()
        name = tail[0]
        status = len(tail) == 2
        verb = _VERBS.get(method)
        if verb is None or verb == "create" or (status and verb == "delete"):
            raise apierrors.method_not_allowed(method)
        self.authorize(call, verb, target, namespace, "status" if status else "")
        if method == "GET":
            return await jobs.get(call, resource, version, namespace, name)
        if method == "PUT":
            return await jobs.replace(call, resource, version, namespace, name, status=status)
        if method == "PATCH":
            return await jobs.patch(call, resource, version, namespace, name, status=status)
        return await jobs.delete(call, resource, version, namespace, name)


ADMIN_TOKENS = "tokens.csv"


def _admin_token(data_dir):
    """The admin token from DATA/tokens.csv, written on first start (user admin, group system:masters)."""
    path = os.path.join(data_dir, ADMIN_TOKENS)
    if not os.path.exists(path):
        token = secrets.token_urlsafe(32)
        from ringrun.launcher import files

        files.write_atomic(path, f'{token},admin,admin,"system:masters"\n'.encode(), mode=0o600)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    users = auth.read_tokens(text, path)
    token = next((t for t, u in users.items() if u.name == "admin" and auth.MASTERS in u.groups), None)
    if token is None:
        raise auth.AuthFileError(f"{path}: has no line for the user admin in the group {auth.MASTERS}")
    return token, users


def _lock(data_dir):
    """Hold DATA for this server (one server per data directory). Raises UsageError when another holds it."""
    from ringrun.launcher import files
    from ringrun.runtime import UsageError

    try:
        return files.hold_lock(os.path.join(data_dir, ".lock"), f"--data-dir {data_dir!r}: another ringrun serve "
                                                                "is using it")
    except BlockingIOError as exc:
        raise UsageError(str(exc)) from None


def serve(settings, environ, out, err):
    """Run the server until SIGTERM or SIGINT; returns the exit code (0 after a clean stop)."""
    from ringrun.launcher import files
    from ringrun.runtime import UsageError

    data_dir = os.path.abspath(settings.data_dir)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    lock = _lock(data_dir)
    try:
        token, users = _admin_token(data_dir)
        for path in settings.token_files:
            with open(path, encoding="utf-8") as handle:
                extra = auth.read_tokens(handle.read(), path)
            users.update(extra)
        rules = []
        if settings.policy_file:
            with open(settings.policy_file, encoding="utf-8") as handle:
                rules = auth.read_policy(handle.read(), settings.policy_file)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except auth.AuthFileError as exc:
        raise UsageError(str(exc)) from None
    ca, cert, key = tls.ensure(data_dir, [settings.host])
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--port {settings.port}: cannot listen on {settings.host}: {exc.strerror}") from None
    sock.listen(512)
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if family == socket.AF_INET6 else settings.host
    url = f"https://{host}:{port}"
    store = Store(os.path.join(data_dir, "store.db"), history=settings.watch_history)
    kubeconfig = os.path.join(data_dir, "kubeconfig")
    files.write_atomic(kubeconfig, tls.kubeconfig(url, ca, token).encode(), mode=0o600)

    def log(message):
        err.write(f"ringrun serve: {message}\n")
        err.flush()

    controller = Controller(store, data_dir, environ, capacity=settings.capacity, grace=settings.grace,
                            is_root=os.geteuid() == 0, log=log)
    controller.start()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Server(store, controller, users, rules, f"{settings.host}:{port}", log)
    out.write(f"ringrun serve: listening on {url} (data in {data_dir})\n"
              f"export KUBECONFIG={kubeconfig}\n")
    out.flush()
    try:
        asyncio.run(_run(server.app(), sock, context))
    finally:
        controller.stop()
        store.close()
        lock.close()
    return 0


async def _run(application, sock, context):
    # handler_cancellation: a client that goes away ends its watch or log follow at once
    runner = web.AppRunner(application, handle_signals=False, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=context, shutdown_timeout=2.0)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()

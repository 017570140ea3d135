"""`ringrun serve`: the HTTPS server. Routes each request (authenticated, then authorized) to the job resources
(jobs.py) or the core API (core.py); every error is a metav1.Status body, anything unexpected a 500 that wrote
nothing half-way (each store write is one transaction)."""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import traceback
from dataclasses import dataclass

from aiohttp import web

from ringrun.launcher.logfiles import Rotation
from ringrun.server.api import apierrors, resources
from ringrun.server.api.apierrors import ApiError, Target
from ringrun.runtime.errors import SetupError, UsageError

from . import auth, connections, datadir, tls
from .controller import Controller
from .core import Core
from .http import Call, error_response
from .rest import Rest
from .jobusers import JOB_UIDS, ROOT_JOBS_DIR, JobUsers, JobUsersError
from .store import Store, StoreError, TooLarge
from .trainerapi import public_read, status_target, trainer_status_problems

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
    jobs_dir: str | None = None  # default: ROOT_JOBS_DIR as root, DATA/jobs otherwise
    max_connections: int = connections.MAX_CONNECTIONS
    log_rotation: Rotation = Rotation()
    job_uids: tuple = JOB_UIDS
    containers: bool = False  # every replica a container of its image (engine: podman, docker or the first found)
    engine: str | None = None
    pull: str | None = None  # never | missing | always: replaces every container's imagePullPolicy
    trainer_runtimes: bool = True  # Trainer's published ClusterTrainingRuntimes installed on the store's first start


class Server:
    def __init__(self, store, controller, users, rules, address, log):
        """rules: the policy's authorization rules (auth.Rule)."""
        self.store, self.controller, self.users, self.rules, self.log = store, controller, users, rules, log
        self.rest = Rest(store)
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
            progress = status_target(request.method, parts)
            if progress is not None:  # a TrainJob's pods report progress with the token it was given
                return await self.trainer_status(request, *progress, pretty)
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
        except TooLarge as exc:  # the object a write would store (etcd's limit)
            return error_response(ApiError(413, "RequestEntityTooLarge", f"the object cannot be stored: {exc}", {}),
                                  pretty)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - answered as a Status 500; the store is untouched (one transaction)
            self.log("".join(traceback.format_exception(exc)))
            return error_response(apierrors.internal(f"{type(exc).__name__}: {exc}"), pretty)

    async def trainer_status(self, request, namespace, name, pretty):
        """POST of a TrainJob's progress (Trainer's status server): the bearer must be the token given to that
        TrainJob's run (403 otherwise, as Trainer's); `trainerStatus` is checked and stored in its status."""
        given = auth.bearer(request.headers.get("Authorization"))
        if not self.controller.status_token_matches(namespace, name, given):
            raise apierrors.ApiError(403, "Forbidden", "Forbidden", {})
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        kept, problems = trainer_status_problems(body)
        if problems:
            raise apierrors.invalid("TrainJob", "trainer.kubeflow.org", name, problems)
        if kept is not None and not self.controller.write_trainer_status(namespace, name, kept):
            raise apierrors.ApiError(404, "NotFound", "Train job not found", {})
        return web.json_response(body, status=200)

    def authorize(self, call, verb, target, namespace, subresource=""):
        resource = target.plural + (f"/{subresource}" if subresource else "")
        if target.group == "" and not subresource and public_read(target.plural, verb, namespace, target.name):
            return
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
        """/api/v1/...: pods (and their logs), namespaces and events, through the generic handler."""
        if len(rest) >= 3 and rest[0] == "namespaces":
            resource = resources.core_resource(rest[2])
            if resource is None or not resource.namespaced:
                raise apierrors.no_route()
            tail = rest[3:]
            if resource == resources.PODS and len(tail) == 2 and tail[1] == "log":
                if call.method != "GET":
                    raise apierrors.method_not_allowed(call.method)
                self.authorize(call, "get", Target("pods", "", tail[0], "Pod"), rest[1], "log")
                return await self.core.log(call, rest[1], tail[0])
            return await self.dispatch(call, resource, "v1", rest[1], tail)
        resource = resources.core_resource(rest[0]) if rest else None
        if resource is None or len(rest) > 2 or (len(rest) == 2 and resource.namespaced):
            raise apierrors.no_route()
        return await self.dispatch(call, resource, "v1", None, rest[1:])

    async def route_jobs(self, call, group, version, rest):
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, plural, tail = rest[1], rest[2], rest[3:]
        else:
            namespace, plural, tail = None, rest[0], rest[1:]
        resource = resources.job_resource(group, version, plural)
        if resource is None or (namespace is not None and not resource.namespaced):
            raise apierrors.no_route()
        return await self.dispatch(call, resource, version, namespace, tail)

    async def dispatch(self, call, resource, version, namespace, tail):
        """One request for `resource` (at `version`): the collection (tail []), an object ([name]) or its status
        ([name, "status"]), authorized, then handed to the generic handler."""
        method, rest = call.method, self.rest
        if len(tail) > 2 or (len(tail) == 2 and (tail[1] != "status" or not resource.status)):
            raise apierrors.no_route()
        target = Target(resource.plural, resource.group, tail[0] if tail else "", resource.kind)
        if not tail:
            if method == "GET":
                verb = "watch" if call.flag("watch") else "list"
                self.authorize(call, verb, target, namespace)
                return await rest.list(call, resource, version, namespace)
            if resource.namespaced and namespace is None:
                raise apierrors.method_not_allowed(method)
            if method == "POST":
                self.authorize(call, "create", target, namespace)
                return await rest.create(call, resource, version, namespace)
            if method == "DELETE":
                self.authorize(call, "deletecollection", target, namespace)
                return await rest.delete_collection(call, resource, version, namespace)
            raise apierrors.method_not_allowed(method)
        if resource.namespaced and namespace is None:
            raise apierrors.no_route()
        name = tail[0]
        status = len(tail) == 2
        verb = _VERBS.get(method)
        if verb is None or verb == "create" or (status and verb == "delete"):
            raise apierrors.method_not_allowed(method)
        self.authorize(call, verb, target, namespace, "status" if status else "")
        if method == "GET":
            return await rest.get(call, resource, version, namespace, name)
        if method == "PUT":
            return await rest.replace(call, resource, version, namespace, name, status=status)
        if method == "PATCH":
            return await rest.patch(call, resource, version, namespace, name, status=status)
        return await rest.delete(call, resource, version, namespace, name)


ADMIN_TOKENS = "tokens.csv"


def _admin_token(data_dir):
    """The admin token from DATA/tokens.csv, written on first start (user admin, group system:masters)."""
    from ringrun.launcher import files

    path = os.path.join(data_dir, ADMIN_TOKENS)
    if not os.path.exists(path):
        token = secrets.token_urlsafe(32)
        files.write_atomic(path, f'{token},admin,admin,"system:masters"\n'.encode(), mode=0o600)
    users = auth.read_tokens(_read_text(path, SetupError), path)
    token = next((t for t, u in users.items() if u.name == "admin" and auth.MASTERS in u.groups), None)
    if token is None:
        raise SetupError(f"{path}: has no line for the user admin in the group {auth.MASTERS}")
    return token, users


def _read_text(path, error):
    """The UTF-8 text of `path`; `error` (UsageError for a file named on the command line, SetupError for one in
    the data directory) naming the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _lock(data_dir):
    """Hold DATA for this server (one server per data directory). Raises UsageError when another holds it."""
    from ringrun.launcher import files

    try:
        return files.hold_lock(os.path.join(data_dir, ".lock"), f"--data-dir {data_dir!r}: another ringrun serve "
                                                                "is using it")
    except BlockingIOError as exc:
        raise UsageError(str(exc)) from None


def _users_and_policy(settings, data_dir):
    """({token: User}, auth.Policy) from DATA/tokens.csv, --token-auth-file and --policy."""
    token, users = _admin_token(data_dir)
    try:
        for path in settings.token_files:
            users.update(auth.read_tokens(_read_text(path, UsageError), path))
        policy = auth.Policy()
        if settings.policy_file:
            policy = auth.read_policy(_read_text(settings.policy_file, UsageError), settings.policy_file)
    except auth.AuthFileError as exc:
        raise UsageError(str(exc)) from None
    return token, users, policy


def _one_user_warning(settings, log):
    """Not root: jobs are this user's processes, so whoever may create one has this user's power: said at start."""
    if os.geteuid() != 0 and (settings.token_files or settings.policy_file):
        log(f"warning: not running as root, so every job runs as this user (uid {os.geteuid()}) with this "
            "user's files in reach, the data directory's tokens included: --token-auth-file users who may create "
            "jobs get this user's power, whatever --policy says (run the server as root to give each namespace's "
            "jobs a uid of their own)")


def _open_store(data_dir, history):
    """The store DATA/store.db (made 0600). Raises SetupError when the file is not a store."""
    path = os.path.join(data_dir, "store.db")
    datadir.private_file(path)
    try:
        return Store(path, history=history)
    except StoreError as exc:
        raise SetupError(f"{path}: {exc}") from None


def _listen(settings):
    """A listening socket on --host and --port. Raises UsageError."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--port {settings.port}: cannot listen on {settings.host}: {exc.strerror}") from None
    sock.listen(512)
    return sock


def _owner(data_dir):
    """The label of this server's containers and networks: its data directory's, so a restarted server finds (and
    removes) what the one before it left."""
    import hashlib

    return "ringrun-serve-" + hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]


def serve(settings, environ, out, err):
    """Run the server until SIGTERM or SIGINT; returns the exit code (0 after a clean stop). Raises UsageError
    (exit 2) for bad options and files they name, SetupError (exit 5) for a data directory, store, certificate or
    jobs folder that cannot be used."""
    from ringrun.launcher import files

    def log(message):
        err.write(f"ringrun serve: {message}\n")
        err.flush()

    with contextlib.ExitStack() as held:  # released in reverse order, whatever stops the server
        data_dir = datadir.secure(os.path.abspath(settings.data_dir))
        held.enter_context(_lock(data_dir))
        token, users, policy = _users_and_policy(settings, data_dir)
        _one_user_warning(settings, log)
        ca, cert, key = tls.ensure(data_dir, [settings.host])
        store = _open_store(data_dir, settings.watch_history)
        held.callback(store.close)
        jobs_dir = settings.jobs_dir or (ROOT_JOBS_DIR if os.geteuid() == 0 else os.path.join(data_dir, "jobs"))
        try:
            job_users = JobUsers(store, os.path.abspath(jobs_dir), environ, os.geteuid() == 0, settings.job_uids)
        except JobUsersError as exc:
            raise SetupError(str(exc)) from None
        sock = held.enter_context(_listen(settings))
        port = sock.getsockname()[1]
        host = f"[{settings.host}]" if sock.family == socket.AF_INET6 else settings.host
        url = f"https://{host}:{port}"
        kubeconfig = os.path.join(data_dir, "kubeconfig")
        engine = None
        if settings.containers:
            from ringrun.launcher.containers import ContainerOptions

            state = os.path.join(data_dir, "engine")
            datadir.private_dir(state)
            # the engine's client gets the server's own settings, never a job's HOME (the engine reads its
            # configuration there)
            kept = {k: environ[k] for k in ("PATH", "LANG", "TZ", "DOCKER_HOST", "CONTAINER_HOST") if k in environ}
            engine = ContainerOptions(engine=settings.engine, pull=settings.pull, owner=_owner(data_dir),
                                      state_dir=state, environ={**kept, "HOME": state})
        controller = Controller(store, data_dir, job_users, capacity=settings.capacity, grace=settings.grace,
                                host_paths=policy.paths_of, log_rotation=settings.log_rotation, log=log,
                                containers=engine, trainer_runtimes=settings.trainer_runtimes,
                                status_server=(url, ca))
        controller.start()
        held.callback(controller.stop)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = Server(store, controller, users, policy.rules, f"{settings.host}:{port}", log)

        def ready():  # the kubeconfig says the server is up: written once it accepts connections
            files.write_atomic(kubeconfig, tls.kubeconfig(url, ca, token).encode(), mode=0o600)
            out.write(f"ringrun serve: listening on {url} (data in {data_dir})\n"
                      f"export KUBECONFIG={kubeconfig}\n")
            out.flush()
        asyncio.run(_run(server.app(), sock, context, log, settings.max_connections, ready))
    return 0


async def _run(application, sock, context, log, max_connections, ready):
    # handler_cancellation: a client that goes away ends its watch or log follow at once
    runner = web.AppRunner(application, handle_signals=False, access_log=None, handler_cancellation=True,
                           keepalive_timeout=connections.IDLE_SECONDS, shutdown_timeout=2.0)
    await runner.setup()
    report = connections.RateLimitedLog(log)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: report(
        "loop", f"{context.get('message')}: {context.get('exception') or ''}".rstrip(": ")))
    gate = connections.Gate(total=connections.raise_fd_limit(max_connections))
    acceptor = asyncio.ensure_future(connections.accept(sock, runner.server, context, gate, log))
    stop = asyncio.Event()
    # the accept loop only ends when stopped: anything else that ends it stops the server, said, not silently deaf
    acceptor.add_done_callback(lambda task: task.cancelled() or (
        log(f"the accept loop failed: {task.exception()!r}; stopping") or stop.set()))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    ready()
    await stop.wait()
    acceptor.cancel()
    sock.close()
    await runner.cleanup()

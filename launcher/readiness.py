"""Wait until every `host:port` resolves AND accepts a TCP connection: concurrently, with backoff, under ONE deadline.

mpi-operator's launcher waits for nothing, and its users' top complaint is a launcher that starts before its workers
resolve or listen (mpi-operator #386, #482; pytorch-operator #333: the name resolved but the port was closed). Each
endpoint gets a thread that retries resolve + connect, sleeping 0.1 s doubling to 2 s between tries, never past the
deadline; when the deadline passes, WaitTimeout names every endpoint that never came up and why. A launcher with
launcherCreationPolicy WaitForWorkersReady also waits until every worker accepts an ssh login (`wait_for_logins`).
A stop signal cancels a wait (`cancelled`), checked every 0.1 s.
"""

import socket
import subprocess
import threading
import time

from ringrun.runtime.errors import WaitTimeout
from ringrun.runtime.plan import Endpoint

FIRST_BACKOFF, MAX_BACKOFF, MAX_CONNECT_SECONDS = 0.1, 2.0, 2.0
CANCEL_POLL_SECONDS = 0.1
DEFAULT_WAIT_SECONDS = 300.0  # RINGRUN_WAIT_TIMEOUT's default


class Cancelled(Exception):
    """The wait was cancelled (`cancelled()` became true: a stop signal arrived)."""


class NotUp(Exception):
    """A probe's failure; its text says why (`does not resolve: ...`)."""


def free_loopback_port():
    """A TCP port free on 127.0.0.1 now (the kernel picks it; bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve(host, port):
    """The first TCP address of host (getaddrinfo)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, address


def connect(family, address, timeout):
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)


def wait_for(endpoints, timeout, resolver=resolve, connector=connect, clock=time.monotonic, log=None,
             cancelled=None):
    """Block until every endpoint (an Endpoint or `host:port`) resolves and accepts a TCP connection; returns
    {`host:port`: seconds it took}. Raises WaitTimeout at the deadline, Cancelled when `cancelled()` turns true.

    resolver(host, port) -> (family, address) and connector(family, address, timeout) are the network operations,
    passed in so tests can keep every packet on loopback.
    """
    def probe(endpoint, remaining):
        try:
            family, address = resolver(endpoint.host, endpoint.port)
        except (OSError, UnicodeError) as exc:
            raise NotUp(f"does not resolve: {exc}") from None
        try:
            connector(family, address, max(0.05, min(MAX_CONNECT_SECONDS, remaining)))
        except OSError as exc:
            raise NotUp(f"resolves to {address[0]} but does not accept connections: {exc}") from None

    parsed = [e if isinstance(e, Endpoint) else Endpoint.parse(e) for e in endpoints]
    return wait_until({str(e): (lambda remaining, e=e: probe(e, remaining)) for e in parsed}, timeout, clock, log,
                      cancelled)


def ssh_login(ssh_config, env, run=subprocess.run):
    """A probe factory: `ssh -F CONFIG HOST true` must succeed (the worker accepts our key and can run a command)."""
    def probe(host, remaining):
        argv = ["ssh", "-F", ssh_config, "-o", f"ConnectTimeout={max(1, int(min(remaining, 10)))}", host, "true"]
        try:
            result = run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=max(1.0, min(remaining, 15.0)))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotUp(f"no ssh login: {exc}") from None
        if result.returncode != 0:
            raise NotUp(f"no ssh login (exit {result.returncode}): {result.stderr.strip()[-200:]}")
    return probe


def wait_for_logins(hosts, probe, timeout, clock=time.monotonic, log=None, cancelled=None):
    """Block until `probe(host, remaining)` succeeds for every host (see `ssh_login`); as `wait_for`."""
    return wait_until({h: (lambda remaining, h=h: probe(h, remaining)) for h in hosts}, timeout, clock, log,
                      cancelled)


def wait_until(probes, timeout, clock=time.monotonic, log=None, cancelled=None):
    """Run every `probes[name](remaining)` (raises NotUp while not up) in its own thread, retrying with backoff,
    until all succeed; returns {name: seconds}. WaitTimeout names every one still down at the deadline and why."""
    start = clock()
    deadline = start + timeout
    done, errors = {}, {}
    stop = threading.Event()

    def watch(name, probe):
        backoff = FIRST_BACKOFF
        while True:
            remaining = deadline - clock()
            if remaining <= 0 or stop.is_set():
                return
            try:
                probe(remaining)
            except NotUp as exc:
                errors[name] = str(exc)
            else:
                done[name] = clock() - start
                if log:
                    log(f"{name} is up after {done[name]:.1f} s")
                return
            stop.wait(min(backoff, max(0.0, deadline - clock())))
            backoff = min(backoff * 2, MAX_BACKOFF)

    threads = [threading.Thread(target=watch, args=item, daemon=True) for item in probes.items()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                if cancelled is not None and cancelled():
                    raise Cancelled()
                thread.join(CANCEL_POLL_SECONDS)
                if clock() > deadline + MAX_CONNECT_SECONDS + 15:  # a probe stuck past its own bound
                    break
    finally:
        stop.set()
    missing = [f"{name} ({errors.get(name, 'not tried')})" for name in probes if name not in done]
    if missing:
        raise WaitTimeout(missing, timeout)
    return done

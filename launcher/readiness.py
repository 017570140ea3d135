"""Wait until every `host:port` resolves AND accepts a TCP connection: concurrently, with backoff, under ONE deadline.

mpi-operator's launcher waits for nothing, and its users' top complaint is a launcher that starts before its workers
resolve or listen (mpi-operator #386, #482; pytorch-operator #333: the name resolved but the port was closed). Each
endpoint gets a thread that retries resolve + connect, sleeping 0.1 s doubling to 2 s between tries, never past the
deadline; when the deadline passes, WaitTimeout names every endpoint that never came up and why.
"""

import socket
import threading
import time

from ringrun.runtime.errors import WaitTimeout

FIRST_BACKOFF, MAX_BACKOFF, MAX_CONNECT_SECONDS = 0.1, 2.0, 2.0


def split_endpoint(endpoint):
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint must be host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


def resolve(host, port):
    """The first TCP address of host (getaddrinfo)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, address


def connect(family, address, timeout):
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)


def wait_for(endpoints, timeout, resolver=resolve, connector=connect, clock=time.monotonic, log=None):
    """Block until every endpoint is up; returns {endpoint: seconds it took}. Raises WaitTimeout at the deadline.

    resolver(host, port) -> (family, address) and connector(family, address, timeout) are the network operations,
    passed in so tests can keep every packet on loopback.
    """
    parsed = {e: split_endpoint(e) for e in endpoints}
    start = clock()
    deadline = start + timeout
    done, errors = {}, {}
    stop = threading.Event()

    def watch(endpoint, host, port):
        backoff = FIRST_BACKOFF
        while True:
            remaining = deadline - clock()
            if remaining <= 0 or stop.is_set():
                return
            try:
                family, address = resolver(host, port)
            except (OSError, UnicodeError) as exc:
                errors[endpoint] = f"does not resolve: {exc}"
            else:
                try:
                    connector(family, address, max(0.05, min(MAX_CONNECT_SECONDS, remaining)))
                    done[endpoint] = clock() - start
                    if log:
                        log(f"{endpoint} is up after {done[endpoint]:.1f} s")
                    return
                except OSError as exc:
                    errors[endpoint] = f"resolves to {address[0]} but does not accept connections: {exc}"
            stop.wait(min(backoff, max(0.0, deadline - clock())))
            backoff = min(backoff * 2, MAX_BACKOFF)

    threads = [threading.Thread(target=watch, args=(e, h, p), daemon=True) for e, (h, p) in parsed.items()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(max(0.0, deadline - clock()) + MAX_CONNECT_SECONDS + 1)
    finally:
        stop.set()
    missing = [f"{e} ({errors.get(e, 'not tried')})" for e in endpoints if e not in done]
    if missing:
        raise WaitTimeout(missing, timeout)
    return done

"""The readiness wait, on loopback only: names resolve through an injected resolver (no DNS query leaves the machine)
and every connection goes to 127.0.0.1."""

import socket
import threading
import time

import pytest

from ringrun.launcher.readiness import Cancelled, NotUp, wait_for, wait_for_logins
from ringrun.runtime.plan import Endpoint
from ringrun.runtime.errors import WaitTimeout


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Listener:
    """A loopback TCP listener that appears after `delay` seconds."""

    def __init__(self, port, delay=0.0):
        self.port, self.sock = port, None
        self.timer = threading.Timer(delay, self.open)
        self.timer.start()

    def open(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)

    def close(self):
        self.timer.cancel()
        if self.sock:
            self.sock.close()


def hosts_file(mapping):
    """A resolver for names in `mapping` (all to loopback); other names fail as an unknown host does."""
    def resolver(host, port):
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return socket.AF_INET, (mapping[host], port)
    return resolver


def test_waits_for_endpoints_that_come_up_late():
    ports = [free_port(), free_port()]
    listeners = [Listener(ports[0], delay=0.0), Listener(ports[1], delay=1.0)]
    try:
        resolver = hosts_file({"job-worker-0": "127.0.0.1", "job-worker-1": "127.0.0.1"})
        took = wait_for([f"job-worker-0:{ports[0]}", f"job-worker-1:{ports[1]}"], 10, resolver=resolver)
    finally:
        for listener in listeners:
            listener.close()
    # worker-1 cannot be up before its listener opens at 1 s; both are up long before the 10 s deadline
    assert took[f"job-worker-0:{ports[0]}"] < took[f"job-worker-1:{ports[1]}"]
    assert 1.0 <= took[f"job-worker-1:{ports[1]}"] < 10


def test_a_name_that_appears_late_is_waited_for():
    port = free_port()
    mapping = {}
    threading.Timer(0.8, lambda: mapping.update({"job-master-0": "127.0.0.1"})).start()
    listener = Listener(port)
    try:
        took = wait_for([f"job-master-0:{port}"], 10, resolver=hosts_file(mapping))
    finally:
        listener.close()
    assert 0.8 <= took[f"job-master-0:{port}"] < 10  # not before the name appears, then before the deadline


def test_the_deadline_fires_and_names_every_missing_endpoint():
    up, down = free_port(), free_port()
    listener = Listener(up)
    start = time.monotonic()
    try:
        with pytest.raises(WaitTimeout) as info:
            wait_for([f"job-worker-0:{up}", f"job-worker-1:{down}", f"job-worker-2:{up}"], 2,
                     resolver=hosts_file({"job-worker-0": "127.0.0.1", "job-worker-1": "127.0.0.1"}))
    finally:
        listener.close()
    elapsed = time.monotonic() - start
    assert 2.0 <= elapsed < 30  # never before the deadline; a generous bound after it
    assert info.value.exit_code == 4
    message = str(info.value)
    assert f"job-worker-1:{down} (resolves to 127.0.0.1 but does not accept connections" in message
    assert f"job-worker-2:{up} (does not resolve" in message
    assert "job-worker-0" not in message


@pytest.mark.parametrize("bad", ["nohost", "host:", ":22", "host:0", "host:99999", "host:ssh"])
def test_bad_endpoints(bad):
    with pytest.raises(ValueError, match="host:port"):
        Endpoint.parse(bad)


def test_endpoints_parse_and_print_alike():
    assert Endpoint.parse("job-worker-0.job.ns.svc:2222") == Endpoint("job-worker-0.job.ns.svc", 2222)
    assert str(Endpoint.parse("[::1]:22")) == "::1:22" and Endpoint.parse("[::1]:22").host == "::1"


def test_nothing_to_wait_for():
    assert wait_for([], 1) == {}


def test_a_wait_is_cancelled_when_asked():
    """A stop signal cancels the wait (the core passes `cancelled`): it returns long before its deadline."""
    asked = threading.Event()
    threading.Timer(0.3, asked.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        wait_for([f"job-worker-0:{free_port()}"], 600, resolver=hosts_file({}), cancelled=asked.is_set)
    assert time.monotonic() - start < 300


def test_logins_are_waited_for_until_each_host_accepts_one():
    """WaitForWorkersReady: a host is ready once its probe (an ssh login) succeeds; one that never does is named."""
    tries = {"w0": 0, "w1": 0}

    def probe(host, remaining):
        tries[host] += 1
        if host == "w1" or tries[host] < 3:
            raise NotUp(f"no ssh login (exit 255): try {tries[host]}")

    with pytest.raises(WaitTimeout) as info:
        wait_for_logins(["w0", "w1"], probe, 1.5)
    assert tries["w0"] == 3 and tries["w1"] >= 3
    assert "w1 (no ssh login (exit 255): try" in str(info.value) and "w0" not in str(info.value)

"""No client, with a token or without, can hold every connection: connections that never finish their TLS handshake
make room for new ones and end after the handshake timeout, the caps refuse what is past them, and errors are
logged at most once a second."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")

import socket

from rawhttp import request
from serverproc import wait_until
from test_bounds import sockets_of

from ringrun.server import connections


def open_idle(server, count):
    """`count` TCP connections to the server that never start TLS."""
    port = int(server.url.rsplit(":", 1)[1])
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def test_idle_connections_lock_no_one_out_and_end(fresh_server):
    server = fresh_server("--max-connections", "20")
    held = sockets_of(server.proc.pid)
    idle = open_idle(server, 40)  # twice the cap, none of them ever handshakes
    try:
        for _ in range(5):  # a real client still gets in: each takes the place of an idle one
            assert request(server, "GET", "/version")[0] == 200
        assert sockets_of(server.proc.pid) <= held + 20
        # and what is left ends with the handshake timeout
        wait_until(lambda: sockets_of(server.proc.pid) <= held, timeout=connections.HANDSHAKE_SECONDS + 20,
                   what="the idle connections closed by the server")
    finally:
        for conn in idle:
            conn.close()


def test_the_gate_caps_in_total_and_per_address():
    closed = []
    gate = connections.Gate(total=4, per_address=2)
    a1 = gate.admit("a", lambda: closed.append("a1"))
    a2 = gate.admit("a", lambda: closed.append("a2"))
    gate.established(a1, FakeTransport())
    assert gate.admit("a", lambda: closed.append("a3")) is not None and closed == ["a2"]  # room made: a2 handshook
    b1 = gate.admit("b", lambda: closed.append("b1"))
    gate.established(b1, FakeTransport())
    b2 = gate.admit("b", lambda: closed.append("b2"))
    gate.established(b2, FakeTransport())
    a4 = gate.admit("a", lambda: None)  # the total is full: the oldest handshake (a3) makes room
    assert a4 is not None and closed == ["a2", "a3"]
    gate.established(a4, FakeTransport())
    assert gate.admit("c", lambda: None) is None  # every one is established: refused
    gate.open[b1][1].closing = True
    assert gate.admit("c", lambda: None) is not None  # a closed one no longer counts


class FakeTransport:
    closing = False

    def is_closing(self):
        return self.closing


def test_errors_are_logged_at_most_once_a_second_with_a_count():
    lines, now = [], [0.0]
    report = connections.RateLimitedLog(lines.append, clock=lambda: now[0])
    for _ in range(1000):
        report("accept", "cannot accept a connection: Too many open files")
    now[0] = 1.5
    report("accept", "cannot accept a connection: Too many open files")
    report("other", "something else")
    assert lines == ["cannot accept a connection: Too many open files",
                     "cannot accept a connection: Too many open files (999 more like it since the last one)",
                     "something else"]

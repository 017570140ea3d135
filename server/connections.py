"""Who may hold a connection, and for how long: the server's own accept loop, so that no client (with a token or
without) can hold every connection or make the server spin on errors.

- At most MAX_CONNECTIONS connections at once (TLS handshakes in progress included; `--max-connections`) and at most
  half of them from one client address. At a cap, a new connection takes the place of the oldest one
  still in its TLS handshake (which is closed: a client that opens connections and never handshakes holds nothing for
  long); with no such one it is closed at once, before its handshake costs anything.
- A TLS handshake has HANDSHAKE_SECONDS, counted from the connection (no TLS state is made before the client's
  first bytes: a connection that sends nothing costs only its socket); a connection with no request in flight is closed after IDLE_SECONDS (the
  web server's keep-alive timeout, which aiohttp also applies before the first request). A watch or a followed log
  is a request in flight: it lasts as long as its own timeout.
- RLIMIT_NOFILE is raised to its hard limit at start, and MAX_CONNECTIONS kept below it (with room for the store, the
  jobs' log pipes and files), so accepting never runs out of descriptors in ordinary use; when it does anyway, the
  loop backs off (up to a second) and the error is logged at most once a second, with how many were not logged.
"""

import asyncio
import collections
import resource
import time

MAX_CONNECTIONS = 2048  # each in its TLS handshake holds about 300 KB of the TLS layer's buffers
HANDSHAKE_SECONDS = 10.0
IDLE_SECONDS = 30.0
RESERVED_FDS = 1024  # descriptors kept for everything but client connections


def raise_fd_limit(wanted=MAX_CONNECTIONS):
    """Raise this process's RLIMIT_NOFILE to its hard limit; returns the connection cap: `wanted`, or less when the
    limit leaves fewer than that beside RESERVED_FDS."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - RESERVED_FDS))


class RateLimitedLog:
    """log(message) at most once per `interval` seconds per kind of message; the next line says how many of that
    kind were left out in between."""

    def __init__(self, log, interval=1.0, clock=time.monotonic):
        self.log, self.interval, self.clock = log, interval, clock
        self.last, self.skipped = {}, collections.Counter()

    def __call__(self, kind, message):
        now = self.clock()
        if kind in self.last and now - self.last[kind] < self.interval:
            self.skipped[kind] += 1
            return
        self.last[kind] = now
        more = self.skipped.pop(kind, 0)
        self.log(message + (f" ({more} more like it since the last one)" if more else ""))


class Gate:
    """Admission of connections: at most `total` open, at most `per_address` from one address (default half of
    `total`). Entries are [address, transport (None while the handshake runs), cancel (ends the handshake)], in the
    order they came."""

    def __init__(self, total=MAX_CONNECTIONS, per_address=None):
        self.total, self.per_address = total, per_address or max(1, total // 2)
        self.open = {}
        self._next = 0

    def _prune(self):
        for key, (_, transport, _) in list(self.open.items()):
            if transport is not None and transport.is_closing():
                del self.open[key]

    def _make_room(self, same_address=None):
        """Close the oldest connection still in its handshake (from `same_address` when given); False if none."""
        for key, (address, transport, cancel) in self.open.items():
            if transport is None and (same_address is None or address == same_address):
                del self.open[key]
                cancel()
                return True
        return False

    def admit(self, address, cancel):
        """A key for a new connection from `address` (cancel() ends its handshake if it must make room later), or
        None when it must be refused."""
        self._prune()
        if len(self.open) >= self.total and not self._make_room():
            return None
        if sum(1 for a, _, _ in self.open.values() if a == address) >= self.per_address and \
                not self._make_room(address):
            return None
        self._next += 1
        self.open[self._next] = [address, None, cancel]
        return self._next

    def established(self, key, transport):
        if key in self.open:
            self.open[key][1] = transport

    def release(self, key):
        self.open.pop(key, None)


async def accept(sock, protocol_factory, context, gate, log):
    """Accept connections on `sock` forever (cancel to stop): each admitted one gets its TLS handshake and then
    `protocol_factory`'s protocol; refused ones are closed at once."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    report = RateLimitedLog(log)
    backoff = 0.0
    handshakes = set()
    while True:
        try:
            conn, peer = await loop.sock_accept(sock)
            backoff = 0.0
        except OSError as exc:
            report("accept", f"cannot accept a connection: {exc.strerror or exc}")
            backoff = min(1.0, backoff * 2 or 0.01)
            await asyncio.sleep(backoff)
            continue
        start = _Start(loop, conn, protocol_factory, context, gate)
        start.key = gate.admit(peer[0], start.cancel)
        if start.key is None:
            conn.close()
            report("refused", f"a connection from {peer[0]} refused: {len(gate.open)} open (at most {gate.total}, "
                              f"{gate.per_address} from one address), none of them in its TLS handshake")
            continue
        start.task = asyncio.ensure_future(start.run())
        handshakes.add(start.task)
        start.task.add_done_callback(handshakes.discard)


class _Start:
    """One admitted connection's TLS handshake, then its protocol; cancel() ends it while it handshakes."""

    def __init__(self, loop, conn, protocol_factory, context, gate):
        self.loop, self.conn, self.protocol_factory, self.context, self.gate = loop, conn, protocol_factory, context, gate
        self.key = self.task = None
        self.started = False

    def cancel(self):
        """End the handshake: the task closes the socket itself, after it stopped watching its descriptor (closed
        under a watcher, the number could be reused by the next connection while still watched)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if not self.started:  # a task cancelled before it ran never runs: nothing watches the socket, close it here
            self.conn.close()

    async def _first_bytes(self):
        """Wait until the client has sent something (its TLS hello): a connection that sends nothing costs a
        socket, never the TLS layer's buffers. Raises asyncio.TimeoutError after HANDSHAKE_SECONDS."""
        ready = self.loop.create_future()
        fd = self.conn.fileno()
        self.loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, HANDSHAKE_SECONDS)
        finally:
            self.loop.remove_reader(fd)

    async def run(self):
        self.started = True
        started = self.loop.time()
        try:
            await self._first_bytes()
            left = max(0.1, HANDSHAKE_SECONDS - (self.loop.time() - started))
            transport, _ = await self.loop.connect_accepted_socket(self.protocol_factory, self.conn, ssl=self.context,
                                                                   ssl_handshake_timeout=left)
        except (OSError, asyncio.TimeoutError, EOFError, asyncio.CancelledError):  # failed, too slow, made room
            self.gate.release(self.key)
            self.conn.close()
            return
        self.gate.established(self.key, transport)

"""`ringrun bench serve --hostile`: the attacks of issue 28 against the bench's own server (loopback only), one at a
time for `seconds` each, while a normal client GETs one job every 50 ms; per attack the normal client's latency
(p50, p99), its errors, and the server's peak resident memory (sampled every 100 ms). Every loop is bounded by the
attack's time.

Attacks: JSON patches that double an object (40 copies, from 4 clients); 3 watchers that never read while a 200 KB
job is patched without pause; 2,500 connections that never start TLS (more than a default RLIMIT_NOFILE and the connection cap); 4 clients
replaying the watch history from its start again and again; a job writing output as fast as it can while 4 clients
read its log with tailLines=3 and limitBytes=100; bodies nested 900 deep, with NaN and duplicate keys, from 4
clients.
"""

import asyncio
import json
import socket
import ssl
import time

from .serve import JOBS, percentile, trivial_job

PATCH_JSON = "application/json-patch+json"
MERGE = "application/merge-patch+json"
ATTACKERS = 4


async def _forever(deadline, step):
    """Run `step()` until `deadline` (loop time), errors counted not raised; returns how many steps ran."""
    loop, count = asyncio.get_running_loop(), 0
    while loop.time() < deadline:
        try:
            await step()
        except Exception:  # noqa: BLE001 - an attack step that fails is still an attack step
            await asyncio.sleep(0.05)
        count += 1
    return count


async def _raw(url, ca, path, token, rcvbuf=4096):
    """A TLS connection that sends one GET of `path` and never reads (a socket in a thread: it may block)."""
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)

    def connect():
        raw = socket.create_connection((host, int(port)), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        conn = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname=host)
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        return conn
    return await asyncio.get_running_loop().run_in_executor(None, connect)


class Attacks:
    def __init__(self, client, url, token, ca, seconds):
        self.client, self.url, self.token, self.ca, self.seconds = client, url, token, ca, seconds
        self.first_rv = None

    async def baseline(self, deadline):
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))

    async def json_patch_doubling(self, deadline):
        await self.client.call("POST", JOBS, {**trivial_job("doubled", hold=True),
                                              "metadata": {"name": "doubled", "annotations": {"a": "x" * 1000}}})
        patch = [{"op": "copy", "from": "/metadata/annotations", "path": f"/metadata/annotations/c{i}"}
                 for i in range(40)]
        await asyncio.gather(*(_forever(deadline, lambda: self.client.call(
            "PATCH", f"{JOBS}/doubled", patch, PATCH_JSON)) for _ in range(ATTACKERS)))

    async def watchers_that_never_read(self, deadline):
        big = {**trivial_job("fat", hold=True), "metadata": {"name": "fat", "annotations": {"pad": "p" * 200_000}}}
        status, body = await self.client.call("POST", JOBS, big)
        self.first_rv = int(body["metadata"]["resourceVersion"]) if status == 201 else None
        conns = [await _raw(self.url, self.ca, f"{JOBS}?watch=true", self.token) for _ in range(3)]
        counter = iter(range(10**9))
        try:
            await _forever(deadline, lambda: self.client.call(
                "PATCH", f"{JOBS}/fat", {"metadata": {"labels": {"n": str(next(counter))}}}, MERGE))
        finally:
            for conn in conns:
                conn.close()

    async def idle_connections(self, deadline):
        host, port = self.url.rsplit("//", 1)[1].rsplit(":", 1)
        loop = asyncio.get_running_loop()
        held = []
        try:
            while loop.time() < deadline:
                held = [s for s in held if s.fileno() >= 0]
                while len(held) < 2500 and loop.time() < deadline:
                    try:
                        held.append(await loop.run_in_executor(
                            None, lambda: socket.create_connection((host, int(port)), timeout=5)))
                    except OSError:
                        break
                await asyncio.sleep(0.5)
        finally:
            for sock in held:
                sock.close()

    async def history_replay(self, deadline):
        start = self.first_rv or 1

        async def replay():
            await self.client.watch(f"{JOBS}?resourceVersion={start}", lambda event, at: False, 1)
        await asyncio.gather(*(_forever(deadline, replay) for _ in range(ATTACKERS)))

    async def log_flood(self, deadline):
        flood = ("import sys, time\nw = sys.stdout.buffer.write\nend = time.time() + %d\n"
                 "while time.time() < end:\n    w(b'x' * 1023 + b'\\n')\n" % (self.seconds + 5))
        await self.client.call("POST", JOBS, trivial_job("flood", ("python3", "-c", flood)))
        pod = "/api/v1/namespaces/bench/pods/flood-launcher/log"

        async def read(query):
            async with self.client.session.get(f"{self.client.url}{pod}?{query}",
                                               headers=self.client.headers) as response:
                await response.read()
        await asyncio.gather(*(_forever(deadline, lambda q=q: read(q)) for q in
                               ("tailLines=3", "limitBytes=100", "tailLines=3", "limitBytes=100")))
        await self.client.call("DELETE", f"{JOBS}/flood")

    async def bad_json(self, deadline):
        nested = "{}"
        for _ in range(900):
            nested = '{"a": ' + nested + "}"
        text = json.dumps(trivial_job("bad", hold=True))
        bodies = [text.replace('"spec": {', '"spec": {"x": ' + nested + ", ", 1),
                  text.replace('"replicas": 1', '"replicas": NaN', 1),
                  text.replace('"name": "bad"', '"name": "bad", "name": "bad"', 1)]

        async def post(body):
            async with self.client.session.post(f"{self.client.url}{JOBS}?fieldValidation=Strict",
                                                data=body.encode(), headers={**self.client.headers,
                                                                             "Content-Type": "application/json"}):
                pass
        await asyncio.gather(*(_forever(deadline, lambda b=b: post(b)) for b in bodies + bodies[:1]))


ATTACKS = ("baseline", "json_patch_doubling", "watchers_that_never_read", "idle_connections", "history_replay",
           "log_flood", "bad_json")


async def phase_hostile(client, url, token, ca, rss, seconds, out):
    """Every attack for `seconds`, each with a normal client beside it. Returns one row per attack."""
    import aiohttp

    await client.call("POST", JOBS, trivial_job("normal", hold=True))
    attacks = Attacks(client, url, token, ca, seconds)
    rows = []
    context = ssl.create_default_context(cafile=ca)
    loop = asyncio.get_running_loop()
    for name in ATTACKS:
        deadline = loop.time() + seconds
        latencies, errors, peak = [], [0], [rss()]

        async def normal():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=1)) as session:
                while loop.time() < deadline:
                    started = time.monotonic()
                    try:
                        async with session.get(f"{url}{JOBS}/normal", headers=client.headers,
                                               timeout=aiohttp.ClientTimeout(total=30)) as response:
                            await response.read()
                            if response.status != 200:
                                errors[0] += 1
                    except Exception:  # noqa: BLE001 - counted
                        errors[0] += 1
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.05)

        async def sample():
            while loop.time() < deadline:
                peak[0] = max(peak[0], rss())
                await asyncio.sleep(0.1)
        await asyncio.gather(getattr(attacks, name)(deadline), normal(), sample(), return_exceptions=True)
        row = {"attack": name, "gets": len(latencies), "errors": errors[0],
               "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
               "peak_rss_bytes": peak[0]}
        rows.append(row)
        out.write(f"hostile {name}: normal GET p50 {row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms over "
                  f"{row['gets']} GETs, {row['errors']} errors; server peak RSS {row['peak_rss_bytes'] / 2**20:.0f} "
                  "MiB\n")
        out.flush()
        await asyncio.sleep(2)  # what an attack left (closing connections, a stopped job) settles first
    held = all(r["p99_ms"] < 1000 and r["peak_rss_bytes"] < 2**30 and r["errors"] == 0 for r in rows)
    out.write(f"hostile: every attack kept the normal client's p99 under 1 s with no error and the server under "
              f"1 GiB: {'yes' if held else 'NO'}\n")
    return {"seconds": seconds, "rows": rows, "held": held}

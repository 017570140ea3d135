"""`ringrun bench serve`: load on the job API server, from clients on loopback (aiohttp), every loop bounded.

Phases, each against the same fresh server (launcher/benchserve.py starts and stops it):
1. memory: `--finished` trivial jobs created and run to the end; the server's resident memory then (VmRSS).
2. create -> Running: `--trials` times, a watch opened, a job created, the time until its Running condition.
3. load: `--jobs` creations of trivial jobs from `--clients` concurrent clients; errors, lost objects (a list at
   the end must hold every one created), latency p50/p99, and the time until all of them ran to Succeeded.
4. watchers: `--watchers` concurrent watches, then `--events` label changes of one job; every watcher must see
   every change; delivery latency p50/p99.
5. with `--hostile S`: the attacks of bench/hostile.py, S seconds each, beside a normal client.
"""

import asyncio
import json
import ssl
import statistics
import time

GROUP, VERSION, NS = "kubeflow.org", "v2beta1", "bench"
JOBS = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/mpijobs"


def trivial_job(name, command=("true",), hold=False):
    """An MPIJob whose launcher runs `command`; `hold`: created suspended (nothing runs: the API's cost alone)."""
    container = {"name": "mpi", "image": "local", "command": list(command)}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MPIJob", "metadata": {"name": name},
            "spec": {**({"runPolicy": {"suspend": True}} if hold else {}), "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "restartPolicy": "Never",
                             "template": {"spec": {"containers": [container]}}},
                "Worker": {"replicas": 1, "template": {"spec": {"containers": [{"name": "mpi", "image": "l"}]}}}}}}


def percentile(values, q):
    """The q-th percentile (nearest rank) of `values`, or None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def _state(obj):
    held = [c["type"] for c in (obj.get("status") or {}).get("conditions", []) if c.get("status") == "True"]
    return held[-1] if held else ""


class Client:
    def __init__(self, session, url, token):
        self.session, self.url = session, url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method, path, body=None, content_type="application/json"):
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        async with self.session.request(method, self.url + path, headers=headers,
                                        data=None if body is None else json.dumps(body)) as response:
            return response.status, await response.json(content_type=None)

    async def watch(self, path, on_event, timeout):
        """Call on_event(event, arrival time) for each event of a watch at `path`, until the server ends it after
        `timeout` seconds or on_event returns True."""
        sep = "&" if "?" in path else "?"
        async with self.session.get(f"{self.url}{path}{sep}watch=true&timeoutSeconds={int(timeout)}",
                                    headers=self.headers, timeout=None) as response:
            async for line in response.content:
                if line.strip() and on_event(json.loads(line), time.monotonic()):
                    return

    async def wait_all(self, names, state, timeout):
        """Poll the list until every job in `names` is in `state`; returns the seconds it took (None: timed out)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status, listing = await self.call("GET", JOBS)
            done = {o["metadata"]["name"] for o in listing.get("items", []) if _state(o) == state}
            if names <= done:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        return None


async def phase_memory(client, count, rss, timeout):
    names = {f"fin-{i}" for i in range(count)}
    for name in sorted(names):
        status, _ = await client.call("POST", JOBS, trivial_job(name))
        assert status == 201, status
    took = await client.wait_all(names, "Succeeded", timeout)
    return {"finished_jobs": count, "all_finished_s": took, "server_rss_bytes": rss()}


async def phase_running(client, trials, timeout):
    times = []
    for i in range(trials):
        name = f"run-{i}"
        status, listing = await client.call("GET", JOBS + "?limit=1")
        rv = listing["metadata"]["resourceVersion"]
        seen = {}

        def on_event(event, arrival, name=name, seen=seen):
            if event["object"]["metadata"]["name"] == name and "Running" in [
                    c["type"] for c in (event["object"].get("status") or {}).get("conditions", [])
                    if c.get("status") == "True"]:
                seen["at"] = arrival
                return True
            return False
        watcher = asyncio.create_task(client.watch(f"{JOBS}?resourceVersion={rv}", on_event, timeout))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        status, _ = await client.call("POST", JOBS, trivial_job(name, ("sleep", "0.5")))
        assert status == 201, status
        await asyncio.wait_for(watcher, timeout)
        if "at" in seen:
            times.append(seen["at"] - started)
    return {"trials": trials, "create_to_running_s": times,
            "median_s": statistics.median(times) if times else None}


async def phase_load(client, jobs, clients, timeout, hold=False):
    latencies, errors, made = [], [], set()
    counter = iter(range(jobs))

    async def worker():
        for i in counter:
            name = f"load-{i}"
            started = time.monotonic()
            try:
                status, body = await client.call("POST", JOBS, trivial_job(name, hold=hold))
            except Exception as exc:  # noqa: BLE001 - counted, reported
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            latencies.append(time.monotonic() - started)
            if status == 201:
                made.add(name)
            else:
                errors.append(f"{name}: HTTP {status} {body.get('message')}")
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.monotonic() - started
    status, listing = await client.call("GET", JOBS)
    stored = {o["metadata"]["name"] for o in listing["items"] if o["metadata"]["name"].startswith("load-")}
    ran = await client.wait_all(made, "Suspended" if hold else "Succeeded", timeout)
    return {"jobs": jobs, "clients": clients, "errors": len(errors), "error_samples": errors[:5],
            "lost": len(made - stored), "created": len(made), "wall_s": wall, "creations_per_s": len(made) / wall,
            "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
            "all_succeeded_s": ran}


async def phase_watchers(client, watchers, events, timeout):
    status, _ = await client.call("POST", JOBS, trivial_job("watched", ("true",)))
    await client.wait_all({"watched"}, "Succeeded", timeout)
    status, listing = await client.call("GET", JOBS + "?limit=1")
    rv = listing["metadata"]["resourceVersion"]
    sent, received = {}, [dict() for _ in range(watchers)]

    def handler(box):
        def on_event(event, arrival):
            labels = event["object"]["metadata"].get("labels") or {}
            if event["object"]["metadata"]["name"] == "watched" and "n" in labels:
                box[labels["n"]] = arrival
            return len(box) == events
        return on_event
    tasks = [asyncio.create_task(client.watch(f"{JOBS}?resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched",
                                              handler(box), timeout)) for box in received]
    await asyncio.sleep(1.0)  # every watch open before the first change
    for i in range(events):
        sent[str(i)] = time.monotonic()
        status, _ = await client.call("PATCH", f"{JOBS}/watched", {"metadata": {"labels": {"n": str(i)}}},
                                      content_type="application/merge-patch+json")
        assert status == 200, status
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
    delays = [box[k] - sent[k] for box in received for k in box if k in sent]
    missed = sum(events - len(box) for box in received)
    return {"watchers": watchers, "events": events, "missed": missed,
            "p50_ms": 1000 * percentile(delays, 50), "p99_ms": 1000 * percentile(delays, 99)}


async def run(url, token, ca, options, rss, out):
    import aiohttp

    context = ssl.create_default_context(cafile=ca)
    connector = aiohttp.TCPConnector(ssl=context, limit=max(options.clients, options.watchers) + 10)
    result = {}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        client = Client(session, url, token)
        result["memory"] = await phase_memory(client, options.finished, rss, options.timeout)
        out.write(f"memory: {options.finished} finished jobs stored, server RSS "
                  f"{result['memory']['server_rss_bytes'] / 2**20:.1f} MiB\n")
        result["running"] = await phase_running(client, options.trials, options.timeout)
        out.write(f"create -> Running: median {result['running']['median_s'] * 1000:.0f} ms over "
                  f"{options.trials} trials\n")
        result["load"] = await phase_load(client, options.jobs, options.clients, options.timeout, options.hold)
        load = result["load"]
        out.write(f"load: {load['created']} of {load['jobs']} created by {load['clients']} clients in "
                  f"{load['wall_s']:.1f} s ({load['creations_per_s']:.0f}/s), errors {load['errors']}, lost "
                  f"{load['lost']}, latency p50 {load['p50_ms']:.1f} ms p99 {load['p99_ms']:.1f} ms; all "
                  f"{'Suspended' if options.hold else 'Succeeded'} "
                  f"after {load['all_succeeded_s'] if load['all_succeeded_s'] is None else round(load['all_succeeded_s'], 1)} s\n")
        result["memory_after_load"] = {"stored_jobs": options.finished + options.trials + options.jobs,
                                       "server_rss_bytes": rss()}
        result["watchers"] = await phase_watchers(client, options.watchers, options.events, options.timeout)
        w = result["watchers"]
        out.write(f"watchers: {w['watchers']} x {w['events']} events, missed {w['missed']}, delivery p50 "
                  f"{w['p50_ms']:.1f} ms p99 {w['p99_ms']:.1f} ms\n")
        out.write(f"memory after load: {result['memory_after_load']['stored_jobs']} jobs stored, server RSS "
                  f"{result['memory_after_load']['server_rss_bytes'] / 2**20:.1f} MiB\n")
        if options.hostile:
            from .hostile import phase_hostile

            result["hostile"] = await phase_hostile(client, url, token, ca, rss, options.hostile, out)
    return result

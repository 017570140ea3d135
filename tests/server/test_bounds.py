"""What no client can do to the server: grow an object exponentially with a short JSON patch, store an object past
etcd's size, send JSON kube-apiserver would not read (NaN, deep nesting, duplicate keys under Strict), fill memory
through a watcher that never reads, or fill the watch history without bound. Each case ends in a Status (or a
dropped watcher) and the server goes on serving."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")

import asyncio
import json
import os
import socket
import ssl

from jobspecs import mpijob
from rawhttp import created, exchange, request
from serverproc import wait_until

from ringrun.server import watches as jobs_module
from ringrun.server.store import Store, TooLarge, TooOld

NS = "bounds"
JOBS = f"/apis/kubeflow.org/v2beta1/namespaces/{NS}/mpijobs"


def create(server, name, annotations=None):
    job = mpijob(name, ["true"], suspend=True)  # never runs: only the object matters here
    if annotations:
        job["metadata"]["annotations"] = annotations
    return created(server, JOBS, job)


def rss(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))


def test_a_json_patch_cannot_double_an_object_until_the_server_dies(server):
    before = create(server, "doubling", {"a": "x" * 1000})
    doubling = [{"op": "copy", "from": "/metadata/annotations", "path": f"/metadata/annotations/c{i}"}
                for i in range(40)]
    status, body = request(server, "PATCH", f"{JOBS}/doubling", doubling, content_type="application/json-patch+json")
    assert status == 413 and body["reason"] == "RequestEntityTooLarge", body
    assert "accumulated copy size exceeds the limit of 3145728 bytes" in body["message"]
    status, body = request(server, "PATCH", f"{JOBS}/doubling", [{"op": "test", "path": "/kind", "value": "MPIJob"}]
                           * 10001, content_type="application/json-patch+json")
    assert status == 413 and "limited to 10000" in body["message"]
    status, now = request(server, "GET", f"{JOBS}/doubling")
    assert now["metadata"]["annotations"] == before["metadata"]["annotations"] == {"a": "x" * 1000}


def test_an_object_past_etcds_limit_is_not_stored(server):
    job = mpijob("huge", ["true", "x" * (1600 * 1024)], suspend=True)  # under the 3 MiB body limit, over 1.5 MiB
    status, body = request(server, "POST", JOBS, job)
    assert status == 413 and "more than the 1572864 bytes an object may have" in body["message"], body
    assert request(server, "GET", f"{JOBS}/huge")[0] == 404
    create(server, "grows", {"pad": "y" * 200_000})  # labels and annotations are bounded anyway: the status grows
    big = {"status": {"conditions": [{"type": "Big", "status": "True", "message": "y" * (1500 * 1024)}]}}
    status, body = request(server, "PATCH", f"{JOBS}/grows/status", big,
                           content_type="application/merge-patch+json")
    assert status == 413 and "more than the 1572864 bytes" in body["message"], body


def test_json_is_read_as_kube_apiserver_reads_it(server):
    text = json.dumps(mpijob("nan", ["true"], suspend=True))
    for bad, why in ((text.replace('"replicas": 1', '"replicas": NaN', 1), "NaN is not a JSON number"),
                     (text.replace('"replicas": 1', '"replicas": Infinity', 1), "Infinity is not a JSON number")):
        status, body = request(server, "POST", JOBS, bad.encode())
        assert status == 400 and why in body["message"], body
    deep = json.loads(text)
    deep["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["metadata"] = {"annotations": {}}
    nested = "{}"
    for _ in range(900):
        nested = '{"a": ' + nested + "}"
    status, body = request(server, "POST", JOBS, json.dumps(deep).replace('"annotations": {}', '"x": ' + nested)
                           .encode())
    assert status == 400 and "nests deeper than 100 levels" in body["message"], body
    status, body = request(server, "GET", JOBS)  # nothing of them was kept: the namespace still lists
    assert status == 200 and "nan" not in [o["metadata"]["name"] for o in body["items"]]
    twice = text.replace('"name": "nan"', '"name": "dup", "name": "dup"', 1).encode()
    status, body = request(server, "POST", JOBS + "?fieldValidation=Strict", twice)
    assert status == 400 and body["message"] == 'strict decoding error: duplicate field "name"', body
    status, body, headers = exchange(server, "POST", JOBS, twice)  # no parameter: Warn, as kube-apiserver
    assert status == 201 and '299 - "duplicate field \\"name\\""' in headers.get_all("Warning"), headers
    status, body, headers = exchange(server, "POST", JOBS + "?fieldValidation=Ignore",
                                     twice.replace(b'"dup"', b'"dup2"'))
    assert status == 201 and not headers.get_all("Warning")
    assert request(server, "POST", JOBS + "?fieldValidation=Loose", twice)[0] == 400


def test_the_watch_history_is_bounded_by_bytes_and_read_in_pages(tmp_path):
    store = Store(str(tmp_path / "store.db"), history=10**6, history_bytes=200_000, max_object=50_000)
    obj = {"apiVersion": "v1", "kind": "T", "metadata": {"name": "a", "namespace": "n", "uid": "u"}, "pad": ""}
    with pytest.raises(TooLarge):
        store.create("t", {**obj, "pad": "x" * 60_000})
    store.create("t", obj)
    first = store.current()
    for i in range(100):
        store.update("t", {**obj, "pad": "x" * 10_000 + str(i)})
    total = store._db.execute("SELECT SUM(LENGTH(body)) FROM events").fetchone()[0]
    assert total <= 200_000 and store._counter("history_bytes") == total
    with pytest.raises(TooOld):
        next(iter(store.events_since(first)))
    oldest = store.compacted()
    events = store.events_since(oldest)
    assert [e["rv"] for e in events] == list(range(oldest + 1, store.current() + 1))
    store.close()


def test_a_watchers_mailbox_overflows_instead_of_growing():
    async def fill():
        box = jobs_module._Mailbox(events=3, size=1000)
        box.floor = 2
        for rv in range(1, 6):  # 1 and 2 were sent already (a replay): not kept
            box.put({"rv": rv, "size": 10})
        assert (await box.get(1)).get("rv") == 3 and len(box.items) == 2
        box.put({"rv": 6, "size": 10})
        box.put({"rv": 7, "size": 10})  # the fourth waiting: over the bound
        assert box.overflowed and not box.items and await box.get(1) is None
        big = jobs_module._Mailbox(events=100, size=1000)
        big.put({"rv": 1, "size": 600})
        big.put({"rv": 2, "size": 600})
        assert big.overflowed
    asyncio.run(fill())


def sockets_of(pid):
    """How many sockets process `pid` (the server) holds open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return count


def test_watchers_that_never_read_are_dropped_and_do_not_grow_the_server(server):
    """Three watchers that never read while a 200 KB job is patched 300 times: each falls more than WATCH_BYTES
    behind, so the server drops it (as kube-apiserver drops a watcher that falls behind) instead of buffering its
    events; the server's memory stays bounded and other clients are served."""
    create(server, "watched", {"pad": "p" * 200_000})
    context = ssl.create_default_context(cafile=server.ca)
    port = int(server.url.rsplit(":", 1)[1])
    held = sockets_of(server.proc.pid)
    sockets = []
    for _ in range(3):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
        conn.sendall(f"GET {JOBS}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n\r\n"
                     .encode())
        sockets.append(conn)
    try:
        start = rss(server.proc.pid)
        for i in range(300):
            status, body = request(server, "PATCH", f"{JOBS}/watched", {"metadata": {"labels": {"n": str(i)}}},
                                   content_type="application/merge-patch+json")
            assert status == 200, body
        grown = rss(server.proc.pid) - start
        assert grown < 400 * 1024 * 1024, f"the server grew by {grown >> 20} MiB"
        assert request(server, "GET", f"{JOBS}/watched")[0] == 200
        wait_until(lambda: sockets_of(server.proc.pid) <= held, timeout=30, what="the watchers dropped")
    finally:
        for conn in sockets:
            conn.close()
    wait_until(lambda: request(server, "GET", "/version")[0] == 200, what="the server still answers")

"""The store alone (no server): lists read at an earlier version, no-op writes, finalizers, and a store of an
earlier version opened by this one."""

import sqlite3

import pytest

from ringrun.server.store import Store, TooOld


def obj(name, labels=None, finalizers=None, namespace="ns"):
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Thing", "metadata": meta}


def names(items):
    return [o["metadata"]["name"] for o in items]


def test_a_list_read_at_an_earlier_version(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    for name in ("a", "b", "c"):
        store.create("things", obj(name))
    _, at = store.list("things")
    store.update("things", obj("b", {"v": "2"}))
    store.delete("things", "ns", "c")
    store.create("things", obj("bb"))
    store.create("things", obj("other", namespace="ns2"))
    items, rv = store.list("things", "ns", at=at)
    assert rv == at and names(items) == ["a", "b", "c"] and items[1]["metadata"]["labels"] == {}
    items, _ = store.list("things", "ns", after=("ns", "a"), limit=1, at=at)
    assert names(items) == ["b"]
    items, now = store.list("things", "ns")
    assert now > at and names(items) == ["a", "b", "bb"]


def test_a_version_older_than_the_history_is_too_old(tmp_path):
    store = Store(str(tmp_path / "s.db"), history=256)
    store.create("things", obj("a"))
    _, at = store.list("things")
    for i in range(600):
        store.update("things", obj("a", {"n": str(i)}))
    with pytest.raises(TooOld):
        store.list("things", at=at)


def test_no_op_writes_and_finalizers(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    seen = []
    store.listen(seen.append)
    made = store.create("things", obj("a", finalizers=["x/y"]))
    assert store.update("things", obj("a", finalizers=["x/y"])) == made and len(seen) == 1
    marked = store.delete("things", "ns", "a", now="2026-12-04T00:00:00Z")
    assert marked["metadata"]["deletionTimestamp"] == "2026-12-04T00:00:00Z" and seen[-1]["type"] == "MODIFIED"
    assert store.delete("things", "ns", "a", now="later") == marked and len(seen) == 2
    gone = store.update("things", {**marked, "metadata": {**marked["metadata"], "finalizers": []}})
    assert seen[-1]["type"] == "DELETED" and store.get("things", "ns", "a") is None
    assert int(gone["metadata"]["resourceVersion"]) == store.current()
    assert seen[-1]["prev"]["metadata"]["name"] == "a"


def test_a_store_of_the_earlier_version_is_opened(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
            uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name));
        CREATE TABLE events (rv INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL,
            type TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counters VALUES ('rv', 7), ('compacted', 0), ('history_bytes', 10);
        INSERT INTO events VALUES (7, 'things', 'ns', 'ADDED', '{}');
    """)
    db.commit()
    db.close()
    store = Store(path)
    assert store.current() == 7 and store.compacted() == 7
    with pytest.raises(TooOld):
        next(store.events_since(3))
    store.create("things", obj("a"))
    assert [e["object"]["metadata"]["name"] for e in store.events_since(7)] == ["a"]


def test_a_namespace_holds_a_bounded_number_of_events_and_they_expire(tmp_path, monkeypatch):
    pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
    from ringrun.server import events, rest
    from ringrun.server.api.apierrors import ApiError
    from ringrun.server.api.resources import EVENTS

    store = Store(str(tmp_path / "s.db"))
    handler = rest.Rest(store)
    monkeypatch.setattr(rest, "EVENTS_PER_NAMESPACE", 2)
    job = {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob",
           "metadata": {"name": "j", "namespace": "ns", "uid": "u", "resourceVersion": "1"}}
    for i, when in enumerate(("2026-12-04T10:00:00Z", "2026-12-04T12:00:00Z")):
        uid = f"{i}0000000-0000-0000-0000-000000000000"
        store.create(EVENTS.qualified, events.event(job, "Normal", "R", "m", when, uid))
    handler._room_for_events(EVENTS, "other")  # another namespace has room
    with pytest.raises(ApiError) as raised:
        handler._room_for_events(EVENTS, "ns")
    assert raised.value.code == 429 and "holds 2 events" in raised.value.message
    old = events.expired(store.list(EVENTS.qualified)[0], "2026-12-04T12:30:00Z")
    assert [e["metadata"]["creationTimestamp"] for e in old] == ["2026-12-04T10:00:00Z"]

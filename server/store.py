"""The object store: SQLite (standard library) in WAL mode, one file in the data directory.

- Every object is one row (resource, namespace, name) holding its JSON; `metadata.resourceVersion` comes from ONE
  global counter, bumped by every write, so versions order all changes of all resources.
- Every write is one transaction (BEGIN IMMEDIATE ... COMMIT) that changes the object, the counter and the watch
  history together: a crash (even kill -9) leaves the store as it was before or after the write, never between.
- An object is at most MAX_OBJECT bytes of JSON (etcd's request limit, which bounds kube-apiserver's objects):
  a write of a larger one raises TooLarge and changes nothing.
- The watch history keeps the last HISTORY events and at most HISTORY_BYTES of them (the oldest go first); a watch
  from a version older than what it keeps gets 410 Expired. It is read in pages (`events_since` yields), never whole.
- Listeners (the watch streams, the controller) are called after each commit, in the writer's thread.
- As kube-apiserver over etcd: a write that changes nothing is no write (no new resourceVersion, no event); an
  update that leaves an object being deleted (`deletionTimestamp`) with no finalizers removes it; each event keeps
  what selectors could see of the object before it (`prev`, for watches' selector transitions); a list can be read
  as it was at an earlier resourceVersion (continued pages), from the history.
"""

import json
import sqlite3
import threading

from .clock import utc_now

HISTORY = 20000
HISTORY_BYTES = 256 * 1024 * 1024
MAX_OBJECT = 1536 * 1024  # etcd's --max-request-bytes default, 1.5 MiB
PAGE = 8  # events read from the history at a time (at most 8 x MAX_OBJECT held for a slow watcher)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS events (rv INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', prev TEXT);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('rv', 0), ('compacted', 0), ('history_bytes', -1);
CREATE TABLE IF NOT EXISTS job_users (namespace TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE);
"""
_INDEX = "CREATE INDEX IF NOT EXISTS events_key ON events (resource, namespace, name, rv)"

# What field selectors may read, of any resource (pods, events, jobs): kept of an object's previous state in each
# event, so that a watch can tell an object that stopped (or started) matching its selector.
SELECTABLE = (("metadata", "name"), ("metadata", "namespace"), ("metadata", "labels"), ("status", "phase"),
              ("spec", "nodeName"), ("spec", "restartPolicy"), ("spec", "schedulerName"),
              ("spec", "serviceAccountName"), ("status", "podIP"), ("involvedObject",), ("reason",), ("type",),
              ("source",), ("reportingComponent",))


def selectable(obj):
    """The parts of `obj` that label and field selectors read (SELECTABLE), as an object of the same shape."""
    out = {}
    for path in SELECTABLE:
        value = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    return out


def _same(a, b):
    """Whether two stored objects are the same but for their resourceVersion."""
    return {**a, "metadata": {**a["metadata"], "resourceVersion": None}} == \
        {**b, "metadata": {**b["metadata"], "resourceVersion": None}}


class _Unchanged(Exception):
    def __init__(self, obj):
        super().__init__()
        self.obj = obj


class StoreError(Exception):
    pass


class Exists(StoreError):
    pass


class Missing(StoreError):
    pass


class Stale(StoreError):
    """The object's resourceVersion (or uid) is not the one the write expected."""


class TooLarge(StoreError):
    def __init__(self, size, limit):
        super().__init__(f"the object is {size} bytes of JSON, more than the {limit} bytes an object may have")
        self.size, self.limit = size, limit


class TooOld(StoreError):
    def __init__(self, requested, oldest):
        super().__init__(f"{requested} < {oldest}")
        self.requested, self.oldest = requested, oldest


class Store:
    def __init__(self, path, history=HISTORY, history_bytes=HISTORY_BYTES, max_object=MAX_OBJECT):
        self.path, self.history, self.history_bytes, self.max_object = path, history, history_bytes, max_object
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no committed write
            self._db.executescript(_SCHEMA)
            self._migrate()
            if self._counter("history_bytes") < 0:  # a store of an earlier version: its history measured once
                total = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM events").fetchone()[0]
                self._db.execute("UPDATE counters SET value=? WHERE name='history_bytes'", (total,))
        except sqlite3.Error as exc:  # not a database, or one another program made
            raise StoreError(f"not a ringrun store: {exc}") from None
        self._lock = threading.RLock()
        self._listeners = []

    def _migrate(self):
        """A store of an earlier version: events gain `name` and `prev`; the history it had is dropped (a watch
        from before it gets 410 and lists again, as after a compaction)."""
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(events)")]
        if "name" not in columns:
            self._db.execute("ALTER TABLE events ADD COLUMN name TEXT NOT NULL DEFAULT ''")
            self._db.execute("ALTER TABLE events ADD COLUMN prev TEXT")
            self._db.execute("DELETE FROM events")
            self._db.execute("UPDATE counters SET value=0 WHERE name='history_bytes'")
            self._db.execute("UPDATE counters SET value=(SELECT value FROM counters WHERE name='rv') "
                             "WHERE name='compacted'")
        self._db.execute(_INDEX)

    def close(self):
        with self._lock:
            self._db.close()

    # -- listeners ---------------------------------------------------------------------------------------------
    def listen(self, callback):
        """callback(event) after every committed write; event = {"type", "object", "resource", "rv"}."""
        with self._lock:
            self._listeners.append(callback)

    def unlisten(self, callback):
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self, event):
        """Every listener gets the event; one that fails costs no other listener and not the write (committed)."""
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception as exc:  # noqa: BLE001 - reported, and the other listeners still get the event
                import sys

                sys.stderr.write(f"ringrun serve: a store listener failed: {type(exc).__name__}: {exc}\n")

    def _counter(self, name):
        return self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    # -- reads -------------------------------------------------------------------------------------------------
    def current(self):
        """The newest resourceVersion (int)."""
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name='rv'").fetchone()[0]

    def get(self, resource, namespace, name):
        with self._lock:
            row = self._db.execute("SELECT body FROM objects WHERE resource=? AND namespace=? AND name=?",
                                   (resource, namespace, name)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, resource, namespace=None, after=None, limit=None, at=None):
        """(objects ordered by namespace and name, the resourceVersion they are read at); `after` = (namespace,
        name) to continue past; `limit` rows at most; `at`: a resourceVersion to read them at (an earlier page's),
        objects as they were then. Raises TooOld when the history no longer holds what `at` needs."""
        where, args = "resource=?", [resource]
        if namespace is not None:
            where += " AND namespace=?"
            args.append(namespace)
        if after is not None:
            where += " AND (namespace > ? OR (namespace = ? AND name > ?))"
            args += [after[0], after[0], after[1]]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                rv = self._counter("rv")
                if at is not None and at < rv:
                    return self._list_at(resource, where, args, at, limit), at
                query = f"SELECT body FROM objects WHERE {where} ORDER BY namespace, name"
                if limit is not None:
                    query += f" LIMIT {int(limit)}"
                rows = self._db.execute(query, args).fetchall()
            finally:
                self._db.execute("COMMIT")
        return [json.loads(r[0]) for r in rows], rv

    def _list_at(self, resource, where, args, at, limit):
        """The objects (of one list query) as they were at resourceVersion `at`: those unchanged since as they are,
        the others from the last event at or before `at`. Raises TooOld."""
        if at < self._counter("compacted"):
            raise TooOld(at, self._counter("compacted") + 1)
        found = {}
        for ns, name, rv, body in self._db.execute(f"SELECT namespace, name, rv, body FROM objects WHERE {where}",
                                                   args):
            found[(ns, name)] = json.loads(body) if rv <= at else None
        changed = self._db.execute(f"SELECT DISTINCT namespace, name FROM events WHERE {where} AND rv > ?",
                                   args + [at]).fetchall()
        for key in [k for k, v in found.items() if v is None] + [tuple(k) for k in changed if tuple(k) not in found]:
            found[key] = self._state_at(resource, key, at)
        items = [found[k] for k in sorted(k for k, v in found.items() if v is not None)]
        return items[:limit] if limit is not None else items

    def _state_at(self, resource, key, at):
        """One object as it was at `at` (None: it did not exist then). Raises TooOld when that is no longer kept."""
        row = self._db.execute("SELECT type, body FROM events WHERE resource=? AND namespace=? AND name=? AND rv <= ? "
                               "ORDER BY rv DESC LIMIT 1", (resource, key[0], key[1], at)).fetchone()
        if row is not None:
            return None if row[0] == "DELETED" else json.loads(row[1])
        row = self._db.execute("SELECT type FROM events WHERE resource=? AND namespace=? AND name=? AND rv > ? "
                               "ORDER BY rv LIMIT 1", (resource, key[0], key[1], at)).fetchone()
        if row is None or row[0] == "ADDED":
            return None
        raise TooOld(at, self._counter("compacted") + 1)

    def compacted(self):
        """The newest resourceVersion whose changes the watch history no longer holds."""
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name='compacted'").fetchone()[0]

    def events_since(self, rv, resource=None):
        """Events after `rv`, oldest first, read PAGE at a time as the caller goes (a generator; the first
        `next` raises TooOld when some of them are no longer kept). A page compacted away while the caller was
        still reading ends the generator with TooOld too."""
        with self._lock:
            compacted = self._counter("compacted")
        if rv < compacted:
            raise TooOld(rv, compacted + 1)
        return self._pages(rv, resource)

    def _pages(self, rv, resource):
        query, args = "SELECT rv, type, body, resource, prev FROM events WHERE rv > ?", [rv]
        if resource is not None:
            query += " AND resource=?"
            args.append(resource)
        query += f" ORDER BY rv LIMIT {PAGE}"
        while True:
            with self._lock:
                if args[0] < self._counter("compacted"):
                    raise TooOld(args[0], self._counter("compacted") + 1)
                rows = self._db.execute(query, args).fetchall()
            for r in rows:
                yield {"rv": r[0], "type": r[1], "object": json.loads(r[2]), "resource": r[3], "size": len(r[2]),
                       "prev": json.loads(r[4]) if r[4] else None}
            if len(rows) < PAGE:
                return
            args[0] = rows[-1][0]

    # -- writes ------------------------------------------------------------------------------------------------
    def _text(self, obj):
        """The JSON of an object to store. Raises TooLarge."""
        text = json.dumps(obj)
        if len(text) > self.max_object:
            raise TooLarge(len(text), self.max_object)
        return text

    def _write(self, resource, change):
        """Run change(next_rv) -> (event type, object, its JSON, the object before or None) in one transaction;
        returns the object. A change that raises _Unchanged writes nothing and returns the object as it is."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rv = self._counter("rv") + 1
                kind, obj, text, before = change(rv)
                meta = obj["metadata"]
                prev = selectable(before) if before is not None else None
                self._db.execute("UPDATE counters SET value=? WHERE name='rv'", (rv,))
                self._db.execute("INSERT INTO events (rv, resource, namespace, type, body, name, prev) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (rv, resource, meta["namespace"], kind, text,
                                                                  meta["name"], json.dumps(prev) if prev else None))
                self._db.execute("UPDATE counters SET value=value+? WHERE name='history_bytes'", (len(text),))
                self._compact(rv)
                self._db.execute("COMMIT")
            except _Unchanged as same:
                self._db.execute("ROLLBACK")
                return same.obj
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._notify({"type": kind, "object": obj, "resource": resource, "rv": rv, "size": len(text),
                          "prev": prev, "before": before})
        return obj

    def _compact(self, rv):
        """Drop the oldest events past HISTORY (every 256 writes) or past HISTORY_BYTES (at once)."""
        keep_from = rv - self.history if rv % 256 == 0 and rv > self.history else 0
        if self._counter("history_bytes") > self.history_bytes:
            # the oldest events whose bytes bring the history to half its bound: few deletes, each a batch
            excess = self._counter("history_bytes") - self.history_bytes // 2
            row = self._db.execute("SELECT rv FROM (SELECT rv, SUM(LENGTH(body)) OVER (ORDER BY rv) AS upto "
                                   "FROM events) WHERE upto >= ? ORDER BY rv LIMIT 1", (excess,)).fetchone()
            keep_from = max(keep_from, row[0] if row else rv)
        if keep_from:
            dropped = self._db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM events WHERE rv <= ?",
                                       (keep_from,)).fetchone()[0]
            self._db.execute("DELETE FROM events WHERE rv <= ?", (keep_from,))
            self._db.execute("UPDATE counters SET value=value-? WHERE name='history_bytes'", (dropped,))
            self._db.execute("UPDATE counters SET value=MAX(value, ?) WHERE name='compacted'", (keep_from,))

    def _row(self, resource, namespace, name):
        return self._db.execute("SELECT body FROM objects WHERE resource=? AND namespace=? AND name=?",
                                (resource, namespace, name)).fetchone()

    def create(self, resource, obj):
        """Store a new object (its metadata.resourceVersion set here). Raises Exists."""
        meta = obj["metadata"]

        def change(rv):
            if self._row(resource, meta["namespace"], meta["name"]):
                raise Exists(meta["name"])
            stored = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
            text = self._text(stored)
            self._db.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)",
                             (resource, meta["namespace"], meta["name"], meta["uid"], rv, text))
            return "ADDED", stored, text, None
        return self._write(resource, change)

    def update(self, resource, obj, expect_rv=None, expect_uid=None):
        """Replace a stored object. `expect_rv`: the resourceVersion it must still have (else Stale); `expect_uid`:
        the uid it must have (a job deleted and created again is another object). Returns the stored object: the
        old one when nothing changed; a DELETED one when `obj` is being deleted and has no finalizers left.
        Raises Missing, Stale."""
        meta = obj["metadata"]

        def change(rv):
            row = self._row(resource, meta["namespace"], meta["name"])
            if not row:
                raise Missing(meta["name"])
            current = json.loads(row[0])
            old = current["metadata"]
            if (expect_rv is not None and old["resourceVersion"] != str(expect_rv)) or (
                    expect_uid is not None and old["uid"] != expect_uid):
                raise Stale(meta["name"])
            stored = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
            if _same(stored, current):
                raise _Unchanged(current)
            text = self._text(stored)
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):  # the last finalizer is gone
                self._db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                                 (resource, meta["namespace"], meta["name"]))
                return "DELETED", stored, text, current
            self._db.execute("UPDATE objects SET rv=?, body=?, uid=? WHERE resource=? AND namespace=? AND name=?",
                             (rv, text, meta["uid"], resource, meta["namespace"], meta["name"]))
            return "MODIFIED", stored, text, current
        return self._write(resource, change)

    def modify(self, resource, namespace, name, edit, expect_uid=None):
        """Read-modify-write in one transaction: edit(current object) -> new object, or None to leave it. Returns
        the stored object (or the unchanged one, or None when it does not exist / has another uid)."""
        with self._lock:
            row = self._row(resource, namespace, name)
            if not row:
                return None
            current = json.loads(row[0])
            if expect_uid is not None and current["metadata"]["uid"] != expect_uid:
                return None
            new = edit(current)
            if new is None:
                return current
            return self.update(resource, new, expect_rv=current["metadata"]["resourceVersion"])

    def delete(self, resource, namespace, name, expect_uid=None, expect_rv=None, now=None):
        """Remove an object; returns it as it was last (resourceVersion of the deletion). An object with
        finalizers is not removed: it gets `deletionTimestamp` = `now` (default: the clock's) once, and stays until
        an update removes its last finalizer. Raises Missing, Stale."""
        def change(rv):
            row = self._row(resource, namespace, name)
            if not row:
                raise Missing(name)
            old = json.loads(row[0])
            if (expect_uid is not None and old["metadata"]["uid"] != expect_uid) or (
                    expect_rv is not None and old["metadata"]["resourceVersion"] != str(expect_rv)):
                raise Stale(name)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    raise _Unchanged(old)
                marked = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv),
                                              "deletionTimestamp": now or utc_now(), "deletionGracePeriodSeconds": 0}}
                text = self._text(marked)
                self._db.execute("UPDATE objects SET rv=?, body=? WHERE resource=? AND namespace=? AND name=?",
                                 (rv, text, resource, namespace, name))
                return "MODIFIED", marked, text, old
            self._db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                             (resource, namespace, name))
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
            return "DELETED", gone, json.dumps(gone), old
        return self._write(resource, change)

    # -- the uids of namespaces' jobs (server/jobusers.py) ------------------------------------------------------
    def job_uid(self, namespace):
        """The uid namespace's jobs run as, or None."""
        with self._lock:
            row = self._db.execute("SELECT uid FROM job_users WHERE namespace=?", (namespace,)).fetchone()
        return row[0] if row else None

    def job_uids(self):
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT uid FROM job_users")]

    def take_job_uid(self, namespace, uid):
        """Record that namespace's jobs run as uid (for good: it is never given to another namespace)."""
        with self._lock:
            self._db.execute("INSERT INTO job_users VALUES (?, ?)", (namespace, uid))

    def all_objects(self, namespace=None):
        """[(resource, object)] of everything stored (the controller's view at start), or of one namespace."""
        query, args = "SELECT resource, body FROM objects", ()
        if namespace is not None:
            query, args = query + " WHERE namespace=?", (namespace,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY rv", args).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def count(self, resource, namespace):
        """How many objects of `resource` `namespace` holds."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM objects WHERE resource=? AND namespace=?",
                                    (resource, namespace)).fetchone()[0]

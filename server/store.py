"""The object store: SQLite (standard library) in WAL mode, one file in the data directory.

- Every object is one row (resource, namespace, name) holding its JSON; `metadata.resourceVersion` comes from ONE
  global counter, bumped by every write, so versions order all changes of all resources.
- Every write is one transaction (BEGIN IMMEDIATE ... COMMIT) that changes the object, the counter and the watch
  history together: a crash (even kill -9) leaves the store as it was before or after the write, never between.
- The watch history keeps the last HISTORY events; a watch from a version older than that gets 410 Expired.
- Listeners (the watch streams, the controller) are called after each commit, in the writer's thread.
"""

import json
import sqlite3
import threading

HISTORY = 20000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS events (rv INTEGER PRIMARY KEY, resource TEXT NOT NULL, namespace TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('rv', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS job_users (namespace TEXT PRIMARY KEY, uid INTEGER NOT NULL UNIQUE);
"""


class StoreError(Exception):
    pass


class Exists(StoreError):
    pass


class Missing(StoreError):
    pass


class Stale(StoreError):
    """The object's resourceVersion (or uid) is not the one the write expected."""


class TooOld(StoreError):
    def __init__(self, requested, oldest):
        super().__init__(f"{requested} < {oldest}")
        self.requested, self.oldest = requested, oldest


class Store:
    def __init__(self, path, history=HISTORY):
        self.path, self.history = path, history
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no committed write
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:  # not a database, or one another program made
            raise StoreError(f"not a ringrun store: {exc}") from None
        self._lock = threading.RLock()
        self._listeners = []

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

    def list(self, resource, namespace=None, after=None, limit=None):
        """(objects ordered by namespace and name, the current resourceVersion); `after` = (namespace, name) to
        continue past; `limit` rows at most."""
        query, args = "SELECT body FROM objects WHERE resource=?", [resource]
        if namespace is not None:
            query += " AND namespace=?"
            args.append(namespace)
        if after is not None:
            query += " AND (namespace > ? OR (namespace = ? AND name > ?))"
            args += [after[0], after[0], after[1]]
        query += " ORDER BY namespace, name"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                rows = self._db.execute(query, args).fetchall()
                rv = self._db.execute("SELECT value FROM counters WHERE name='rv'").fetchone()[0]
            finally:
                self._db.execute("COMMIT")
        return [json.loads(r[0]) for r in rows], rv

    def compacted(self):
        """The newest resourceVersion whose changes the watch history no longer holds."""
        with self._lock:
            return self._db.execute("SELECT value FROM counters WHERE name='compacted'").fetchone()[0]

    def namespaces(self):
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT namespace FROM objects ORDER BY namespace")]

    def events_since(self, rv, resource=None):
        """Events after `rv`, oldest first. Raises TooOld when some of them are no longer kept."""
        with self._lock:
            compacted = self._db.execute("SELECT value FROM counters WHERE name='compacted'").fetchone()[0]
            if rv < compacted:
                raise TooOld(rv, compacted + 1)
            query, args = "SELECT rv, type, body, resource FROM events WHERE rv > ?", [rv]
            if resource is not None:
                query += " AND resource=?"
                args.append(resource)
            rows = self._db.execute(query + " ORDER BY rv", args).fetchall()
        return [{"rv": r[0], "type": r[1], "object": json.loads(r[2]), "resource": r[3]} for r in rows]

    # -- writes ------------------------------------------------------------------------------------------------
    def _write(self, resource, change):
        """Run change(next_rv) -> (event type, object or None, namespace) in one transaction; returns the object."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rv = self._db.execute("SELECT value FROM counters WHERE name='rv'").fetchone()[0] + 1
                kind, obj = change(rv)
                meta = obj["metadata"]
                self._db.execute("UPDATE counters SET value=? WHERE name='rv'", (rv,))
                self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                                 (rv, resource, meta["namespace"], kind, json.dumps(obj)))
                if rv % 256 == 0 and rv > self.history:
                    self._db.execute("DELETE FROM events WHERE rv <= ?", (rv - self.history,))
                    self._db.execute("UPDATE counters SET value=? WHERE name='compacted'", (rv - self.history,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._notify({"type": kind, "object": obj, "resource": resource, "rv": rv})
        return obj

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
            self._db.execute("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)",
                             (resource, meta["namespace"], meta["name"], meta["uid"], rv, json.dumps(stored)))
            return "ADDED", stored
        return self._write(resource, change)

    def update(self, resource, obj, expect_rv=None, expect_uid=None):
        """Replace a stored object. `expect_rv`: the resourceVersion it must still have (else Stale); `expect_uid`:
        the uid it must have (a job deleted and created again is another object). Raises Missing, Stale."""
        meta = obj["metadata"]

        def change(rv):
            row = self._row(resource, meta["namespace"], meta["name"])
            if not row:
                raise Missing(meta["name"])
            old = json.loads(row[0])["metadata"]
            if (expect_rv is not None and old["resourceVersion"] != str(expect_rv)) or (
                    expect_uid is not None and old["uid"] != expect_uid):
                raise Stale(meta["name"])
            stored = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
            self._db.execute("UPDATE objects SET rv=?, body=?, uid=? WHERE resource=? AND namespace=? AND name=?",
                             (rv, json.dumps(stored), meta["uid"], resource, meta["namespace"], meta["name"]))
            return "MODIFIED", stored
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

    def delete(self, resource, namespace, name, expect_uid=None, expect_rv=None):
        """Remove an object; returns it as it was last (resourceVersion of the deletion). Raises Missing, Stale."""
        def change(rv):
            row = self._row(resource, namespace, name)
            if not row:
                raise Missing(name)
            old = json.loads(row[0])
            if (expect_uid is not None and old["metadata"]["uid"] != expect_uid) or (
                    expect_rv is not None and old["metadata"]["resourceVersion"] != str(expect_rv)):
                raise Stale(name)
            self._db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                             (resource, namespace, name))
            return "DELETED", {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
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

    def all_objects(self):
        """[(resource, object)] of everything stored (the controller's view at start)."""
        with self._lock:
            rows = self._db.execute("SELECT resource, body FROM objects ORDER BY rv").fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

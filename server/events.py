"""core/v1 Events (pure): the controller's record of each job's life (created, running, a replica failed,
succeeded, failed), as `kubectl describe` and `kubectl events` show them; they expire after EVENT_TTL, as
kube-apiserver's --event-ttl makes them."""

from datetime import timedelta

from .clock import parse_time

EVENT_TTL = 3600  # seconds
COMPONENT = "ringrun-controller"


def event(obj, kind, reason, message, now, uid, api_version=None):
    """An Event about `obj` (type Normal or Warning), named as kube's recorder names them (`<name>.<16 hex>`);
    `api_version`: how it refers to `obj` (default: the object's own)."""
    meta = obj["metadata"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uid.replace('-', '')[:16]}", "namespace": meta["namespace"],
                         "uid": uid, "creationTimestamp": now},
            "involvedObject": {"apiVersion": api_version or obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "eventTime": None,
            "source": {"component": COMPONENT, "host": "localhost"},
            "reportingComponent": COMPONENT, "reportingInstance": "localhost"}


def expired(items, now, ttl=EVENT_TTL):
    """The events of `items` last seen more than `ttl` seconds before `now` (timestamps as the API writes them)."""
    limit = parse_time(now) - timedelta(seconds=ttl)
    old = []
    for item in items:
        seen = parse_time(item.get("lastTimestamp") or item.get("eventTime") or
                          item["metadata"].get("creationTimestamp") or "")
        if seen is not None and seen < limit:
            old.append(item)
    return old

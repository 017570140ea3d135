"""`kubectl get`'s tables (meta.k8s.io/v1 Table), pure: the columns a cluster shows for jobs (Name, State, Age, as
training-operator's printer columns) and pods (Name, Ready, Status, Restarts, Age). `now` is passed in."""

from ..clock import parse_time

_JOB_COLUMNS = [("Name", "string", "name", "Name must be unique within a namespace."),
                ("State", "string", "", "The last condition that holds (Created, Running, Succeeded, Failed, ...)."),
                ("Age", "string", "", "Time since the object was created.")]
_POD_COLUMNS = [("Name", "string", "name", "Name must be unique within a namespace."),
                ("Ready", "string", "", "Ready containers of all."), ("Status", "string", "", "The pod's phase."),
                ("Restarts", "integer", "", "Restarts of its container."),
                ("Age", "string", "", "Time since the pod was started."),
                ("IP", "string", "", "The pod's IP address.", 1), ("Node", "string", "", "The node it runs on.", 1),
                ("Nominated Node", "string", "", "The node the scheduler nominated.", 1),
                ("Readiness Gates", "string", "", "Readiness gates of the pod.", 1)]


def wants_table(accept):
    """Whether an Accept header asks for a Table (kubectl get does; other clients do not)."""
    return "as=Table" in (accept or "")


def age(since, now):
    """kube's short duration (apimachinery duration.HumanDuration): 45s, 3m12s, 42m, 5h3m, 20h, 3d4h, 30d, 2y."""
    then = parse_time(since) if since else None
    if then is None:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"


def job_state(obj):
    """The type of the last condition that holds, TensorStack's phase, else empty."""
    status = obj.get("status") or {}
    if status.get("phase"):
        return status["phase"]
    held = [c.get("type", "") for c in status.get("conditions", []) if isinstance(c, dict) and c.get("status") == "True"]
    return held[-1] if held else ""


def _table(columns, rows, rv):
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": c[0], "type": c[1], "format": c[2], "description": c[3],
                                   "priority": c[4] if len(c) > 4 else 0} for c in columns], "rows": rows}


def _row(obj, cells):
    return {"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                       "metadata": obj["metadata"]}}


_NAMESPACE_COLUMNS = [("Name", "string", "name", "Name must be unique within a namespace."),
                      ("Status", "string", "", "The namespace's phase."),
                      ("Age", "string", "", "Time since the object was created.")]
_EVENT_COLUMNS = [("Last Seen", "string", "", "Time since the event was last seen."),
                  ("Type", "string", "", "Normal or Warning."), ("Reason", "string", "", "Why the event happened."),
                  ("Object", "string", "", "The object it is about."), ("Message", "string", "", "What happened.")]
_DEFAULT_COLUMNS = [("Name", "string", "name", "Name must be unique within a namespace."),
                    ("Age", "string", "", "Time since the object was created.")]


def namespace_table(items, rv, now):
    return _table(_NAMESPACE_COLUMNS, [_row(o, [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), age(
        o["metadata"].get("creationTimestamp"), now)]) for o in items], str(rv))


def event_table(items, rv, now):
    rows = []
    for event in items:  # core/v1 or events.k8s.io/v1 field names
        about = event.get("involvedObject") or event.get("regarding") or {}
        seen = event.get("lastTimestamp") or event.get("deprecatedLastTimestamp") or event.get("eventTime") or \
            event["metadata"].get("creationTimestamp")
        rows.append(_row(event, [age(seen, now), event.get("type", ""), event.get("reason", ""),
                                 f"{str(about.get('kind', '')).lower()}/{about.get('name', '')}",
                                 event.get("message", event.get("note", ""))]))
    return _table(_EVENT_COLUMNS, rows, str(rv))


def default_table(items, rv, now):
    return _table(_DEFAULT_COLUMNS, [_row(o, [o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"),
                                                                          now)]) for o in items], str(rv))


def job_table(items, rv, now):
    return _table(_JOB_COLUMNS, [_row(o, [o["metadata"]["name"], job_state(o), age(
        o["metadata"].get("creationTimestamp"), now)]) for o in items], str(rv))


_TRAINJOB_COLUMNS = [_JOB_COLUMNS[0], _JOB_COLUMNS[1],
                     ("Progress", "string", "", "status.trainerStatus.progressPercentage, as the job reports it "
                                                "(beyond Trainer's printer columns)."),
                     _JOB_COLUMNS[2]]


def trainjob_table(items, rv, now):
    """Trainer's printer columns (State: the last condition, Age) and the progress the job reports."""
    def progress(obj):
        value = ((obj.get("status") or {}).get("trainerStatus") or {}).get("progressPercentage")
        return f"{value}%" if isinstance(value, int) else ""
    return _table(_TRAINJOB_COLUMNS, [_row(o, [o["metadata"]["name"], job_state(o), progress(o), age(
        o["metadata"].get("creationTimestamp"), now)]) for o in items], str(rv))


def pod_table(items, rv, now):
    rows = []
    for pod in items:
        statuses = pod["status"].get("containerStatuses", [])
        ready = sum(1 for s in statuses if s.get("ready"))
        restarts = sum(s.get("restartCount", 0) for s in statuses)
        terminated = [s["state"]["terminated"] for s in statuses if "terminated" in s.get("state", {})]
        shown = terminated[0]["reason"] if terminated else pod["status"]["phase"]
        rows.append(_row(pod, [pod["metadata"]["name"], f"{ready}/{len(statuses)}", shown, restarts,
                               age(pod["metadata"].get("creationTimestamp"), now), pod["status"].get("podIP", "<none>"),
                               pod["spec"].get("nodeName", "<none>"), "<none>", "<none>"]))
    return _table(_POD_COLUMNS, rows, str(rv))

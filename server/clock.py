"""The server's clock: Kubernetes timestamps (RFC 3339, seconds; events' MicroTime with microseconds)."""

from datetime import datetime, timezone


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(stamp):
    """A Kubernetes timestamp (seconds or MicroTime) as an aware datetime, or None when it is not one."""
    try:
        return datetime.strptime(stamp.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except (AttributeError, ValueError):
        return None

"""ringrun.runtime - pure: job spec text -> JobSpec -> Identity -> Plan. No processes, sockets or environment writes."""

from .errors import IdentityError, RingrunError, SpecError, UsageError
from .identity import Identity, resolve_identity
from .parse import parse_jobs, select_job
from .plan import Context, Plan, build_plan

__all__ = [
    "Context", "Identity", "IdentityError", "Plan", "RingrunError", "SpecError", "UsageError",
    "build_plan", "parse_jobs", "resolve_identity", "select_job",
]

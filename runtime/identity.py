"""Which replica am I? (role, index) from flags, ringrun's variables, the operators' variables, or the pod hostname.

Sources, first match wins:
1. `--role/--index` (index may be left out when the role has one replica);
2. `RINGRUN_ROLE` / `RINGRUN_INDEX`;
3. the operators' variables: `K_MPI_JOB_ROLE` (mpi-operator), `RANK` (training-operator PyTorch: 0 is the master,
   workers are index+1), `DMLC_ROLE` with `MX_CONFIG`'s task index or `DMLC_WORKER_ID` (MXNet);
4. the pod hostname `<job>-<role>-<index>` (`HOSTNAME` first, then the machine's host name).
The environment and host name are passed in: nothing here reads the process state.
"""

import re
from dataclasses import dataclass

from .errors import IdentityError, UsageError


@dataclass(frozen=True)
class Identity:
    role: str
    index: int
    source: str


def _check(job, role, index, source):
    """Validate (role, index) against the job; UsageError for flags, IdentityError for inferred values."""
    error = UsageError if source == "flags" else IdentityError
    replica = job.replica(role)
    if replica is None:
        raise error(f"{source}: job {job.name} has no role {role!r} (roles: {', '.join(job.roles)})")
    if index is None:
        if replica.replicas != 1:
            raise error(f"{source}: role {role} has {replica.replicas} replicas; give an index")
        index = 0
    if not 0 <= index < replica.replicas:
        raise error(f"{source}: index {index} is out of range for {role} (replicas {replica.replicas})")
    return Identity(role, index, source)


def env_integer(text, what):
    try:
        return int(text)
    except (TypeError, ValueError):
        raise IdentityError(f"{what} must be an integer, got {text!r}") from None


def from_hostname(job, hostname):
    """(role, index or None) parsed from `<job>-<role>-<index>`, `<job>-<role>` or a Job pod `<job>-launcher-x7k2p`."""
    if not hostname:
        return None
    label = hostname.split(".", 1)[0]
    prefix = job.name + "-"
    if not label.startswith(prefix):
        return None
    rest = label[len(prefix):]
    for role in sorted(job.roles, key=len, reverse=True):
        if rest == role:
            return role, None
        match = re.fullmatch(re.escape(role) + r"-(.+)", rest)
        if match:
            suffix = match.group(1)
            if suffix.isdigit():
                return role, int(suffix)
            if job.count(role) == 1:  # a pod of a batch Job (mpi-operator's launcher) gets a random suffix
                return role, 0
    return None


def resolve_identity(job, role=None, index=None, env=None, hostname=None):
    """This process's Identity in `job`.

    Args: role/index from the command line (or None); env, the process environment as a mapping; hostname, the
    machine's host name. Raises UsageError for flags that do not fit the job, IdentityError when nothing identifies it.
    """
    env = env or {}
    if role is not None:
        return _check(job, role.lower(), index, "flags")
    if index is not None:
        raise UsageError("flags: --index needs --role")
    if env.get("RINGRUN_ROLE"):
        raw = env.get("RINGRUN_INDEX")
        return _check(job, env["RINGRUN_ROLE"].lower(), env_integer(raw, "RINGRUN_INDEX") if raw else None, "RINGRUN_ROLE")
    from .kinds import frameworks  # which uses this module's parsers: imported when called

    found = frameworks.of(job).operator_identity(job, env, env.get("HOSTNAME") or hostname)
    if found is not None:
        return _check(job, found[0], found[1], found[2])
    for name, source in ((env.get("HOSTNAME"), "HOSTNAME"), (hostname, "hostname")):
        parsed = from_hostname(job, name)
        if parsed is not None:
            return _check(job, parsed[0], parsed[1], f"{source} {name!r}")
    raise IdentityError(
        f"cannot tell which replica of job {job.name} this is: no --role/--index, no RINGRUN_ROLE, no operator "
        f"variable (K_MPI_JOB_ROLE, RANK, DMLC_ROLE), and the host name {(env.get('HOSTNAME') or hostname)!r} "
        f"is not <job>-<role>-<index> (roles: {', '.join(job.roles)})")

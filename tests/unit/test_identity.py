"""Which replica am I: flags, then RINGRUN_*, then the operators' variables, then the pod hostname."""

import json

import pytest

import specs
from ringrun.runtime import IdentityError, UsageError, parse_jobs, resolve_identity


def job(obj):
    return parse_jobs(json.dumps(obj))[0]


MPI, PT, MX = job(specs.mpijob(workers=3)), job(specs.pytorchjob(workers=2)), job(specs.mxjob(servers=2, workers=2))


@pytest.mark.parametrize("spec,kwargs,expected", [
    (MPI, dict(role="worker", index=2), ("worker", 2, "flags")),
    (MPI, dict(role="Launcher"), ("launcher", 0, "flags")),
    (MPI, dict(env={"RINGRUN_ROLE": "worker", "RINGRUN_INDEX": "1", "K_MPI_JOB_ROLE": "launcher"}),
     ("worker", 1, "RINGRUN_ROLE")),
    (MPI, dict(role="worker", index=0, env={"RINGRUN_ROLE": "launcher"}), ("worker", 0, "flags")),
    (MPI, dict(env={"K_MPI_JOB_ROLE": "launcher"}, hostname="job-launcher-x7k2p"), ("launcher", 0, "K_MPI_JOB_ROLE")),
    (MPI, dict(env={"K_MPI_JOB_ROLE": "worker", "HOSTNAME": "job-worker-2"}), ("worker", 2, "K_MPI_JOB_ROLE")),
    (PT, dict(env={"RANK": "0"}), ("master", 0, "RANK")),
    (PT, dict(env={"RANK": "2"}), ("worker", 1, "RANK")),
    (MX, dict(env={"DMLC_ROLE": "server", "MX_CONFIG": json.dumps({"task": {"type": "server", "index": 1}})}),
     ("server", 1, "DMLC_ROLE")),
    (MX, dict(env={"DMLC_ROLE": "worker", "DMLC_WORKER_ID": "1"}), ("worker", 1, "DMLC_ROLE")),
    (MX, dict(env={"DMLC_ROLE": "scheduler"}), ("scheduler", 0, "DMLC_ROLE")),
    (MPI, dict(env={"HOSTNAME": "job-worker-1"}, hostname="other"), ("worker", 1, "HOSTNAME 'job-worker-1'")),
    (MPI, dict(hostname="job-worker-2.job.ns.svc.cluster.local"), ("worker", 2,
                                                                  "hostname 'job-worker-2.job.ns.svc.cluster.local'")),
    (MPI, dict(hostname="job-launcher"), ("launcher", 0, "hostname 'job-launcher'")),
    (PT, dict(hostname="pt-master-0"), ("master", 0, "hostname 'pt-master-0'")),
    (MX, dict(hostname="mx-server-1"), ("server", 1, "hostname 'mx-server-1'")),
])
def test_identity_sources(spec, kwargs, expected):
    identity = resolve_identity(spec, **kwargs)
    assert (identity.role, identity.index, identity.source) == expected


@pytest.mark.parametrize("spec,kwargs,error,text", [
    (MPI, dict(role="master"), UsageError, "no role 'master' (roles: launcher, worker)"),
    (MPI, dict(role="worker"), UsageError, "role worker has 3 replicas; give an index"),
    (MPI, dict(role="worker", index=3), UsageError, "index 3 is out of range for worker (replicas 3)"),
    (MPI, dict(index=1), UsageError, "--index needs --role"),
    (MPI, dict(env={"RINGRUN_ROLE": "worker", "RINGRUN_INDEX": "x"}), IdentityError, "RINGRUN_INDEX must be an integer"),
    (MPI, dict(env={"K_MPI_JOB_ROLE": "worker"}, hostname="somewhere"), IdentityError, "give an index"),
    (PT, dict(env={"RANK": "9"}), IdentityError, "index 8 is out of range for worker"),
    (MPI, dict(hostname="other-worker-1"), IdentityError, "cannot tell which replica of job job this is"),
    (MPI, dict(hostname="job-worker-7"), IdentityError, "index 7 is out of range"),
])
def test_identity_errors(spec, kwargs, error, text):
    with pytest.raises(error) as info:
        resolve_identity(spec, **kwargs)
    assert text in str(info.value)

"""Hypothesis mutates valid specs (drop, retype, negate, rename fields): parsing, identity and planning either work or
raise ringrun's own errors - never a traceback."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specs
from conftest import FIXTURES, run_cli
from ringrun.runtime import Context, Identity, RingrunError, build_plan, parse_jobs, resolve_identity
from ringrun.runtime.summary import summary

BASES = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("seed-*.json"))]
BASES += [__import__("yaml").safe_load((FIXTURES / "tensorstack-mpijob.yaml").read_text())]
BASES += [f() for f in specs.ALL.values()]
BASES += [specs.pytorchjob(elasticPolicy={"minReplicas": 1, "maxReplicas": 3}, nprocPerNode="2"),
          specs.mxjob(mode="MXTune"), specs.mpijob(mpiImplementation="Intel", runLauncherAsWorker=True)]

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["", "All", "Never", "2Gi", "-1", "mpi", "worker"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=3))


def paths(obj, prefix=()):
    """Every (path) to a value inside obj."""
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += paths(value, prefix + (i,))
    return found


def apply(obj, path, action, value):
    if not path:
        return value if action == "retype" else obj
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "drop":
        del parent[last]
    elif action == "retype":
        parent[last] = value
    elif action == "negate":
        current = parent[last]
        parent[last] = -current if isinstance(current, int) and not isinstance(current, bool) else -1
    elif action == "rename" and isinstance(parent, dict):
        parent[last + "x" if isinstance(last, str) else last] = parent.pop(last)
        if isinstance(last, str) and last[:1].isupper():
            parent[last.lower()] = parent.pop(last + "x")
    return obj


@st.composite
def mutated(draw):
    obj = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(obj)
        path = draw(st.sampled_from(candidates))
        obj = apply(obj, path, draw(st.sampled_from(["drop", "retype", "negate", "rename"])), draw(VALUES))
    return obj


def exercise(job):
    summary(job)
    for replica in job.replicas:
        for index in sorted({0, replica.replicas - 1}) if replica.replicas else ():
            resolve_identity(job, env={"RINGRUN_ROLE": replica.role, "RINGRUN_INDEX": str(index)})
            build_plan(job, Identity(replica.role, index, "fuzz"), Context(run_dir="/r")).to_dict()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_specs_never_raise_anything_but_ringrun_errors(obj):
    try:
        jobs = parse_jobs(json.dumps(obj))
    except RingrunError:
        return
    for job in jobs:
        exercise(job)


@settings(max_examples=60, deadline=None)
@given(mutated(), st.dictionaries(st.sampled_from(["RANK", "K_MPI_JOB_ROLE", "DMLC_ROLE", "MX_CONFIG", "HOSTNAME",
                                                   "DMLC_WORKER_ID", "RINGRUN_ROLE", "RINGRUN_INDEX"]),
                                  st.text(max_size=6), max_size=3))
def test_cli_never_shows_a_traceback(tmp_path_factory, obj, environ):
    path = tmp_path_factory.mktemp("spec") / "job.json"
    path.write_text(json.dumps(obj))
    for args in (["validate", str(path)], ["plan", str(path)]):
        code, _, err = run_cli(args, environ=environ)
        assert code in (0, 2, 3), (code, err)
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if ": warning: " not in line]
        assert (code == 0) == (errors == [])

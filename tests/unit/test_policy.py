"""The job semantics as data: deciders, restart decisions, the policy read from each kind of spec."""

import pytest

import specs
from ringrun.runtime.parse import parse_objects
from ringrun.runtime.policy import DEFAULT_BACKOFF_LIMIT, deciders, job_policy, should_restart


@pytest.mark.parametrize("policy,code,decides,restart", [
    ("Never", 1, False, False), ("Never", 0, True, False),
    ("OnFailure", 1, False, True), ("OnFailure", 0, False, False),
    ("Always", 0, False, True), ("Always", 0, True, False), ("Always", 3, True, True),
    ("ExitCode", 1, False, False), ("ExitCode", 127, False, False), ("ExitCode", 128, False, True),
    ("ExitCode", 137, True, True), ("ExitCode", 0, False, False),
])
def test_should_restart(policy, code, decides, restart):
    assert should_restart(policy, code, decides) is restart


@pytest.mark.parametrize("obj,roles", [
    (specs.mpijob(), {"launcher"}), (specs.t9kjob(), {"launcher"}),
    (specs.pytorchjob(), {"master"}), (specs.pytorchjob(master=False, elasticPolicy={"maxReplicas": 4}), {"worker"}),
    (specs.mxjob(), {"worker"}), (specs.mxjob(mode="MXTune"), {"tuner"}),
])
def test_deciders(obj, roles):
    (job,) = parse_objects([obj])
    assert deciders(job) == roles


def test_job_policy_takes_the_earlier_deadline_and_the_default_backoff():
    (job,) = parse_objects([specs.mpijob(runPolicy={"activeDeadlineSeconds": 30, "cleanPodPolicy": "All"})])
    policy = job_policy(job, timeout=10)
    assert (policy.deadline, policy.backoff_limit, policy.clean_pod_policy) == (10, DEFAULT_BACKOFF_LIMIT, "All")
    assert (policy.name, policy.kind, policy.framework) == ("MPIJob ns/job", "MPIJob", "mpi")
    assert job_policy(job, timeout=60).deadline == 30
    (plain,) = parse_objects([specs.pytorchjob(runPolicy={"backoffLimit": 0})])
    assert (job_policy(plain).deadline, job_policy(plain).backoff_limit) == (None, 0)

"""The execution core's agent loop over a fake process layer and a fake clock: restart policies, backoffLimit, the
deadline, clean-up, stop requests, monitors, held jobs. No process is started and no real time passes."""

import pytest

from ringrun.launcher.execute import EXIT_DEADLINE, EXIT_HELD, EXIT_NOT_STARTED, Execution, ReplicaSpec
from ringrun.runtime.plan import Plan
from ringrun.runtime.policy import JobPolicy

FOREVER = None


class Clock:
    def __init__(self):
        self.t = 0.0
        self.at = {}  # time -> callback run once the clock reaches it

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t = round(self.t + seconds, 6)
        for when in sorted(w for w in self.at if w <= self.t):
            self.at.pop(when)()

    def now(self):
        return f"T{self.t:g}"


class Child:
    def __init__(self, name, ends, code):
        self.name, self.ends, self.exit, self.code = name, ends, code, None


class Processes:
    """script: {name: [(seconds, exit code) per attempt]}; seconds None runs until stopped (then 143)."""

    def __init__(self, clock, script, fail_start=()):
        self.clock, self.script, self.fail_start = clock, {k: list(v) for k, v in script.items()}, fail_start
        self.started, self.children, self.stopped = [], [], []

    def start(self, name, argv, env, cwd=None):
        if name in self.fail_start:
            raise FileNotFoundError(2, "No such file or directory")
        seconds, code = self.script[name].pop(0)
        self.started.append((name, self.clock.t, tuple(argv), cwd, dict(env)))
        child = Child(name, None if seconds is None else self.clock.t + seconds, code)
        self.children.append(child)
        return child

    def poll(self):
        done = []
        for child in self.running():
            if child.ends is not None and child.ends <= self.clock.t:
                child.code = child.exit
                done.append((child, child.code))
        return done

    def running(self):
        return [c for c in self.children if c.code is None]

    def terminate(self, children=None):
        targets = self.running() if children is None else children
        for child in targets:
            child.code = 143
            self.stopped.append(child.name)
        return targets


def plan(role, index=0, argv=("cmd",), **fields):
    return Plan("PyTorchJob", role, index, run_dir="/nonexistent-run-dir", env=(("ROLE", role),), argv=argv,
                **fields)


def execution(clock, procs, specs, **policy):
    defaults = dict(name="PyTorchJob ns/pt", kind="PyTorchJob", framework=None)
    states = []
    run = Execution(specs, procs, JobPolicy(**{**defaults, **policy}), {"HOME": "/h"}, on_state=states.append,
                    clock=clock, sleep=clock.sleep, now=clock.now)
    return run, states


def master_worker(master_policy="Never", worker_policy="Never"):
    return [ReplicaSpec(plan("master"), master_policy, decides=True),
            ReplicaSpec(plan("worker"), worker_policy, decides=False)]


def replica(state, name):
    return next(r for r in state.replicas if f"{r.role}-{r.index}" == name)


def test_success_of_the_deciders_ends_the_job_and_a_finished_worker_is_counted():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(2, 0)], "worker-0": [(1, 0)]})
    run, states = execution(clock, procs, master_worker())
    outcome = run.run()
    assert (outcome.code, outcome.how, outcome.state.outcome) == (0, "exited", "Succeeded")
    assert outcome.state.reason == "PyTorchJobSucceeded"
    assert (replica(outcome.state, "master-0").phase, replica(outcome.state, "worker-0").phase) == ("Succeeded",) * 2
    assert [s[0] for s in procs.started] == ["master-0", "worker-0"] and procs.stopped == []
    assert states[-1] == outcome.state and states[0].outcome is None  # every change published, the last one too
    assert procs.started[0][4]["ROLE"] == "master" and procs.started[0][4]["HOME"] == "/h"


def test_on_failure_restarts_until_success():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 3), (1, 3), (1, 0)], "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker("OnFailure"), clean_pod_policy="Running")
    outcome = run.run()
    assert outcome.code == 0
    master = replica(outcome.state, "master-0")
    assert (master.phase, master.restarts) == ("Succeeded", 2)
    assert [s[0] for s in procs.started] == ["master-0", "worker-0", "master-0", "master-0"]
    assert replica(outcome.state, "worker-0").phase == "Deleted" and procs.stopped == ["worker-0"]
    assert outcome.state.restarting_since == "T2"  # the latest restart


def test_backoff_limit_two_means_three_tries_then_failed():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 1)] * 5, "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker("OnFailure"), backoff_limit=2, clean_pod_policy="Running")
    outcome = run.run()
    assert (outcome.code, outcome.state.reason) == (1, "BackoffLimitExceeded")
    assert "reached the specified backoff limit (2)" in outcome.state.message
    assert [s[0] for s in procs.started].count("master-0") == 3
    assert replica(outcome.state, "worker-0").phase == "Failed"  # a failed job stops everything


@pytest.mark.parametrize("code,starts,final", [(137, 3, 137), (1, 1, 1)])
def test_exit_code_policy_retries_only_128_and_above(code, starts, final):
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, code)] * 5, "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker("ExitCode"), backoff_limit=2, clean_pod_policy="Running")
    outcome = run.run()
    assert outcome.code == final and [s[0] for s in procs.started].count("master-0") == starts


def test_always_restarts_a_worker_that_succeeds_but_not_the_decider():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(5, 0)], "worker-0": [(2, 0), (2, 0), (FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker("Always", "Always"), clean_pod_policy="All")
    outcome = run.run()
    assert outcome.code == 0
    assert [s[0] for s in procs.started] == ["master-0", "worker-0", "worker-0", "worker-0"]
    assert run.failures == 0  # restarts after success do not count against backoffLimit


def test_a_failure_under_never_fails_the_job_and_clean_pod_policy_running_stops_the_others():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(FOREVER, 0)], "worker-0": [(1, 5)]})
    run, _ = execution(clock, procs, master_worker(), clean_pod_policy="Running")
    outcome = run.run()
    assert (outcome.code, outcome.state.outcome) == (5, "Failed")
    assert "replica worker-0 exited with code 5" in outcome.state.message
    assert procs.stopped == ["master-0"] and replica(outcome.state, "master-0").phase == "Failed"


def test_the_deadline_fires_on_the_injected_clock_and_stops_everything():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(FOREVER, 0)], "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker(), deadline=10)
    outcome = run.run()
    assert (outcome.code, outcome.how, outcome.state.reason) == (EXIT_DEADLINE, "deadline", "DeadlineExceeded")
    assert 10 <= clock.t < 10.1
    assert "has run longer than the deadline of 10 s" in outcome.state.message
    assert sorted(procs.stopped) == ["master-0", "worker-0"]


def test_clean_pod_policy_none_lets_the_others_finish_after_success():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 0)], "worker-0": [(4, 0)]})
    run, _ = execution(clock, procs, master_worker(), clean_pod_policy="None")
    outcome = run.run()
    assert outcome.code == 0 and clock.t >= 4 and procs.stopped == []
    assert replica(outcome.state, "worker-0").phase == "Succeeded"


def test_clean_pod_policy_none_lets_the_others_finish_after_a_failure_too():
    """As the operators: a failed job with cleanPodPolicy None deletes no pod (a master that failed its backoff
    limit leaves its workers running to their end)."""
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 3)], "worker-0": [(4, 0)]})
    run, _ = execution(clock, procs, master_worker(), clean_pod_policy="None")
    outcome = run.run()
    assert outcome.code == 3 and outcome.state.outcome == "Failed" and clock.t >= 4 and procs.stopped == []
    assert replica(outcome.state, "worker-0").phase == "Succeeded"


def test_clean_pod_policy_none_still_ends_at_the_deadline():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 0)], "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker(), clean_pod_policy="None", deadline=5)
    outcome = run.run()
    assert outcome.code == 0 and 5 <= clock.t < 5.1 and procs.stopped == ["worker-0"]
    assert replica(outcome.state, "worker-0").phase == "Deleted"


def test_a_stop_request_stops_everything_with_128_plus_the_signal():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(FOREVER, 0)], "worker-0": [(FOREVER, 0)]})
    run, _ = execution(clock, procs, master_worker())
    clock.at[2.0] = lambda: run.interrupt(15)
    outcome = run.run()
    assert (outcome.code, outcome.how) == (143, "signal")
    assert outcome.state.message == "interrupted by signal 15" and sorted(procs.stopped) == ["master-0", "worker-0"]


class Marker:
    def __init__(self, clock, at, code):
        self.clock, self.at, self.code, self.closed = clock, at, code, False

    def check(self):
        return self.code if self.clock.t >= self.at else None

    def close(self):
        self.closed = True


def test_a_monitor_ends_the_job_with_its_code():
    clock = Clock()
    procs = Processes(clock, {"worker-0": [(FOREVER, 0)]})
    made = []

    def monitor(env):
        made.append(Marker(clock, 3, 3))
        assert env["ROLE"] == "worker"  # made with the replica's own environment
        return made[-1]

    run, _ = execution(clock, procs, [ReplicaSpec(plan("worker"), monitor=monitor)])
    outcome = run.run()
    assert (outcome.code, outcome.how, outcome.stopped_by) == (3, "monitor", ("worker", 0))
    assert procs.stopped == ["worker-0"] and made[0].closed


@pytest.mark.parametrize("mode,why", [("pause", "runMode.pause is enabled"), ("suspend", "runPolicy.suspend is true")])
def test_a_held_job_starts_nothing(mode, why):
    clock = Clock()
    procs = Processes(clock, {})
    run, states = execution(clock, procs, [ReplicaSpec(plan("master", mode=mode, argv=()))])
    outcome = run.run()
    assert (outcome.code, outcome.how, outcome.state.held) == (EXIT_HELD, "held", why)
    assert procs.started == [] and states[-1].held == why
    clock.at[1.0] = lambda: run.interrupt(15)
    assert run.idle() == 143  # a pod waits until it is stopped


def test_a_command_that_cannot_start_fails_the_job_with_127():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(FOREVER, 0)], "worker-0": []}, fail_start={"worker-0"})
    logged = []
    run, _ = execution(clock, procs, master_worker())
    run.log = lambda p, message: logged.append((p.name, message))
    outcome = run.run()
    assert (outcome.code, outcome.how) == (EXIT_NOT_STARTED, "not-started")
    assert logged == [("worker-0", "cannot start cmd: No such file or directory")]
    assert procs.stopped == ["master-0"] and replica(outcome.state, "worker-0").exit_code == 127


def test_a_replica_with_no_command_is_not_started_and_named():
    clock = Clock()
    procs = Processes(clock, {})
    run, _ = execution(clock, procs, [ReplicaSpec(plan("master", argv=()))])
    outcome = run.run()
    assert outcome.code == EXIT_NOT_STARTED
    assert outcome.state.message == "replica master-0 could not be started: it has no command"


def test_working_dir_and_root_env_reach_the_process(tmp_path):
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 0)]})
    spec = ReplicaSpec(plan("master", working_dir=str(tmp_path), root_env=(("OMPI_ALLOW_RUN_AS_ROOT", "1"),)))
    run, _ = execution(clock, procs, [spec])
    run.is_root = True
    assert run.run().code == 0
    name, _, argv, cwd, env = procs.started[0]
    assert (cwd, env["OMPI_ALLOW_RUN_AS_ROOT"]) == (str(tmp_path), "1")


def test_the_inherited_environment_is_copied_never_changed():
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 0)]})
    environ = {"HOME": "/h", "PATH": "/bin"}
    spec = ReplicaSpec(plan("master", root_env=(("OMPI_ALLOW_RUN_AS_ROOT", "1"),)))
    run = Execution([spec], procs, JobPolicy(name="n", kind="K"), environ, is_root=True, clock=clock,
                    sleep=clock.sleep, now=clock.now)
    assert run.run().code == 0
    assert environ == {"HOME": "/h", "PATH": "/bin"}
    started = procs.started[0][4]
    assert started["OMPI_ALLOW_RUN_AS_ROOT"] == "1" and started["PATH"].endswith(":/bin")


def test_exits_seen_together_with_the_deciding_one_are_all_recorded():
    """The master and a worker end in the same poll: the job succeeds and the worker is counted, not left Running."""
    clock = Clock()
    procs = Processes(clock, {"master-0": [(1, 0)], "worker-0": [(1, 0)], "worker-1": [(1, 3)]})
    specs = master_worker() + [ReplicaSpec(plan("worker", 1), "Never", decides=False)]
    run, _ = execution(clock, procs, specs, clean_pod_policy="None")
    outcome = run.run()
    assert outcome.code == 0
    assert [(r.role, r.index, r.phase, r.exit_code) for r in outcome.state.replicas] == [
        ("master", 0, "Succeeded", 0), ("worker", 0, "Succeeded", 0), ("worker", 1, "Failed", 3)]


def test_ordered_steps_start_when_the_steps_before_them_hold():
    """A JobSet's dependsOn: the initializer completes before the nodes start; a step after `Ready` starts once
    every replica of the one before runs."""
    clock = Clock()
    procs = Processes(clock, {"init-0": [(3, 0)], "node-0": [(2, 0)], "node-1": [(2, 0)], "watch-0": [(1, 0)]})
    specs = [ReplicaSpec(plan("init")), ReplicaSpec(plan("node", 0), after=(("init", "Complete"),)),
             ReplicaSpec(plan("node", 1), after=(("init", "Complete"),)),
             ReplicaSpec(plan("watch"), after=(("node", "Ready"),))]
    run, states = execution(clock, procs, specs, backoff_limit=0)
    outcome = run.run()
    assert outcome.code == 0 and outcome.how == "exited"
    starts = {name: t for name, t, *_ in procs.started}
    assert starts["init-0"] == 0
    assert 3 <= starts["node-0"] == starts["node-1"] < 4  # at the first turn after init-0 succeeded
    assert starts["watch-0"] == starts["node-1"]  # both nodes running: Ready
    # while the initializer ran, the nodes were Pending, never started
    during = [s for s in states if any(r.role == "init" and r.phase == "Running" for r in s.replicas)]
    assert during and all(r.phase == "Pending" for s in during for r in s.replicas if r.role == "node")


def test_a_failed_step_fails_the_job_and_the_next_never_starts():
    clock = Clock()
    procs = Processes(clock, {"init-0": [(1, 2)], "node-0": [(1, 0)]})
    specs = [ReplicaSpec(plan("init")), ReplicaSpec(plan("node"), after=(("init", "Complete"),))]
    run, states = execution(clock, procs, specs, backoff_limit=0)
    outcome = run.run()
    assert outcome.code == 2
    assert [name for name, *_ in procs.started] == ["init-0"]
    assert {(r.role, r.phase) for r in outcome.state.replicas} == {("init", "Failed"), ("node", "Pending")}

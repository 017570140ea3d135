"""`ringrun run`: examples and seeds to Succeeded, restart policies, backoffLimit, deadline, signals, no leftovers.

The PyTorchJobs here run plain `python -c` replicas that never import torch; ringrun checks before it starts a
PyTorch replica that its Python can find torch, so they run with a stand-in `torch` package on PYTHONPATH (found by
that check, never imported) and need no torch installed.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import specs
from conftest import FIXTURES, ROOT, children_of, run_cli

PY = sys.executable
RINGRUN = os.path.join(os.path.dirname(PY), "ringrun")


@pytest.fixture(scope="module")
def environ(tmp_path_factory):
    """This process's environment with the stand-in torch first on PYTHONPATH."""
    standin = tmp_path_factory.mktemp("standin")
    (standin / "torch").mkdir()
    (standin / "torch" / "__init__.py").write_text("raise ImportError('the test stand-in for torch is not torch')\n")
    path = os.pathsep.join(p for p in (str(standin), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path)


def job_file(tmp_path, obj, name="job.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return str(path)


def python_job(master, worker=None, workers=1, master_policy="Never", worker_policy="Never", **run_policy):
    """A PyTorchJob whose replicas run `python -c CODE` (no framework needed: only the env is used)."""
    obj = specs.pytorchjob(workers=workers)
    replicas = obj["spec"]["pytorchReplicaSpecs"]
    replicas["Master"]["template"]["spec"]["containers"][0]["command"] = [PY, "-c", master]
    replicas["Master"]["restartPolicy"] = master_policy
    replicas["Worker"]["template"]["spec"]["containers"][0]["command"] = [PY, "-c", worker or "pass"]
    replicas["Worker"]["restartPolicy"] = worker_policy
    if run_policy:
        obj["spec"]["runPolicy"] = run_policy
    return obj


def run(args, environ=None):
    code, out, err = run_cli(["run"] + args, environ=dict(environ or os.environ))
    document = json.loads(out[out.index("\n{") + 1:] if not out.startswith("{") else out)
    return code, out, err, document


def condition(document, type_):
    return next((c for c in document["status"]["conditions"] if c["type"] == type_), None)


def test_main_example_succeeds(tmp_path):
    code, out, err, doc = run([str(ROOT / "examples" / "mpijob-allreduce.yaml"), "--status", str(tmp_path / "s.json")])
    assert code == 0, err
    assert out.count("ring OK, recursive_doubling OK") == 4  # 2 workers x slotsPerWorker 2
    assert all(line.startswith("[launcher-0] ") for line in out.splitlines() if "rank " in line)
    assert condition(doc, "Succeeded")["reason"] == "MPIJobSucceeded"
    assert condition(doc, "Running")["status"] == "False"
    assert doc["status"]["replicaStatuses"] == {"Launcher": {"succeeded": 1}, "Worker": {}}
    assert set(doc["status"]) == {"startTime", "completionTime", "conditions", "replicaStatuses"}
    assert json.loads((tmp_path / "s.json").read_text()) == doc


def test_tensorstack_example_succeeds():
    code, out, err, doc = run([str(ROOT / "examples" / "tensorstack-mpijob.yaml")])
    assert code == 0, err
    assert out.count("ring OK") == 3
    status = doc["status"]
    assert status["phase"] == "Succeeded"
    assert status["aggregate"]["succeeded"] == 1
    assert status["tasks"][0]["replicas"][0]["containers"] == [{"containerPhase": "Terminated", "exitCode": 0}]
    assert [c["type"] for c in status["conditions"]] == ["Initialized", "Running", "Completed"]


@pytest.mark.parametrize("seed", ["seed-000-request.json", "seed-002-request.json"])
def test_seed_mpijob_runs_with_set(seed):
    command = "mpirun python3 -m ringrun.kernels.check --length 1000"
    code, out, err, doc = run([str(FIXTURES / seed), "--set", f"Launcher.args=['-c', '{command}']"])
    assert code == 0, err
    assert out.count("ring OK") == 2 and condition(doc, "Succeeded") is not None


def test_seed_pytorchjob_runs_with_set(environ):
    check = ("import os; e = os.environ; assert e['MASTER_ADDR'] == '127.0.0.1', e['MASTER_ADDR']; "
             "print(e['RANK'], e['WORLD_SIZE'], e['MASTER_PORT'])")
    code, out, err, doc = run([str(FIXTURES / "seed-003-request.json"),
                               "--set", f"Master.command={json.dumps([PY, '-c', check])}", "--set", "Master.args=[]",
                               "--set", f"Worker.command={json.dumps([PY, '-c', check])}", "--set", "Worker.args=[]"], environ)
    assert code == 0, err
    # the job's own rendezvous port, not the spec's 23456 (another job on this machine may use that)
    port = next(line.split()[-1] for line in out.splitlines() if line.startswith("[master-0] 0 2 "))
    assert port != "23456" and f"[master-0] 0 2 {port}" in out and f"[worker-0] 1 2 {port}" in out
    assert doc["status"]["replicaStatuses"]["Master"] == {"succeeded": 1}


def test_seed_mxjob_runs_with_set():
    check = ("import json, os; e = os.environ; c = json.loads(e['MX_CONFIG']); "
             "assert e['DMLC_PS_ROOT_URI'] == '127.0.0.1'; assert c['cluster']['server'][0]['url'] == '127.0.0.1'; "
             "print(e['DMLC_ROLE'], c['task']['index'])")
    sets = []
    for role in ("Scheduler", "Server", "Worker"):
        sets += ["--set", f"{role}.args=['-c', {json.dumps(PY + ' -c ' + json.dumps(check))}]"]
    code, out, err, doc = run([str(FIXTURES / "seed-001-request.json")] + sets)
    assert code == 0, err
    assert "[scheduler-0] scheduler 0" in out and "[worker-0] worker 0" in out
    assert condition(doc, "Succeeded")["reason"] == "MXJobSucceeded"


def test_on_failure_restarts_and_succeeds(tmp_path, environ):
    marker = tmp_path / "tried"
    code_text = (f"import os, sys; p = {str(marker)!r}\n"
                 "if not os.path.exists(p):\n    open(p, 'w').close(); sys.exit(3)\nprint('second try')")
    code, out, err, doc = run([job_file(tmp_path, python_job(code_text, master_policy="OnFailure"))], environ)
    assert code == 0, err
    assert "[master-0] second try" in out
    assert condition(doc, "Succeeded") is not None


def counting(path, exit_code):
    return f"open({str(path)!r}, 'a').write('x'); raise SystemExit({exit_code})"


def test_backoff_limit_two_means_three_tries(tmp_path, environ):
    tries = tmp_path / "tries"
    obj = python_job(counting(tries, 1), master_policy="OnFailure", backoffLimit=2)
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert (code, tries.read_text()) == (1, "xxx")
    assert condition(doc, "Failed")["reason"] == "BackoffLimitExceeded"
    assert doc["status"]["replicaStatuses"]["Master"] == {"failed": 1}


@pytest.mark.parametrize("exit_code,tries,final", [(137, "xxx", 137), (1, "x", 1)])
def test_exit_code_policy_retries_only_128_and_above(tmp_path, exit_code, tries, final, environ):
    count = tmp_path / "tries"
    obj = python_job(counting(count, exit_code), master_policy="ExitCode", backoffLimit=2)
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert (code, count.read_text()) == (final, tries)
    assert condition(doc, "Failed") is not None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_writer(path):
    return f"import os, time; open({str(path)!r} + str(os.getpid()), 'w').close(); time.sleep(60)"


def test_active_deadline_stops_everything(tmp_path, environ):
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2, activeDeadlineSeconds=3)
    start = time.monotonic()
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert time.monotonic() - start >= 3  # not before the deadline (the fake-clock unit tests pin the rest)
    assert code == 124
    assert condition(doc, "Failed")["reason"] == "DeadlineExceeded"
    pids = [int(p.name[4:]) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 3 and not any(alive(p) for p in pids)


def test_sigint_leaves_no_replica(tmp_path, environ):
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2)
    proc = subprocess.Popen([RINGRUN, "run", job_file(tmp_path, obj), "--grace", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ)
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("pid-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    status = json.loads(out[out.index("{"):])["status"]
    assert "interrupted by signal 2" in condition({"status": status}, "Failed")["message"]
    pids = [int(p.name[4:]) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 3 and not any(alive(p) for p in pids)


def test_fifty_runs_leave_nothing_behind(tmp_path, environ):
    """Every run's private directory is removed and no replica outlives its run: counted for this test's own job
    (a name no other run uses) and this process's own children, not host-wide."""
    import tempfile
    import uuid

    # every replica leaves a background `sleep` behind when it exits: its keeper must end it
    leave = (f"import os, subprocess; p = subprocess.Popen(['sleep', '60']); "
             f"open({str(tmp_path)!r} + '/left-' + str(p.pid), 'w').close()")
    obj = python_job(leave, leave, workers=2)
    obj["metadata"]["name"] = name = f"fifty-{uuid.uuid4().hex[:8]}"
    path = job_file(tmp_path, obj)
    for _ in range(50):
        code, out, err, doc = run([path], environ)
        assert code == 0, err
    left = [int(p.name[5:]) for p in tmp_path.glob("left-*")]
    assert len(left) == 150 and not any(alive(p) for p in left)
    assert [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"ringrun-{name}-")] == []
    assert children_of(os.getpid()) == []


def test_logs_are_prefixed_split_and_written_per_replica(tmp_path, environ):
    obj = python_job("import sys; print('to out'); print('to err', file=sys.stderr)")
    code, out, err, doc = run([job_file(tmp_path, obj), "--log-dir", str(tmp_path / "logs")], environ)
    assert code == 0
    assert "[master-0] to out" in out and "[master-0] to err" in err and "to err" not in out
    assert (tmp_path / "logs" / "master-0.stdout.log").read_text() == "to out\n"
    assert (tmp_path / "logs" / "master-0.stderr.log").read_text() == "to err\n"
    assert (tmp_path / "logs" / "worker-0.stdout.log").read_text() == ""


def test_failed_worker_with_never_fails_the_job_and_stops_the_master(tmp_path, environ):
    obj = python_job("import time; time.sleep(60)", "raise SystemExit(5)")
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert code == 5
    assert "replica worker-0 exited with code 5" in condition(doc, "Failed")["message"]


def test_a_command_that_does_not_exist(tmp_path, environ):
    obj = python_job("pass")
    obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"] = ["/no/such/binary"]
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert code == 127 and "cannot start /no/such/binary" in err


def test_a_replica_without_a_command(tmp_path, environ):
    obj = specs.pytorchjob()
    del obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    code, out, err, doc = run([job_file(tmp_path, obj)], environ)
    assert code == 127 and "set one with --set master.command=..." in err
    assert "replica master-0 could not be started: it has no command" in condition(doc, "Failed")["message"]


@pytest.mark.parametrize("obj,held,check", [
    (specs.t9kjob(runMode={"pause": {"enable": True}}), "runMode.pause is enabled",
     lambda status: status["phase"] == "Paused"),
    (specs.mpijob(runPolicy={"suspend": True}), "runPolicy.suspend is true",
     lambda status: [c["type"] for c in status["conditions"]] == ["Created", "Suspended"]
     and status["conditions"][1]["reason"] == "MPIJobSuspended" and "startTime" not in status),
])
def test_a_suspended_or_paused_job_starts_nothing_and_says_so(tmp_path, obj, held, check):
    marker = tmp_path / "started"
    obj = json.loads(json.dumps(obj))
    touch = [PY, "-c", f"open({str(marker)!r}, 'w')"]
    if "mpiReplicaSpecs" in obj["spec"]:
        obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = touch
    else:  # TensorStack: ringrun's mpirun would run worker.cmd on every rank
        obj["spec"]["worker"]["cmd"] = touch
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 7, err
    assert f"is not started: {held} (exit code 7)" in err
    assert check(doc["status"]), doc["status"]
    assert not marker.exists()


def test_working_dir_is_where_the_replica_runs(tmp_path):
    obj = specs.mpijob()
    launcher = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    launcher["command"] = [PY, "-c", "import os; print('cwd', os.getcwd())"]
    launcher["workingDir"] = str(tmp_path)
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 0, err
    assert f"[launcher-0] cwd {tmp_path}" in out
    launcher["workingDir"] = str(tmp_path / "missing")
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 127 and f"workingDir {str(tmp_path / 'missing')!r}: no such directory" in err


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_launch_four_ranks_on_two_cores(user):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root (this test runs as root in `make test`)")
    argv = [RINGRUN, "launch", "-np", "4", "--", PY, "-c",
            "from mpi4py import MPI; print('hello from', MPI.COMM_WORLD.rank)"]
    if user == "nobody":
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        probe = subprocess.run(as_nobody + [PY, "-c", "import ringrun.launcher"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"{PY} is not usable by nobody (a venv on an interpreter under /root): build it with "
                        "`make test`, which uses /usr/bin/python3.11")
        argv = as_nobody + argv
    env = dict(os.environ, HOME="/tmp")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd="/tmp")
    assert result.returncode == 0, result.stderr
    lines = sorted(line for line in result.stdout.splitlines() if "hello from" in line)
    assert lines == [f"[1,{r}]<stdout>: hello from {r}" for r in range(4)]


@pytest.mark.parametrize("ranks", [1, 2])
def test_launch_shares_the_cores_among_the_ranks_threads_unless_told(ranks):
    cores = len(os.sched_getaffinity(0))
    show = "import os; print('THREADS', os.environ.get('OMP_NUM_THREADS'), os.environ.get('MKL_NUM_THREADS'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run([RINGRUN, "launch", "-np", str(ranks), "--", PY, "-c", show], capture_output=True,
                            text=True, timeout=120, env=env)
    share = max(1, cores // ranks)
    assert result.returncode == 0, result.stderr
    assert sorted(line.split(": ", 1)[1] for line in result.stdout.splitlines() if "THREADS" in line) == \
        [f"THREADS {share} {share}"] * ranks
    result = subprocess.run([RINGRUN, "launch", "-np", str(ranks), "--", PY, "-c", show], capture_output=True,
                            text=True, timeout=120, env=dict(env, OMP_NUM_THREADS="7"))
    assert [line.split(": ", 1)[1] for line in result.stdout.splitlines() if "THREADS" in line] == \
        ["THREADS 7 None"] * ranks  # the user chose: nothing added


def test_launch_passes_the_exit_code_on():
    result = subprocess.run([RINGRUN, "launch", "-np", "2", "--", PY, "-c", "raise SystemExit(7)"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 7


def test_fields_without_effect_in_a_local_run_are_named(tmp_path):
    obj = specs.mpijob(launcherCreationPolicy="WaitForWorkersReady",
                       runPolicy={"ttlSecondsAfterFinished": 60, "schedulingPolicy": {"minAvailable": 3}})
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = [PY, "-c", "pass"]
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 0, err
    warned = [line.split(" has no effect")[0] for line in err.splitlines() if "has no effect" in line]
    assert warned == ["ringrun run: warning: spec.runPolicy.ttlSecondsAfterFinished",
                      "ringrun run: warning: spec.runPolicy.schedulingPolicy",
                      "ringrun run: warning: spec.launcherCreationPolicy"]


def wait_for_pids(folder, count, proc, timeout=60):
    """The PIDs written by `count` replicas (files `pid-N`), waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("pid-*"))) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return [int(p.name[4:]) for p in folder.glob("pid-*")]


def gone_within(pids, seconds=30):
    """Whether every pid has exited within `seconds` (a generous bound, polled)."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


@pytest.mark.parametrize("sig,code", [(signal.SIGHUP, 129), (signal.SIGQUIT, 131), (signal.SIGTERM, 143)])
def test_hup_and_quit_stop_a_run_like_term(tmp_path, environ, sig, code):
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2)
    proc = subprocess.Popen([RINGRUN, "run", job_file(tmp_path, obj), "--grace", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ)
    pids = wait_for_pids(tmp_path, 3, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted by signal {int(sig)}" in out
    assert len(pids) == 3 and gone_within(pids, 1)  # stopped before `run` returned


def test_sigkill_of_ringrun_run_still_ends_every_replica(tmp_path, environ):
    """Nothing can run in ringrun when it is SIGKILLed: each replica's keeper gets its parent-death signal and stops
    the replica's tree."""
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2)
    proc = subprocess.Popen([RINGRUN, "run", job_file(tmp_path, obj), "--grace", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ)
    pids = wait_for_pids(tmp_path, 3, proc)
    assert len(pids) == 3
    proc.kill()
    proc.communicate(timeout=60)
    assert gone_within(pids), [p for p in pids if alive(p)]


def test_a_detached_grandchild_is_reaped_with_its_job(tmp_path):
    """A replica that starts a `setsid` daemon and exits: the daemon (its own session and group) ends with the job."""
    daemon = tmp_path / "daemon-pid"
    script = tmp_path / "detach.py"
    script.write_text(
        "import os, subprocess, sys, time\n"
        f"daemon = {str(daemon)!r}\n"
        "if sys.argv[1:] == ['daemon']:\n"
        "    open(daemon, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "else:\n"
        "    subprocess.Popen(['setsid', sys.executable, __file__, 'daemon'])\n"
        "    for _ in range(400):\n"
        "        if os.path.exists(daemon):\n"
        "            break\n"
        "        time.sleep(0.05)\n")
    code_text = f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')"
    obj = specs.mpijob()
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = [PY, "-c", code_text]
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 0, err
    pid = int(daemon.read_text())
    assert gone_within([pid]), f"the detached {pid} outlived its job"


def test_launch_stops_mpirun_and_its_ranks_on_sighup(tmp_path):
    argv = [RINGRUN, "launch", "-np", "2", "--grace", "2", "--", PY, "-c", pid_writer(tmp_path / "pid-")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = wait_for_pids(tmp_path, 2, proc)
    assert len(pids) == 2
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=60)
    assert proc.returncode == 129 and gone_within(pids, 1)


def test_a_status_file_that_cannot_be_written_stops_the_job_cleanly(tmp_path, environ):
    status = tmp_path / "out" / "status.json"
    status.parent.mkdir()
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=1)
    proc = subprocess.Popen([RINGRUN, "run", job_file(tmp_path, obj), "--status", str(status), "--grace", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    pids = wait_for_pids(tmp_path, 2, proc)
    import shutil

    shutil.rmtree(status.parent)  # the next state change cannot be written
    status.parent.write_text("")  # nor can the folder come back
    os.kill(pids[0], signal.SIGKILL)  # a replica fails: the status changes
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert "ringrun run: cannot write the status to" in err and "Traceback" not in err
    assert gone_within(pids, 1)


def test_clean_pod_policy_none_lets_the_others_finish_a_failed_job_and_every_step_is_said(tmp_path, environ):
    """A master that fails past its backoffLimit with cleanPodPolicy None: the worker runs to its end (as the
    operators leave its pod), and `run` says each start, restart (attempt n of m, with the code) and end."""
    obj = python_job("import sys; sys.exit(3)", "import time; time.sleep(2); print('worker done')",
                     master_policy="OnFailure", cleanPodPolicy="None", backoffLimit=1)
    code, out, err, document = run([job_file(tmp_path, obj)], environ)
    assert code == 3 and condition(document, "Failed")["reason"] == "BackoffLimitExceeded"
    assert "[worker-0] worker done" in out
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert lines.count(f"[master-0] running {PY} -c import sys; sys.exit(3)") == 2  # the start, the restart
    assert "[master-0] exited with code 3: restarting it (restartPolicy OnFailure, attempt 2 of 2)" in lines
    assert "[master-0] exited with code 3: not restarted, the job has reached its backoffLimit (1)" in lines
    assert lines.index("[worker-0] still running: cleanPodPolicy None lets it finish") < \
        lines.index("[worker-0] exited with code 0")


def test_clean_pod_policy_running_stops_the_others_of_a_failed_job_and_says_so(tmp_path, environ):
    obj = python_job("import sys; sys.exit(3)", "import time; time.sleep(60)", cleanPodPolicy="Running")
    code, out, err, document = run([job_file(tmp_path, obj)], environ)
    assert code == 3
    assert "[worker-0] stopped (the job failed, cleanPodPolicy Running): exit code 143" in err.splitlines()

"""`ringrun run`: examples and seeds to Succeeded, restart policies, backoffLimit, deadline, signals, no leftovers."""

import importlib.util
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
# ringrun refuses to start a PyTorch role whose Python cannot import torch, even a `python -c` that never uses it
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="PyTorchJob replicas need torch where they run: install the `torch` extra "
                                        "(make test does)")


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


def run(args):
    code, out, err = run_cli(["run"] + args, environ=dict(os.environ))
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


@needs_torch
def test_seed_pytorchjob_runs_with_set():
    check = ("import os; e = os.environ; assert e['MASTER_ADDR'] == '127.0.0.1', e['MASTER_ADDR']; "
             "print(e['RANK'], e['WORLD_SIZE'], e['MASTER_PORT'])")
    code, out, err, doc = run([str(FIXTURES / "seed-003-request.json"),
                               "--set", f"Master.command={json.dumps([PY, '-c', check])}", "--set", "Master.args=[]",
                               "--set", f"Worker.command={json.dumps([PY, '-c', check])}", "--set", "Worker.args=[]"])
    assert code == 0, err
    assert "[master-0] 0 2 23456" in out and "[worker-0] 1 2 23456" in out
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


@needs_torch
def test_on_failure_restarts_and_succeeds(tmp_path):
    marker = tmp_path / "tried"
    code_text = (f"import os, sys; p = {str(marker)!r}\n"
                 "if not os.path.exists(p):\n    open(p, 'w').close(); sys.exit(3)\nprint('second try')")
    code, out, err, doc = run([job_file(tmp_path, python_job(code_text, master_policy="OnFailure"))])
    assert code == 0, err
    assert "[master-0] second try" in out
    assert condition(doc, "Succeeded") is not None


def counting(path, exit_code):
    return f"open({str(path)!r}, 'a').write('x'); raise SystemExit({exit_code})"


@needs_torch
def test_backoff_limit_two_means_three_tries(tmp_path):
    tries = tmp_path / "tries"
    obj = python_job(counting(tries, 1), master_policy="OnFailure", backoffLimit=2)
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert (code, tries.read_text()) == (1, "xxx")
    assert condition(doc, "Failed")["reason"] == "BackoffLimitExceeded"
    assert doc["status"]["replicaStatuses"]["Master"] == {"failed": 1}


@pytest.mark.parametrize("exit_code,tries,final", [(137, "xxx", 137), (1, "x", 1)])
@needs_torch
def test_exit_code_policy_retries_only_128_and_above(tmp_path, exit_code, tries, final):
    count = tmp_path / "tries"
    obj = python_job(counting(count, exit_code), master_policy="ExitCode", backoffLimit=2)
    code, out, err, doc = run([job_file(tmp_path, obj)])
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


@needs_torch
def test_active_deadline_stops_everything(tmp_path):
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2, activeDeadlineSeconds=3)
    start = time.monotonic()
    code, out, err, doc = run([job_file(tmp_path, obj)])
    elapsed = time.monotonic() - start
    assert code == 124
    assert condition(doc, "Failed")["reason"] == "DeadlineExceeded"
    assert 3 <= elapsed < 5, elapsed
    pids = [int(p.name[4:]) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 3 and not any(alive(p) for p in pids)


@needs_torch
def test_sigint_leaves_no_replica(tmp_path):
    obj = python_job(pid_writer(tmp_path / "pid-"), pid_writer(tmp_path / "pid-"), workers=2)
    proc = subprocess.Popen([RINGRUN, "run", job_file(tmp_path, obj), "--grace", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
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


def listening_sockets():
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            count += sum(1 for line in open(table).readlines()[1:] if line.split()[3] == "0A")
    return count


@needs_torch
def test_fifty_runs_leave_nothing_behind(tmp_path):
    import tempfile

    path = job_file(tmp_path, python_job("print('m')", "print('w')", workers=2))
    temp = tempfile.gettempdir()
    before = (sorted(p for p in os.listdir(temp) if p.startswith("ringrun-")), listening_sockets())
    for _ in range(50):
        code, out, err, doc = run([path])
        assert code == 0, err
    assert (sorted(p for p in os.listdir(temp) if p.startswith("ringrun-")), listening_sockets()) == before
    assert children_of(os.getpid()) == []


@needs_torch
def test_logs_are_prefixed_split_and_written_per_replica(tmp_path):
    obj = python_job("import sys; print('to out'); print('to err', file=sys.stderr)")
    code, out, err, doc = run([job_file(tmp_path, obj), "--log-dir", str(tmp_path / "logs")])
    assert code == 0
    assert "[master-0] to out" in out and "[master-0] to err" in err and "to err" not in out
    assert (tmp_path / "logs" / "master-0.stdout.log").read_text() == "to out\n"
    assert (tmp_path / "logs" / "master-0.stderr.log").read_text() == "to err\n"
    assert (tmp_path / "logs" / "worker-0.stdout.log").read_text() == ""


@needs_torch
def test_failed_worker_with_never_fails_the_job_and_stops_the_master(tmp_path):
    obj = python_job("import time; time.sleep(60)", "raise SystemExit(5)")
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 5
    assert "replica worker-0 exited with code 5" in condition(doc, "Failed")["message"]


@needs_torch
def test_a_command_that_does_not_exist(tmp_path):
    obj = python_job("pass")
    obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"] = ["/no/such/binary"]
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 127 and "cannot start /no/such/binary" in err


@needs_torch
@pytest.mark.parametrize("obj,text", [
    (specs.t9kjob(runMode={"pause": {"enable": True}}), "nothing to run: runMode.pause is enabled"),
    (specs.pytorchjob(), "set one with --set master.command=..."),
])
def test_a_replica_without_a_command(tmp_path, obj, text):
    obj = json.loads(json.dumps(obj))
    if obj["kind"] == "PyTorchJob":
        del obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    code, out, err, doc = run([job_file(tmp_path, obj)])
    assert code == 127 and text in err


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


def test_launch_passes_the_exit_code_on():
    result = subprocess.run([RINGRUN, "launch", "-np", "2", "--", PY, "-c", "raise SystemExit(7)"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 7

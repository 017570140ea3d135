"""Jobs on one machine never meet: two jobs of each kind at once (twice), each with its own rendezvous port and run
directory, each seeing only its own ranks; one log folder is written by one run at a time and starts anew."""

import json
import os
import subprocess
import sys

import pytest

import specs
from conftest import ROOT

RINGRUN = os.path.join(os.path.dirname(sys.executable), "ringrun")
MXNET_RINGRUN = ROOT / ".venv-mxnet" / "bin" / "ringrun"


def start(ringrun, example, sets):
    argv = [str(ringrun), "run", f"examples/{example}"] + [a for s in sets for a in ("--set", s)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def two_at_once(ringrun, example, first, second):
    procs = [start(ringrun, example, first), start(ringrun, example, second)]
    return [finish(p) for p in procs]


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_pytorchjobs_at_once_each_join_only_their_own_group(attempt):
    """Worlds of 3 and 4: had they met at one port, one master would gather the other's workers and a world size
    would be wrong (or both would hang until their deadline)."""
    (code_a, out_a, err_a), (code_b, out_b, err_b) = two_at_once(
        RINGRUN, "pytorchjob-gloo.yaml", ["metadata.name=gloo-a"], ["metadata.name=gloo-b", "Worker.replicas=3"])
    assert (code_a, code_b) == (0, 0), (err_a, err_b)
    for out, size in ((out_a, 3), (out_b, 4)):
        lines = sorted(line.split("] ", 1)[1] for line in out.splitlines() if "gloo allreduce" in line)
        assert lines == [f"rank {r}/{size} (RANK={r}): gloo allreduce OK" for r in range(size)], out


@pytest.mark.skipif(not MXNET_RINGRUN.exists(), reason=".venv-mxnet is missing: `make test` builds it")
@pytest.mark.parametrize("attempt", [1, 2])
def test_two_mxjobs_at_once_each_use_only_their_own_scheduler(attempt):
    (code_a, out_a, err_a), (code_b, out_b, err_b) = two_at_once(
        MXNET_RINGRUN, "mxjob-kvstore.yaml", ["metadata.name=mx-a"], ["metadata.name=mx-b", "Worker.replicas=3"])
    assert (code_a, code_b) == (0, 0), (err_a[-2000:], err_b[-2000:])
    for out, size in ((out_a, 2), (out_b, 3)):
        lines = sorted(line.split("] ", 1)[1] for line in out.splitlines() if "push/pull" in line)
        assert lines == [f"worker {w}/{size}: dist_sync push/pull OK" for w in range(size)], out


def test_two_mpijobs_at_once():
    (code_a, out_a, err_a), (code_b, out_b, err_b) = two_at_once(
        RINGRUN, "mpijob-allreduce.yaml", ["metadata.name=mpi-a"], ["metadata.name=mpi-b"])
    assert (code_a, code_b) == (0, 0), (err_a, err_b)
    assert out_a.count("ring OK") == 4 and out_b.count("ring OK") == 4


def test_a_log_folder_is_one_run_at_a_time_and_starts_anew(tmp_path):
    logs = tmp_path / "logs"
    obj = specs.mpijob()
    launcher = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    marker = tmp_path / "started"
    launcher["command"] = [sys.executable, "-c", f"import time; print('first'); open({str(marker)!r}, 'w').close(); "
                                                 "time.sleep(60)"]
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(obj))
    first = subprocess.Popen([RINGRUN, "run", str(spec), "--log-dir", str(logs), "--grace", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.monotonic() + 60
        while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), first.communicate()[1] if first.poll() is not None else "not started"
        second = subprocess.run([RINGRUN, "run", str(spec), "--log-dir", str(logs)], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2
        assert f"--log-dir: another ringrun run is writing its logs into {str(logs)!r}" in second.stderr
    finally:
        first.terminate()
        first.communicate(timeout=60)
    launcher["command"] = [sys.executable, "-c", "print('second')"]
    spec.write_text(json.dumps(obj))
    again = subprocess.run([RINGRUN, "run", str(spec), "--log-dir", str(logs)], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert (logs / "launcher-0.stdout.log").read_text() == "second\n"  # the earlier run's lines are gone

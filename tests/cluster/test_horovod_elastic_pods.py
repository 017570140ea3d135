"""Elastic Horovod across pods, as mpi-operator's published example runs it (`horovodrun --min-np 1 --max-np 3
--host-discovery-script /etc/mpi/discover_hosts.sh`), with no operator: ringrun's launcher keeps its own discovery
script listing the workers that are up, and gives horovodrun the workers' sshd port and key. A worker joins mid-run
and another is killed mid-run; training goes on through both and ends with exit code 0."""

import importlib.util
import re
import time

import pytest

from conftest import JOB, ROOT, MPICluster, flavour, mpijob, wait_for_text

pytestmark = pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                                reason="horovod is not installed: `make test` builds and installs it (make horovod)")


def sizes_in_order(log):
    """The world sizes the ranks reported, in order, each run of one size once."""
    seen = []
    for size in re.findall(r"EPOCH \d+ RANK \d+ SIZE (\d+)", log):
        if not seen or seen[-1] != int(size):
            seen.append(int(size))
    return seen


def test_a_worker_joins_and_one_is_killed_while_training_goes_on(tmp_path, secret):
    implementation, venv, env = flavour("openmpi5")
    command = [str(venv / "bin" / "horovodrun"), "-np", "2", "--min-np", "1", "--max-np", "3",
               "--host-discovery-script", "/etc/mpi/discover_hosts.sh",
               str(venv / "bin" / "python"), str(ROOT / "tests" / "local" / "horovod_elastic.py"),
               "--epochs", "2000", "--seconds", "0.2", "--until", str(tmp_path / "stop")]
    spec = mpijob(implementation, 1, 3, secret, command)
    with MPICluster(tmp_path, spec, venv, env, workers=3) as job:
        job.start(f"{JOB}-worker-0", "worker")
        job.start(f"{JOB}-worker-1", "worker")
        launcher = job.start_launcher()
        assert wait_for_text(launcher, "SIZE 2", timeout=120), job.logs()
        script = tmp_path / f"{JOB}-launcher.run" / "discover_hosts.sh"
        assert script.read_text() == ("#!/bin/sh\necho pi-worker-0.pi.default.svc:1\n"
                                      "echo pi-worker-1.pi.default.svc:1\n")
        job.start(f"{JOB}-worker-2", "worker")
        assert wait_for_text(launcher, "SIZE 3", timeout=120), job.logs()
        job.pod(f"{JOB}-worker-0").kill()
        deadline = time.monotonic() + 180
        while sizes_in_order(launcher.log()) != [2, 3, 2] and time.monotonic() < deadline:
            time.sleep(0.5)
        (tmp_path / "stop").touch()  # training has gone on with the two left: it may end
        code = launcher.wait(180)
        log = launcher.log()
        assert code == 0, job.logs()
        assert sizes_in_order(log) == [2, 3, 2], log
        assert sorted(re.findall(r"DONE (\d) (\d)", log)) == [("0", "2"), ("1", "2")], log
        assert script.read_text() == ("#!/bin/sh\necho pi-worker-1.pi.default.svc:1\n"
                                      "echo pi-worker-2.pi.default.svc:1\n")
        assert "/etc/mpi/discover_hosts.sh does not exist here: horovodrun uses ringrun's" in log
        assert "pi-worker-2.pi.default.svc joined" in log and "pi-worker-0.pi.default.svc left" in log

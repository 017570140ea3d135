"""Elastic Horovod across containers of ringrun:horovod (`make images`), as mpi-operator's published example runs it
(`horovodrun --min-np 1 --max-np 3 --host-discovery-script /etc/mpi/discover_hosts.sh` as the launcher's args), with
no operator: ringrun's launcher keeps its own discovery script listing the workers whose sshd answers, and gives
horovodrun the workers' sshd port and key. A worker joins mid-run and another is killed mid-run; training goes on
through both and ends with exit code 0."""

import os
import re
import time

import pytest

from conftest import JOB
from containers import IMAGE_PYTHON, missing_images
from test_mpijob_containers import MPIJobPods, spec, wait_for_text

SHARED = "/opt/ringrun-shared"  # a folder every pod mounts: the file that tells rank 0 to stop
LOCAL_TESTS = "/opt/ringrun-tests-local"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def image_built():
    if missing_images(["ringrun:horovod"]):
        pytest.fail("not built: ringrun:horovod (`make images` builds it)")


def sizes_in_order(log):
    """The world sizes the ranks reported, in order, each run of one size once."""
    seen = []
    for size in re.findall(r"EPOCH \d+ RANK \d+ SIZE (\d+)", log):
        if not seen or seen[-1] != int(size):
            seen.append(int(size))
    return seen


def test_a_worker_joins_and_one_is_killed_while_training_goes_on(tmp_path, secret):
    shared = tmp_path / "shared"
    shared.mkdir()
    command = ["horovodrun", "-np", "2", "--min-np", "1", "--max-np", "3",
               "--host-discovery-script", "/etc/mpi/discover_hosts.sh",
               IMAGE_PYTHON, f"{LOCAL_TESTS}/horovod_elastic.py", "--epochs", "2000", "--seconds", "0.2",
               "--until", f"{SHARED}/stop"]
    job = spec("OpenMPI", "ringrun:horovod", {}, 1, 3, command)
    mounts = [(str(shared), SHARED, "rw"), (os.path.join(ROOT, "tests", "local"), LOCAL_TESTS, "ro")]
    with MPIJobPods(tmp_path, job, secret, workers=3, operator=False, mounts=mounts) as pods:
        pods.start_workers([0, 1])
        launcher = pods.start_launcher()
        assert wait_for_text(launcher, "SIZE 2", timeout=180), pods.logs()
        script = f"/run/ringrun/{JOB}/discover_hosts.sh"
        assert launcher.read(script) == ("#!/bin/sh\necho pi-worker-0.pi.default.svc:1\n"
                                         "echo pi-worker-1.pi.default.svc:1\n")
        pods.start_workers([2])
        assert wait_for_text(launcher, "SIZE 3", timeout=180), pods.logs()
        pods.pod(f"{JOB}-worker-0").kill()
        deadline = time.monotonic() + 180
        while sizes_in_order(launcher.log()) != [2, 3, 2] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert launcher.read(script) == ("#!/bin/sh\necho pi-worker-1.pi.default.svc:1\n"
                                         "echo pi-worker-2.pi.default.svc:1\n")
        (shared / "stop").touch()  # training has gone on with the two left: it may end
        code = launcher.wait(180)
        log = launcher.log()
        assert code == 0, pods.logs()
        assert sizes_in_order(log) == [2, 3, 2], log
        assert sorted(re.findall(r"DONE (\d) (\d)", log)) == [("0", "2"), ("1", "2")], log
        assert "/etc/mpi/discover_hosts.sh does not exist here: horovodrun uses ringrun's" in log
        assert "pi-worker-2.pi.default.svc joined" in log and "pi-worker-0.pi.default.svc left" in log

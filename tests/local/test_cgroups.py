"""What is left of a replica whose keeper was killed is found and ended: through its cgroup, else its session."""

import os
import signal
import subprocess
import time

from ringrun.launcher import cgroups


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def test_a_session_is_swept_when_there_is_no_cgroup():
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                              start_new_session=True, text=True)
    try:
        last = int(leader.stdout.readline())
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(10)
        assert alive(last)
        assert cgroups.sweep(None, leader.pid) == 2
        deadline = time.monotonic() + 10
        while alive(last) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(last) and cgroups.session_members(leader.pid) == []
    finally:
        leader.stdout.close()


def test_no_cgroup_is_made_where_none_can_be(tmp_path):
    readonly = tmp_path / "cg"
    readonly.mkdir(mode=0o555)
    groups = cgroups.Groups(base=str(readonly))
    if os.geteuid() == 0:  # root may write anyway: a base that is not a folder stands in
        groups = cgroups.Groups(base=str(tmp_path / "missing"))
    assert groups.make("launcher-0") is None and not groups.usable


def test_empty_cgroups_left_by_killed_processes_are_removed_young_ones_kept(tmp_path):
    for name in ("ringrun-1-aa-1-launcher-0", "ringrun-1-bb-1-worker-0", "other"):
        (tmp_path / name).mkdir()
    old = time.time() - cgroups.STALE_SECONDS - 10
    os.utime(tmp_path / "ringrun-1-aa-1-launcher-0", (old, old))
    os.utime(tmp_path / "other", (old, old))
    cgroups._clear_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "ringrun-1-bb-1-worker-0"]

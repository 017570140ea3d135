"""The elastic Horovod launcher's discovery script (launcher/watch.py HostDiscovery) follows the workers: listed once
their sshd answers and an ssh session holds, unlisted when the session ends, never listed when logins fail, every
version written whole. The sshd probe is injected and `ssh` is a stand-in on PATH: nothing leaves this process's
machine, not even loopback."""

import os
import time

from ringrun.launcher.watch import HostDiscovery
from ringrun.runtime.plan import Endpoint

# `ssh ... HOST 'echo ready; exec cat'`: a session that lasts until its stdin closes, except for hosts named in
# $REFUSE, whose login fails
FAKE_SSH = """#!/bin/sh
for arg; do previous=$host; host=$arg; done
host=$previous
case " $REFUSE " in *" $host "*) exit 255 ;; esac
echo ready
exec cat
"""


def until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_workers_are_listed_while_they_are_up(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "REFUSE": "w-2"}
    up, logged = {"w-0"}, []

    def probe(endpoint):
        if endpoint.host not in up:
            raise OSError("connection refused")

    script = tmp_path / "discover_hosts.sh"
    endpoints = [Endpoint(f"w-{i}", 22) for i in range(3)]
    watch = HostDiscovery(endpoints, 2, str(script), "/dev/null", env, logged.append, probe=probe, interval=0.1)
    try:
        def listed():
            return script.read_text() if script.exists() else None

        assert until(lambda: listed() == "#!/bin/sh\necho w-0:2\n")
        assert os.stat(script).st_mode & 0o777 == 0o755
        up.update({"w-1", "w-2"})  # w-1 comes up; w-2's sshd answers but refuses the login
        assert until(lambda: listed() == "#!/bin/sh\necho w-0:2\necho w-1:2\n")
        assert until(lambda: any("w-2: its sshd answers but the ssh login failed (exit 255)" in m for m in logged))
        up.discard("w-0")
        watch._procs["w-0"].kill()  # the worker pod is gone: its session ends
        assert until(lambda: listed() == "#!/bin/sh\necho w-1:2\n")
        assert watch.check() is None  # a worker leaving never ends an elastic job
        assert len([m for m in logged if m.startswith("w-2:")]) == 1  # said once, not every second
        assert [m.split(": ", 1)[1] for m in logged if "discover_hosts.sh" in m] == [
            "w-0 joined; 1 worker(s) listed", "w-1 joined; 2 worker(s) listed", "w-0 left; 1 worker(s) listed"]
    finally:
        watch.close()
    sessions = list(watch._procs.values())
    assert sessions and all(proc.poll() is not None for proc in sessions)
    assert not any(thread.is_alive() for thread in watch._threads)

"""Open MPI 4's single-dash options rewritten for Open MPI 5's mpirun (launcher/mpirun.py), exactly where they are
mpirun's own options."""

import os

import pytest

from ringrun.launcher.mpirun import for_installed, for_launcher, is_open_mpi_5


@pytest.fixture
def path(tmp_path):
    tool = tmp_path / "mpirun"
    tool.write_text("#!/bin/sh\necho 'mpirun (Open MPI) 5.0.11'\n")
    tool.chmod(0o755)
    return {"PATH": str(tmp_path)}


def test_only_mpirun_s_own_options_before_the_program_are_rewritten(path):
    argv = ["mpirun", "-np", "2", "-bind-to", "none", "-map-by", "slot", "-x", "A=1", "-mca", "btl", "^openib",
            "-rank-by", "core", "python", "t.py", "-bind-to", "x"]
    out, warnings = for_installed(argv, path, is_5=lambda p, env=None: True)
    assert out == ("mpirun", "-np", "2", "--bind-to", "none", "--map-by", "slot", "-x", "A=1", "-mca", "btl",
                   "^openib", "--rank-by", "core", "python", "t.py", "-bind-to", "x")
    assert warnings == [f"mpirun is Open MPI 5: Open MPI 4's -{o} written as --{o}" for o in ("bind-to", "map-by",
                                                                                            "rank-by")]


def test_nothing_changes_for_open_mpi_4_other_commands_or_an_unknown_mpirun(path):
    argv = ("mpirun", "-bind-to", "none", "a.out")
    assert for_installed(argv, path, is_5=lambda p, env=None: False) == (argv, [])
    assert for_installed(("sh", "-c", "mpirun -bind-to none a.out"), path, is_5=lambda p, env=None: True)[1] == []
    assert for_installed(argv, {"PATH": "/nonexistent"}, is_5=lambda p, env=None: True) == (argv, [])


def test_the_version_is_read_from_mpirun_itself(path, tmp_path):
    assert is_open_mpi_5(os.path.join(path["PATH"], "mpirun"))
    four = tmp_path / "four"
    four.write_text("#!/bin/sh\necho 'mpirun (Open MPI) 4.1.4'\n")
    four.chmod(0o755)
    assert not is_open_mpi_5(str(four))
    assert not is_open_mpi_5(str(tmp_path / "absent"))


def test_an_elastic_horovodrun_in_a_pod_gets_ringrun_s_script_port_and_key(tmp_path):
    from ringrun.runtime.plan import Endpoint, Plan, SSHSetup

    keys = tmp_path / "ssh"
    keys.mkdir()
    (keys / "id_ed25519").write_text("key")
    plan = Plan("MPIJob", "launcher", 0, "/r", (), hostfile="/r/hostfile", discover_hosts="/r/discover_hosts.sh",
                discovery=(Endpoint("w-0", 2222),), ssh=SSHSetup("/mnt", str(keys)))
    argv = ("horovodrun", "--min-np", "1", "--host-discovery-script", "/etc/mpi/discover_hosts.sh", "python", "t.py")
    exists = lambda path: path.startswith(str(keys)) and os.path.exists(path)  # noqa: E731  (no /etc/mpi here)
    out, warnings = for_launcher(plan, argv, {}, exists=exists)
    assert out == ("horovodrun", "--ssh-port", "2222", "--ssh-identity-file", str(keys / "id_ed25519"), "--min-np",
                   "1", "--host-discovery-script", "/r/discover_hosts.sh", "python", "t.py")
    assert warnings == ["/etc/mpi/discover_hosts.sh does not exist here: horovodrun uses ringrun's "
                        "/r/discover_hosts.sh", f"added --ssh-port 2222 --ssh-identity-file {keys}/id_ed25519: "
                        "horovodrun's own ssh to the workers"]
    # an operator's script that exists, and the user's own ssh options, are kept
    mine = ("horovodrun", "--ssh-port", "22", "--ssh-identity-file", "/k", "--host-discovery-script", str(keys /
            "id_ed25519"), "python", "t.py")
    assert for_launcher(plan, mine, {}, exists=exists) == (mine, [])

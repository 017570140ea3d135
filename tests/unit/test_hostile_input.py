"""Untrusted input is bounded and refused with one clear line and exit 2: size, YAML aliases, duplicate keys, depth,
NUL bytes, values that would inject configuration, out-of-range command-line values; acceptance as the operators
validate. Planning stays linear in the number of replicas."""

import json
import time

import pytest

import specs
from conftest import run_cli
from ringrun.runtime import Context, Identity, SpecError, UsageError, build_plan, parse_jobs
from ringrun.runtime.parse import MAX_SPEC_BYTES, parse_objects


def spec_file(tmp_path, text, name="job.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def validate(tmp_path, text):
    return run_cli(["validate", spec_file(tmp_path, text)])


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    code, out, err = validate(tmp_path, bomb)
    assert code == 2 and "YAML aliases (*name) are not accepted in job specs" in err and "line 2" in err


@pytest.mark.parametrize("text,where", [
    ("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nkind: MXJob\n", "(line 3, column 1): duplicate key 'kind'"),
    ('{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "kind": "MXJob"}', "duplicate key 'kind'"),
])
def test_duplicate_keys_are_refused_not_last_wins(tmp_path, text, where):
    code, out, err = validate(tmp_path, text)
    assert code == 2 and where in err, err


@pytest.mark.parametrize("text", ["[" * 1000 + "]" * 1000, "a:\n" + "".join(" " * i + "- \n" for i in range(1, 300)),
                                  '{"a": ' * 150 + "1" + "}" * 150])
def test_deep_documents_are_refused_without_a_traceback(tmp_path, text):
    code, out, err = validate(tmp_path, text)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err


def test_a_spec_larger_than_the_limit_is_refused_unread(tmp_path):
    code, out, err = validate(tmp_path, "# " + "x" * MAX_SPEC_BYTES + "\n")
    assert code == 2 and "larger than 3 MiB" in err
    code, out, err = run_cli(["validate", "/dev/zero"])  # never ends by itself: read only up to the limit
    assert code == 2 and "/dev/zero" in err


def test_at_most_fifty_problems_are_printed_then_a_count():
    objects = [dict(specs.mpijob(), metadata={"name": f"BAD_{i}"}) for i in range(80)]
    with pytest.raises(SpecError) as info:
        parse_objects(objects)
    lines = str(info.value).splitlines()
    assert len(lines) == 51 and lines[-1] == f"... and {len(info.value.problems) - 50} more problems"


@pytest.mark.parametrize("path,value", [
    (["spec", "mpiReplicaSpecs", "Launcher", "template", "spec", "containers", 0, "command"], ["mpirun", "a\0b"]),
    (["spec", "mpiReplicaSpecs", "Launcher", "template", "spec", "containers", 0, "env"], [{"name": "A", "value": "\0"}]),
])
def test_a_nul_byte_is_refused_by_validate(path, value):
    obj = specs.mpijob()
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SpecError, match="must not contain a NUL character"):
        parse_objects([obj])


@pytest.mark.parametrize("field,value", [("sshAuthMountPath", "keys"), ("sshAuthMountPath", "/a/../etc"),
                                         ("sshAuthMountPath", "/a\nb")])
def test_paths_must_be_absolute_and_clean(field, value):
    with pytest.raises(SpecError, match=f"spec.{field}: must be an absolute path"):
        parse_objects([specs.mpijob(**{field: value})])
    with pytest.raises(SpecError, match="spec.ssh.sshdPath: must be an absolute path"):
        parse_objects([specs.t9kjob(ssh={"sshdPath": "sshd"})])
    with pytest.raises(SpecError, match="spec.mpiHome: must be an absolute path"):
        parse_objects([specs.t9kjob(mpiHome="opt/mpi")])


def test_names_whose_pod_host_names_exceed_63_characters_are_refused():
    """mpi-operator v0.8.2 validateMPIJobName: `<name>-worker-<replicas-1>` must be a DNS-1035 label."""
    name = "a" * 54
    obj = specs.mpijob(workers=10)
    obj["metadata"]["name"] = name
    assert parse_objects([obj])[0].name == name  # aaa...-worker-9: 63 characters
    obj["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] = 100
    with pytest.raises(SpecError, match=f"metadata.name: pods cannot be created: their host name '{name}-worker-99'"):
        parse_objects([obj])
    pt = specs.pytorchjob()
    pt["metadata"]["name"] = "p" * 55
    with pytest.raises(SpecError, match="host name 'p{55}-(master-0|worker-1)'"):  # both are 64 long
        parse_objects([pt])


def test_replicas_default_as_the_operators_default_them():
    """mpi-operator v2beta1 and training-operator default an absent Launcher (and training-operator every) count
    to 1."""
    obj = specs.mpijob()
    del obj["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"]
    assert parse_objects([obj])[0].count("launcher") == 1
    pt = specs.pytorchjob()
    del pt["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"]
    assert parse_objects([pt])[0].count("worker") == 1
    del obj["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"]
    with pytest.raises(SpecError, match="Worker.replicas: required"):
        parse_objects([obj])


def test_active_deadline_is_int64():
    (job,) = parse_objects([specs.mpijob(runPolicy={"activeDeadlineSeconds": 2**40})])
    assert job.run_policy.active_deadline_seconds == 2**40
    with pytest.raises(SpecError, match="activeDeadlineSeconds: must be <= 9223372036854775807"):
        parse_objects([specs.mpijob(runPolicy={"activeDeadlineSeconds": 2**63})])


@pytest.mark.parametrize("run_dir", ["/tmp/a b", "/tmp/a\nPermitEmptyPasswords yes"])
@pytest.mark.parametrize("role", ["launcher", "worker"])
def test_a_run_dir_that_would_inject_ssh_options_is_refused(run_dir, role):
    (job,) = parse_objects([specs.mpijob()])
    with pytest.raises(UsageError, match="must not contain white space or control characters"):
        build_plan(job, Identity(role, 0, "t"), Context(run_dir=run_dir))


def test_a_newline_in_an_inherited_path_never_reaches_sshd_config():
    (job,) = parse_objects([specs.mpijob()])
    environ = {"PATH": "/usr/bin\nPermitEmptyPasswords yes"}
    with pytest.raises(UsageError, match="PATH: its value .* holds a control character"):
        build_plan(job, Identity("worker", 0, "t"), Context(run_dir="/r", environ=environ))


def test_env_lines_leave_out_names_no_shell_can_hold(tmp_path):
    obj = specs.mpijob()
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "-n", "value": "x"}, {"name": "GOOD", "value": "a b"}]
    code, out, err = run_cli(["plan", spec_file(tmp_path, json.dumps(obj), "job.json"), "--role", "launcher",
                              "--format", "env"])
    assert code == 0 and "# not a shell variable name, left out: '-n'\n" in out and "export GOOD='a b'\n" in out
    assert "export -n" not in out


@pytest.mark.parametrize("args,message", [
    (["--ssh-port", "70000"], "--ssh-port: must be a port number from 1 to 65535, got '70000' (see ringrun plan"),
    (["--ssh-port", "0"], "--ssh-port: must be a port number"),
])
def test_out_of_range_options_are_exit_2(tmp_path, args, message, capsys):
    path = spec_file(tmp_path, json.dumps(specs.mpijob()), "job.json")
    with pytest.raises(SystemExit) as info:
        run_cli(["plan", path, "--role", "worker", "--index", "0"] + args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and err.count("\n") == 1  # one line


@pytest.mark.parametrize("args,message", [
    (["--timeout", "nan"], "--timeout: must be a number of seconds above 0"),
    (["--timeout", "-1"], "--timeout: must be a number of seconds above 0"),
    (["--grace", "-2"], "--grace: must be a number of seconds from 0"),
])
def test_run_options_are_checked(tmp_path, args, message, capsys):
    path = spec_file(tmp_path, json.dumps(specs.mpijob()), "job.json")
    with pytest.raises(SystemExit) as info:
        run_cli(["run", path] + args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_grace_from_the_environment_must_be_a_number(tmp_path):
    obj = specs.mpijob()
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = ["true"]
    path = spec_file(tmp_path, json.dumps(obj), "job.json")
    code, out, err = run_cli(["run", path], environ={"RINGRUN_GRACE_SECONDS": "soon"})
    assert code == 2 and err == "ringrun run: RINGRUN_GRACE_SECONDS: must be a number of seconds >= 0, got 'soon'\n"


@pytest.mark.parametrize("status,message", [("missing/s.json", "the folder"), (".", "is a directory")])
def test_status_and_log_dir_are_checked_before_anything_starts(tmp_path, status, message):
    path = spec_file(tmp_path, json.dumps(specs.mpijob()), "job.json")
    code, out, err = run_cli(["run", path, "--status", str(tmp_path / status)])
    assert code == 2 and f"--status: " in err and message in err
    (tmp_path / "file").write_text("")
    code, out, err = run_cli(["run", path, "--log-dir", str(tmp_path / "file")])
    assert code == 2 and "--log-dir:" in err and "is not a directory" in err


@pytest.mark.parametrize("sets,message", [
    (["Launcher.command=[1,2"], "--set Launcher.command: cannot read the value '[1,2': not valid YAML"),
    (["Launcher.command='open"], "--set Launcher.command: cannot read the value \"'open\": No closing quotation"),
])
def test_bad_set_values_are_exit_2(tmp_path, sets, message):
    path = spec_file(tmp_path, json.dumps(specs.mpijob()), "job.json")
    code, out, err = run_cli(["run", path] + [a for s in sets for a in ("--set", s)])
    assert code == 2 and message in err


@pytest.mark.parametrize("make,role", [
    (lambda n: specs.mpijob(workers=n), "launcher"), (lambda n: specs.mpijob(workers=n), "worker"),
    (lambda n: specs.pytorchjob(workers=n), "worker"), (lambda n: specs.mxjob(workers=n), "worker"),
    (lambda n: specs.t9kjob(worker={"replicas": n, "cmd": ["python", "t.py"],
                                    "template": specs.template(specs.container("mpi-worker"))}), "launcher"),
])
def test_a_100000_replica_job_is_planned_in_seconds(make, role):
    """Linear planning: one replica's plan of a job at the replica limit (generous bound: it takes well under one
    second here; quadratic planning took minutes)."""
    obj = make(100_000)
    obj["metadata"]["name"] = "big"
    start = time.monotonic()
    (job,) = parse_jobs(json.dumps(obj))
    plan = build_plan(job, Identity(role, 99_999 if role == "worker" else 0, "t"), Context(run_dir="/r"))
    assert plan.role == role
    assert time.monotonic() - start < 60


def test_a_local_run_plans_linearly_and_refuses_more_processes_than_one_machine_takes():
    from ringrun.launcher.local import local_plans
    from ringrun.runtime.local import MAX_LOCAL_PROCESSES

    (job,) = parse_jobs(json.dumps(specs.pytorchjob(workers=MAX_LOCAL_PROCESSES - 1)))
    start = time.monotonic()
    plans = local_plans(job, "/r")
    assert len(plans) == MAX_LOCAL_PROCESSES and time.monotonic() - start < 60
    (big,) = parse_jobs(json.dumps(specs.pytorchjob(workers=100_000)))
    with pytest.raises(UsageError, match="has 100001 replicas; a local run starts each as a process"):
        local_plans(big, "/r")
    (mpi,) = parse_jobs(json.dumps(specs.mpijob(workers=100_000)))
    assert list(local_plans(mpi, "/r")) == [("launcher", 0)]  # MPI workers are slots of one mpirun

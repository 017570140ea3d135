"""The CLI end to end: summaries, plan formats, job selection, stdin, exit codes, the installed console script."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

import specs
from conftest import FIXTURES, ROOT, run_cli

SEED = str(FIXTURES / "seed-000-request.json")


def test_validate_summary():
    code, out, err = run_cli(["validate", SEED])
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "MPIJob default/mpi-test (kubeflow.org/v1alpha2)",
        "  Launcher  x1   restart=OnFailure /bin/bash -c 'mpirun --allow-run-as-root python mxnet_mnist.py "
        "--batch-size 32 --no-cud...",
        "  Worker    x2   restart=Never     sshd (ringrun)",
        "  MPI: OpenMPI, 2 workers x slotsPerWorker 1 = world size 2",
        "  cleanPodPolicy All",
    ]


def test_plan_json_has_exactly_the_documented_keys():
    code, out, _ = run_cli(["plan", SEED, "--role", "worker", "--index", "1", "--run-dir", "/r", "--ssh-port", "2222"])
    plan = json.loads(out)
    assert code == 0
    assert list(plan) == ["kind", "role", "index", "mode", "run_dir", "env", "unset", "root_env", "files", "argv",
                          "working_dir", "wait_for", "ssh", "hostfile", "ssh_config", "workers", "notify",
                          "wait_for_login", "discover_hosts", "discovery", "slots", "notes", "duty"]
    assert (plan["role"], plan["index"], plan["duty"]) == ("worker", 1, "sshd")


def test_plan_env_format_round_trips_through_a_shell(tmp_path):
    code, out, _ = run_cli(["plan", str(FIXTURES / "seed-001-request.json"), "--role", "worker", "--format", "env"])
    assert code == 0
    script = tmp_path / "env.sh"
    script.write_text(out + 'printf "%s\\n%s" "$DMLC_WORKER_ID" "$MX_CONFIG"\n')
    shown = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout.split("\n", 1)
    assert shown[0] == "0"
    assert json.loads(shown[1])["task"] == {"type": "worker", "index": 0}


def test_identity_from_environment_and_run_dir_from_ringrun_variable():
    environ = {"K_MPI_JOB_ROLE": "worker", "HOSTNAME": "mpi-test-worker-1", "RINGRUN_RUN_DIR": "/srv/rr",
               "RINGRUN_SSH_PORT": "2022"}
    code, out, _ = run_cli(["plan", SEED], environ=environ)
    plan = json.loads(out)
    assert (code, plan["role"], plan["index"]) == (0, "worker", 1)
    assert plan["argv"][-1] == "/srv/rr/sshd_config"
    assert plan["files"]["/srv/rr/sshd_config"].startswith("Port 2022\n")


def test_identity_unknown_exits_3():
    code, out, err = run_cli(["plan", SEED], hostname="laptop")
    assert (code, out) == (3, "")
    assert "cannot tell which replica of job mpi-test" in err and "'laptop'" in err


@pytest.mark.parametrize("args,text", [
    (["plan", SEED, "--role", "chief"], "no role 'chief'"),
    (["plan", SEED, "--role", "worker", "--index", "5"], "index 5 is out of range"),
])
def test_bad_role_or_index_exits_2(args, text):
    code, _, err = run_cli(args)
    assert code == 2 and text in err


def test_several_jobs_in_one_file(tmp_path):
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all([specs.mpijob(), specs.pytorchjob()]))
    code, _, err = run_cli(["validate", str(path)])
    assert code == 2 and "the file holds 2 jobs (job, pt); name one" in err
    code, out, _ = run_cli(["validate", str(path), "--job", "pt"])
    assert code == 0 and out.startswith("PyTorchJob default/pt")
    code, _, err = run_cli(["validate", str(path), "--job", "nope"])
    assert code == 2 and "no job named 'nope'" in err


def test_kubectl_list_and_json_list(tmp_path):
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [specs.mxjob()]}))
    assert run_cli(["validate", str(listing)])[0] == 0
    array = tmp_path / "array.json"
    array.write_text(json.dumps([specs.t9kjob()]))
    assert run_cli(["validate", str(array)])[0] == 0


def test_json_with_tab_indentation(tmp_path):
    path = tmp_path / "tabs.json"
    path.write_text(json.dumps(specs.mpijob(), indent="\t"))
    assert run_cli(["validate", str(path)])[0] == 0


def test_duplicate_job_names_are_rejected(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([specs.mpijob(), specs.mpijob()]))
    code, _, err = run_cli(["validate", str(path)])
    assert code == 2 and "job ns/job is defined more than once" in err


def installed_ringrun():
    script = shutil.which("ringrun", path=str(ROOT / ".venv" / "bin")) or shutil.which(
        "ringrun", path=str(__import__("pathlib").Path(sys.executable).parent))
    if script is None:
        pytest.fail("the ringrun console script is not installed next to this Python")
    return script


def test_console_script_exit_codes_and_stdin():
    ringrun = installed_ringrun()
    ok = subprocess.run([ringrun, "validate", "-"], input=(FIXTURES / "tensorstack-mpijob.yaml").read_text(),
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("MPIJob demo/t9k-mpi")
    bad = subprocess.run([ringrun, "validate", "-"], input="kind: MPIJob\n", capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "apiVersion: required field is missing" in bad.stderr
    usage = subprocess.run([ringrun, "plan"], capture_output=True, text=True)
    assert (usage.returncode, usage.stderr) == (
        2, "ringrun plan: the following arguments are required: SPEC (see ringrun plan --help)\n")
    none = subprocess.run([ringrun], capture_output=True, text=True)
    assert none.returncode == 2 and "usage:" in none.stderr
    version = subprocess.run([ringrun, "--version"], capture_output=True, text=True)
    assert (version.returncode, version.stdout) == (0, "ringrun 0.1.0\n")


def test_plan_reads_the_operators_hostfile_as_the_entrypoint_does(tmp_path):
    """In a v1 launcher pod with mpi-operator's hostfile and kubexec agent, `plan` shows what `entrypoint` runs:
    the operator's hostfile, its pods as the workers, no ssh and nothing to wait for."""
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("mpi-test-worker-0 slots=1\nmpi-test-worker-1 slots=1\n")
    environ = {"RINGRUN_HOSTFILE": str(hostfile), "OMPI_MCA_plm_rsh_agent": "/etc/mpi/kubexec.sh"}
    code, out, err = run_cli(["plan", SEED, "--role", "launcher", "--run-dir", "/r"], environ=environ)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["files"] == {"/r/hostfile": hostfile.read_text()}
    assert (plan["workers"], plan["wait_for"], plan["ssh"]) == ([], [], None)  # the operator's agent starts ranks
    code, out, _ = run_cli(["plan", SEED, "--role", "launcher", "--run-dir", "/r"],
                           environ={"RINGRUN_HOSTFILE": str(hostfile)})  # no agent: ssh to the hostfile's pods
    plan = json.loads(out)
    assert plan["workers"] == ["mpi-test-worker-0", "mpi-test-worker-1"]
    assert plan["wait_for"] == ["mpi-test-worker-0:22", "mpi-test-worker-1:22"]
    code, out, _ = run_cli(["plan", SEED, "--role", "launcher", "--run-dir", "/r"],
                           environ={"RINGRUN_HOSTFILE": str(tmp_path / "none")})  # none mounted: the spec's workers
    plan = json.loads(out)
    assert plan["workers"] == ["mpi-test-worker-0.mpi-test.default.svc", "mpi-test-worker-1.mpi-test.default.svc"]
    assert plan["ssh"] is not None


def test_field_validation_strict_by_default_warn_and_ignore_drop_the_field(tmp_path):
    spec = specs.mpijob(slotPerWorker=2)  # a typo of slotsPerWorker
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, err = run_cli(["validate", str(path)])
    assert code == 2 and out == ""
    assert "spec.slotPerWorker: unknown field" in err
    code, out, err = run_cli(["validate", "--field-validation", "Warn", str(path)])
    assert code == 0 and "world size" in out
    assert err.splitlines() == [
        "ringrun validate: warning: spec.slotPerWorker: unknown field, dropped (field validation Warn)"]
    code, out, err = run_cli(["plan", "--field-validation", "Ignore", str(path), "--role", "launcher"])
    assert (code, err) == (0, "")
    assert json.loads(out)["role"] == "launcher"
    with pytest.raises(SystemExit) as info:  # argparse's usage error
        run_cli(["validate", "--field-validation", "Lax", str(path)])
    assert info.value.code == 2

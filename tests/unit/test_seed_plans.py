"""The JSON examples of the seed documents (and a TensorStack MPIJob built from seed 004's field list) validate, and
every replica of each gets exactly the env, argv, files and wait_for of the Kubeflow operators' conventions."""

import json

import pytest

from conftest import FIXTURES, fixture_text, run_cli
from ringrun.runtime import Context, Identity, build_plan, parse_jobs

RUN = "/run/rr"
SEED_FILES = sorted(p.name for p in FIXTURES.glob("seed-*.json"))


def plan_of(name, role, index=0, environ=None, ssh_port=22, command=()):
    (job,) = parse_jobs(fixture_text(name), name)
    context = Context(run_dir=RUN, ssh_port=ssh_port, environ=environ or {}, command=command)
    return build_plan(job, Identity(role, index, "test"), context).to_dict()


def test_all_five_seed_documents_have_fixtures():
    seeds = {name.split("-")[1] for name in SEED_FILES}
    assert seeds == {"000", "001", "002", "003"}  # 004 has no JSON example; tensorstack-mpijob.yaml stands for it
    assert len(SEED_FILES) == 8


@pytest.mark.parametrize("name", SEED_FILES + ["tensorstack-mpijob.yaml"])
def test_fixture_validates(name):
    code, out, err = run_cli(["validate", str(FIXTURES / name)])
    # the seed's MXJob writes cleanPodPolicy beside the replica specs, where training-operator's CRD has none
    warned = "seed-001" in name
    assert (code, err) == (0, "ringrun validate: warning: spec.cleanPodPolicy: read as spec.runPolicy.cleanPodPolicy "
                              "(where the MXJob CRD has it)\n" if warned else "")
    assert out.splitlines()[0].startswith(("MPIJob", "MXJob", "PyTorchJob"))


OPENMPI_LAUNCHER_ENV = {
    "K_MPI_JOB_ROLE": "launcher",
    "OMPI_MCA_orte_default_hostfile": f"{RUN}/hostfile",
    "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
    "OMPI_MCA_orte_set_default_slots": "1",
    "OMPI_MCA_plm_rsh_args": f"-F {RUN}/ssh_config",
    "PRTE_MCA_prte_default_hostfile": f"{RUN}/hostfile",
    "PRTE_MCA_prte_keep_fqdn_hostnames": "1",
    "PRTE_MCA_prte_set_default_slots": "1",
    "PRTE_MCA_plm_ssh_args": f"-F {RUN}/ssh_config",
}
SEED_MPI_COMMAND = ["/bin/bash", "-c", "mpirun --allow-run-as-root python mxnet_mnist.py --batch-size 32 --no-cuda --epoch 1"]


@pytest.mark.parametrize("name,namespace", [
    ("seed-000-request.json", "default"), ("seed-000-response.json", "kube-test"),
    ("seed-002-request.json", "kube-test"), ("seed-002-response.json", "kube-test"),
])
def test_mpijob_launcher(name, namespace):
    plan = plan_of(name, "launcher")
    hosts = [f"mpi-test-worker-{i}.mpi-test.{namespace}.svc" for i in (0, 1)]
    assert plan["kind"] == "MPIJob" and (plan["role"], plan["index"]) == ("launcher", 0)
    assert plan["env"] == OPENMPI_LAUNCHER_ENV
    assert plan["argv"] == SEED_MPI_COMMAND  # the launcher's own command already calls mpirun
    assert plan["files"][f"{RUN}/hostfile"] == "".join(f"{h} slots=1\n" for h in hosts)
    ssh_config = plan["files"][f"{RUN}/ssh_config"]
    assert "    Port 22\n" in ssh_config and f"    IdentityFile {RUN}/ssh/id_rsa\n" in ssh_config
    assert "    StrictHostKeyChecking no\n" in ssh_config and "=" not in ssh_config
    assert plan["wait_for"] == [f"{h}:22" for h in hosts]
    # the mounted keys are copied into a private directory; cleanPodPolicy All/Running: workers are told at the end
    assert plan["ssh"] == {"mount": "/root/.ssh", "key_dir": f"{RUN}/ssh", "host_key": None, "sshd": None}
    assert plan["notify"] == hosts and plan["mode"] == "normal"


@pytest.mark.parametrize("name", ["seed-000-request.json", "seed-002-response.json"])
@pytest.mark.parametrize("index", [0, 1])
def test_mpijob_worker(name, index):
    plan = plan_of(name, "worker", index, ssh_port=2222)
    assert plan["env"] == {"K_MPI_JOB_ROLE": "worker"}
    assert plan["argv"] == ["/usr/sbin/sshd", "-D", "-e", "-f", f"{RUN}/sshd_config"]
    assert plan["wait_for"] == []
    sshd = plan["files"][f"{RUN}/sshd_config"].splitlines()
    assert sshd[:4] == ["Port 2222", f"HostKey {RUN}/ssh_host_ed25519_key",
                        f"AuthorizedKeysFile {RUN}/ssh/authorized_keys", f"PidFile {RUN}/sshd.pid"]
    assert "PasswordAuthentication no" in sshd
    assert sshd[-1] == f"SetEnv RINGRUN_RUN_DIR={RUN}"
    assert plan["ssh"] == {"mount": "/root/.ssh", "key_dir": f"{RUN}/ssh",
                           "host_key": f"{RUN}/ssh_host_ed25519_key", "sshd": "/usr/sbin/sshd"}


def test_operator_env_wins_over_ringrun():
    environ = {"OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile", "UNRELATED": "x"}
    plan = plan_of("seed-000-request.json", "launcher", environ=environ)
    assert plan["env"]["OMPI_MCA_orte_default_hostfile"] == "/etc/mpi/hostfile"
    assert plan["env"]["PRTE_MCA_prte_default_hostfile"] == f"{RUN}/hostfile"
    assert "UNRELATED" not in plan["env"]


PYTORCH_ENV = {
    "PYTHONUNBUFFERED": "1", "MASTER_ADDR": "pytorch-test-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "2",
    "PET_MASTER_ADDR": "pytorch-test-master-0", "PET_MASTER_PORT": "23456", "PET_NNODES": "2",
    "PET_NPROC_PER_NODE": "auto",  # training-operator v1.7-v1.9's default
}


@pytest.mark.parametrize("name", ["seed-003-request.json", "seed-003-response.json"])
@pytest.mark.parametrize("role,index,rank,wait_for", [
    ("master", 0, "0", []),
    ("worker", 0, "1", ["pytorch-test-master-0:23456"]),
])
def test_pytorchjob(name, role, index, rank, wait_for):
    plan = plan_of(name, role, index)
    assert plan["kind"] == "PyTorchJob"
    assert plan["env"] == {**PYTORCH_ENV, "RANK": rank, "PET_NODE_RANK": rank}
    assert plan["argv"] == ["python", "/var/mnist.py", "--backend", "gloo"]
    assert plan["files"] == {}
    assert plan["wait_for"] == wait_for


MX_CLUSTER = {"scheduler": [{"url": "mxnet-job-scheduler-0", "port": 9091}],
              "server": [{"url": "mxnet-job-server-0", "port": 9091}],
              "worker": [{"url": "mxnet-job-worker-0", "port": 9091}]}


@pytest.mark.parametrize("name", ["seed-001-request.json", "seed-001-response.json"])
@pytest.mark.parametrize("role,argv_tail", [
    ("scheduler", "python train_imagenet.py"),
    ("server", "python train_imagenet.py"),
    ("worker", "python train_imagenet.py --benchmark 1  --network resnet --batch-size 1 --num-epochs 1 "
               "--kv-store dist_sync --num-examples 500"),
])
def test_mxjob(name, role, argv_tail):
    plan = plan_of(name, role)
    env = dict(plan["env"])
    mx_config = env.pop("MX_CONFIG")
    expected = {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": "mxnet-job-scheduler-0", "DMLC_PS_ROOT_PORT": "9091",
                "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "1", "DMLC_USE_KUBERNETES": "1"}
    if role == "worker":
        expected["DMLC_WORKER_ID"] = "0"
    assert env == expected
    assert json.loads(mx_config) == {"cluster": MX_CLUSTER, "labels": {"scheduler": "", "server": "", "worker": ""},
                                     "task": {"type": role, "index": 0}}
    # Byte-compatible with training-operator (Go encoding/json): compact, struct fields in declaration order.
    assert mx_config.startswith('{"cluster":{"scheduler":[{"url":"mxnet-job-scheduler-0","port":9091}]')
    assert mx_config.endswith(f'"task":{{"type":"{role}","index":0}}}}')
    assert plan["argv"] == ["/bin/bash", "-c", argv_tail]
    assert plan["wait_for"] == (["mxnet-job-scheduler-0:9091"] if role == "worker" else [])
    assert plan["unset"] == ["PORT", "DMLC_NODE_HOST"]


T9K = "tensorstack-mpijob.yaml"
T9K_HOSTS = [f"t9k-mpi-worker-{i}.t9k-mpi.demo.svc" for i in range(3)]


def test_tensorstack_launcher_builds_mpirun():
    plan = plan_of(T9K, "launcher")
    assert plan["argv"] == [
        "/opt/openmpi/bin/mpirun", "-np", "3", "--hostfile", f"{RUN}/hostfile",
        "--mca", "btl", "^openib", "--mca", "btl_tcp_if_include", "eth0",
        "--mca", "plm_rsh_args", f"-F {RUN}/ssh_config",
        "--bind-to", "none", "-x", "PYTHONPATH",
        "python3", "/workspace/train.py", "--epochs", "1",
    ]
    assert plan["files"][f"{RUN}/hostfile"] == "".join(f"{h} slots=1\n" for h in T9K_HOSTS)
    assert plan["ssh"]["mount"] == "/home/mpiuser/.ssh"
    assert plan["wait_for"] == [f"{h}:22" for h in T9K_HOSTS]
    assert plan["env"]["K_MPI_JOB_ROLE"] == "launcher"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_tensorstack_worker_runs_spec_sshd(index):
    plan = plan_of(T9K, "worker", index)
    assert plan["argv"] == ["/usr/sbin/sshd", "-D", "-e", "-f", f"{RUN}/sshd_config"]
    assert f"AuthorizedKeysFile {RUN}/ssh/authorized_keys\n" in plan["files"][f"{RUN}/sshd_config"]
    assert plan["ssh"]["mount"] == "/home/mpiuser/.ssh"
    assert plan["env"] == {"K_MPI_JOB_ROLE": "worker"}

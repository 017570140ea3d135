"""Plans for the spec features the seed examples do not use, each compared exactly."""

import json

import pytest

import specs
from ringrun.runtime import Context, Identity, build_plan, parse_jobs
from ringrun.runtime.parse import parse_objects

RUN = "/r"


def plan(obj, role, index=0, **context):
    (job,) = parse_jobs(json.dumps(obj))
    return build_plan(job, Identity(role, index, "test"), Context(run_dir=RUN, **context)).to_dict()


@pytest.mark.parametrize("implementation,env", [
    ("Intel", {"I_MPI_HYDRA_HOST_FILE": f"{RUN}/hostfile", "I_MPI_HYDRA_BOOTSTRAP": "ssh",
               "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS": f"-F {RUN}/ssh_config", "I_MPI_PERHOST": "3"}),
    ("MPICH", {"HYDRA_HOST_FILE": f"{RUN}/hostfile", "HYDRA_LAUNCHER": "ssh",
               "HYDRA_LAUNCH_EXTRA_ARGS": f"-F {RUN}/ssh_config",
               "HYDRA_LAUNCHER_EXTRA_ARGS": f"-F {RUN}/ssh_config"}),
])
def test_hydra_implementations(implementation, env):
    p = plan(specs.mpijob(mpiImplementation=implementation, slotsPerWorker=3), "launcher")
    assert p["env"] == {"K_MPI_JOB_ROLE": "launcher", **env}
    assert p["files"][f"{RUN}/hostfile"] == "job-worker-0.job.ns.svc:3\njob-worker-1.job.ns.svc:3\n"
    assert p["argv"] == ["mpirun", "python", "t.py"]


def test_run_launcher_as_worker_puts_launcher_first():
    p = plan(specs.mpijob(runLauncherAsWorker=True, slotsPerWorker=2), "launcher", ssh_port=2222)
    assert p["files"][f"{RUN}/hostfile"] == (
        "job-launcher.job.ns.svc slots=2\njob-worker-0.job.ns.svc slots=2\njob-worker-1.job.ns.svc slots=2\n")
    assert p["wait_for"] == ["job-worker-0.job.ns.svc:2222", "job-worker-1.job.ns.svc:2222"]
    assert p["env"]["OMPI_MCA_orte_set_default_slots"] == "2"


def test_ssh_auth_mount_path_v2beta1_and_main_container_v1():
    p = plan(specs.mpijob(sshAuthMountPath="/home/mpiuser/.ssh"), "launcher")
    assert p["ssh"]["mount"] == "/home/mpiuser/.ssh"
    assert f"    IdentityFile {RUN}/ssh/id_rsa\n" in p["files"][f"{RUN}/ssh_config"]
    # mainContainer is a field of MPIJob v1 (training-operator's CRD), not of mpi-operator's v2beta1
    obj = specs.mpijob(api="kubeflow.org/v1", mainContainer="trainer")
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"].insert(
        0, specs.container("sidecar", ["sleep", "1"]))
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][1]["name"] = "trainer"
    p = plan(obj, "launcher")
    assert p["argv"] == ["mpirun", "python", "t.py"]


def test_container_env_overrides_ringrun_and_operator_overrides_both():
    obj = specs.mpijob()
    launcher = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    launcher["env"] = [{"name": "OMPI_MCA_orte_set_default_slots", "value": "7"}, {"name": "EXTRA", "value": "1"},
                       {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    p = plan(obj, "launcher", environ={"PRTE_MCA_prte_set_default_slots": "9"})
    assert p["env"]["OMPI_MCA_orte_set_default_slots"] == "7"
    assert p["env"]["EXTRA"] == "1"
    assert p["env"]["PRTE_MCA_prte_set_default_slots"] == "9"
    assert "FROM_SECRET" not in p["env"]


def test_command_from_the_command_line_replaces_the_spec():
    p = plan(specs.pytorchjob(), "worker", 1, command=("python", "other.py"))
    assert p["argv"] == ["python", "other.py"]


@pytest.mark.parametrize("role,index,rank", [("master", 0, 0), ("worker", 0, 1), ("worker", 1, 2)])
def test_pytorch_nproc_per_node(role, index, rank):
    p = plan(specs.pytorchjob(nprocPerNode="2"), role, index)
    assert p["env"]["WORLD_SIZE"] == "6"
    assert p["env"]["PET_NPROC_PER_NODE"] == "2"
    assert p["env"]["PET_NNODES"] == "3"
    assert (p["env"]["RANK"], p["env"]["PET_NODE_RANK"]) == (str(rank), str(rank))
    assert p["argv"] == ["torchrun", "--no-python", "python", "t.py"]  # torchrun reads PET_*


@pytest.mark.parametrize("spec,argv", [
    ({}, ["python", "t.py"]),
    ({"nprocPerNode": "1"}, ["python", "t.py"]),
    ({"nprocPerNode": "auto"}, ["torchrun", "--no-python", "python", "t.py"]),
    ({"elasticPolicy": {"maxReplicas": 3}}, ["torchrun", "--no-python", "python", "t.py"]),
])
def test_pytorch_torchrun_only_for_several_processes_or_elastic(spec, argv):
    assert plan(specs.pytorchjob(**spec), "worker", 0)["argv"] == argv


@pytest.mark.parametrize("command", [["torchrun", "--nproc-per-node", "2", "t.py"],
                                     ["/usr/bin/torchrun", "t.py"],
                                     ["python3", "-m", "torch.distributed.run", "t.py"]])
def test_pytorch_command_that_is_already_torchrun_is_kept(command):
    assert plan(specs.pytorchjob(nprocPerNode="2"), "master", 0, command=tuple(command))["argv"] == command


def test_pytorch_container_port_named_pytorchjob_port():
    obj = specs.pytorchjob()
    obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "pytorchjob-port", "containerPort": 29500}]
    p = plan(obj, "worker", 1)
    assert (p["env"]["MASTER_PORT"], p["wait_for"]) == ("29500", ["pt-master-0:29500"])


def test_pytorch_elastic_without_master():
    obj = specs.pytorchjob(workers=3, master=False, elasticPolicy={
        "minReplicas": 1, "maxReplicas": 4, "maxRestarts": 3, "rdzvConf": [{"key": "a", "value": "1"},
                                                                          {"key": "b", "value": "2"}]})
    worker0, worker2 = plan(obj, "worker", 0), plan(obj, "worker", 2)
    assert worker2["env"] == {
        "PYTHONUNBUFFERED": "1", "MASTER_ADDR": "pt-worker-0", "MASTER_PORT": "23456", "WORLD_SIZE": "3",
        "RANK": "2", "PET_MASTER_ADDR": "pt-worker-0", "PET_MASTER_PORT": "23456", "PET_NNODES": "1:4",
        "PET_NPROC_PER_NODE": "auto", "PET_NODE_RANK": "2", "PET_RDZV_ENDPOINT": "pt-worker-0:23456",
        "PET_RDZV_BACKEND": "c10d", "PET_MAX_RESTARTS": "3", "PET_RDZV_CONF": "a=1,b=2"}
    assert worker0["wait_for"] == [] and worker2["wait_for"] == ["pt-worker-0:23456"]


@pytest.mark.parametrize("role,waits", [("scheduler", False), ("server", False), ("worker", True)])
def test_mxnet_only_workers_wait_and_no_role_inherits_port(role, waits):
    p = plan(specs.mxjob(), role)
    assert p["wait_for"] == (["mx-scheduler-0:9091"] if waits else [])
    assert p["unset"] == ["PORT", "DMLC_NODE_HOST"]


def test_mxnet_node_host_set_in_the_spec_is_kept():
    obj = specs.mxjob()
    obj["spec"]["mxReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DMLC_NODE_HOST", "value": "10.1.2.3"}]
    (job,) = parse_objects([obj])
    built = build_plan(job, Identity("worker", 0, "t"), Context(run_dir=RUN))
    env = built.process_env({"PORT": "80", "DMLC_NODE_HOST": "leaked", "HOME": "/h"})
    assert (env["DMLC_NODE_HOST"], env["HOME"], "PORT" in env) == ("10.1.2.3", "/h", False)


def test_mxnet_two_servers_and_worker_ids():
    p = plan(specs.mxjob(servers=2, workers=3), "worker", 2)
    assert (p["env"]["DMLC_NUM_SERVER"], p["env"]["DMLC_NUM_WORKER"], p["env"]["DMLC_WORKER_ID"]) == ("2", "3", "2")
    server = plan(specs.mxjob(servers=2), "server", 1)
    assert "DMLC_WORKER_ID" not in server["env"]
    assert json.loads(server["env"]["MX_CONFIG"])["task"] == {"type": "server", "index": 1}
    assert [s["url"] for s in json.loads(server["env"]["MX_CONFIG"])["cluster"]["server"]] == ["mx-server-0",
                                                                                            "mx-server-1"]


@pytest.mark.parametrize("role", ["tunertracker", "tunerserver", "tuner"])
def test_mxtune_roles_get_mx_config(role):
    obj = specs.mxjob(mode="MXTune")
    obj["spec"]["mxReplicaSpecs"]["TunerServer"]["template"]["metadata"] = {"annotations": {"tuner-server-key": "k1"}}
    p = plan(obj, role)
    config = json.loads(p["env"]["MX_CONFIG"])
    assert config["task"] == {"type": role, "index": 0}
    assert config["labels"] == {"tuner": "", "tunerserver": "k1", "tunertracker": ""}
    assert set(p["env"]) == {"MX_CONFIG", "DMLC_ROLE"}
    assert p["env"]["DMLC_ROLE"] == role and p["wait_for"] == []


def test_tensorstack_extra_args_with_np_and_no_mpi_home():
    p = plan(specs.t9kjob(worker={"replicas": 2, "cmd": ["python", "t.py"], "extraMPIArgs": ["-np", "8"],
                                  "template": specs.template(specs.container("mpi-worker"))},
                          mca={"plm_rsh_args": "-p 2222"}), "launcher")
    assert p["argv"] == ["mpirun", "--hostfile", f"{RUN}/hostfile", "--mca", "plm_rsh_args", "-p 2222",
                         "-np", "8", "python", "t.py"]


@pytest.mark.parametrize("debug,launcher_argv,worker_argv", [
    ({"enable": True}, ["sleep", "inf"], ["/usr/sbin/sshd", "-D", "-e", "-f", f"{RUN}/sshd_config"]),
    ({"enable": True, "replicaSpecs": [{"type": "master", "command": ["sleep", "60"]},
                                       {"type": "worker", "command": ["/usr/bin/sshd", "-D"]}]},
     ["sleep", "60"], ["/usr/bin/sshd", "-D"]),
])
def test_tensorstack_debug_mode(debug, launcher_argv, worker_argv):
    obj = specs.t9kjob(runMode={"debug": debug})
    launcher, worker = plan(obj, "launcher"), plan(obj, "worker", 1)
    assert launcher["argv"] == launcher_argv and worker["argv"] == worker_argv
    assert f"{RUN}/hostfile" in launcher["files"]


def test_tensorstack_pause_starts_nothing():
    obj = specs.t9kjob(runMode={"pause": {"enable": True}})
    assert plan(obj, "launcher")["argv"] == [] and plan(obj, "launcher")["wait_for"] == []
    assert plan(obj, "worker", 0)["argv"] == []


def test_the_operators_ssh_options_are_kept_after_ringrun_s():
    """mpi-operator v2beta1 sets OMPI_MCA_plm_rsh_args (and the Intel MPI and MPICH ones) to
    `-o ConnectionAttempts=10`: ringrun's `-F ssh_config` (port, keys) still reaches ssh, first."""
    operator = {"OMPI_MCA_plm_rsh_args": "-o ConnectionAttempts=10", "OMPI_MCA_orte_default_hostfile": "/etc/mpi/hf"}
    env = plan(specs.mpijob(), "launcher", environ=operator)["env"]
    assert env["OMPI_MCA_plm_rsh_args"] == f"-F {RUN}/ssh_config -o ConnectionAttempts=10"
    assert env["OMPI_MCA_orte_default_hostfile"] == "/etc/mpi/hf"  # any other variable: the operator's as it is
    again = plan(specs.mpijob(), "launcher", environ={"OMPI_MCA_plm_rsh_args": env["OMPI_MCA_plm_rsh_args"]})
    assert again["env"]["OMPI_MCA_plm_rsh_args"] == env["OMPI_MCA_plm_rsh_args"]  # never doubled
    intel = {"I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS": "-o ConnectionAttempts=10"}
    env = plan(specs.mpijob(mpiImplementation="Intel"), "launcher", environ=intel)["env"]
    assert env["I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS"] == f"-F {RUN}/ssh_config -o ConnectionAttempts=10"


@pytest.mark.parametrize("api,distribution,agent", [
    ("kubeflow.org/v1alpha2", "OpenMPI", "OMPI_MCA_plm_rsh_agent"),
    ("kubeflow.org/v1alpha2", "IntelMPI", "I_MPI_HYDRA_BOOTSTRAP_EXEC"),
    ("kubeflow.org/v1alpha2", "MPICH", "HYDRA_LAUNCHER_EXEC"),
    ("kubeflow.org/v1", None, "OMPI_MCA_plm_rsh_agent"),
])
def test_an_older_operator_s_kubexec_and_hostfile_are_used_as_they_are(api, distribution, agent):
    """mpi-operator v1alpha2/v1 and training-operator's MPIJob v1 mount a hostfile of bare pod names (no headless
    service: they do not resolve) and start ranks with kubectl exec (/etc/mpi/kubexec.sh): ringrun waits for
    nothing, writes no ssh options and watches no worker over ssh."""
    obj = specs.mpijob(api=api, **({"mpiDistribution": distribution} if distribution else {}))
    operator = {agent: "/etc/mpi/kubexec.sh", "OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile"}
    hostfile = "job-worker-0 slots=1\njob-worker-1 slots=1\n"
    p = plan(obj, "launcher", environ=operator, hostfile=hostfile)
    assert (p["wait_for"], p["workers"], p["notify"], p["ssh"], p["ssh_config"]) == ([], [], [], None, None)
    assert p["files"] == {f"{RUN}/hostfile": hostfile}
    assert p["argv"] == ["mpirun", "python", "t.py"]
    assert not set(p["env"]) & {"OMPI_MCA_plm_rsh_args", "PRTE_MCA_plm_ssh_args", "I_MPI_HYDRA_BOOTSTRAP",
                                "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS", "HYDRA_LAUNCHER", "HYDRA_LAUNCH_EXTRA_ARGS",
                                "HYDRA_LAUNCHER_EXTRA_ARGS"}
    # without the operator's agent (ringrun's own images and manifests), the same hostfile keeps ssh; so does an
    # MPIJob v2beta1 whose image or user sets an agent: mpi-operator v2 sets none
    v2 = plan(specs.mpijob(), "launcher", environ=operator, hostfile=hostfile)
    assert v2["wait_for"] == ["job-worker-0:22", "job-worker-1:22"] and v2["ssh_config"] == f"{RUN}/ssh_config"
    p = plan(obj, "launcher", environ={"OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile"}, hostfile=hostfile)
    assert p["wait_for"] == ["job-worker-0:22", "job-worker-1:22"] and p["ssh_config"] == f"{RUN}/ssh_config"


def test_an_elastic_horovod_launcher_waits_for_no_worker_and_keeps_a_discovery_script():
    """horovodrun --min-np/--max-np/--host-discovery-script finds its own hosts and waits for --min-np of them."""
    command = ["horovodrun", "-np", "2", "--min-np", "1", "--max-np", "3", "--host-discovery-script",
               "/etc/mpi/discover_hosts.sh", "python", "train.py"]
    obj = specs.mpijob(slotsPerWorker=2)
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = command
    p = plan(obj, "launcher", ssh_port=2222)
    assert p["wait_for"] == [] and p["wait_for_login"] is False
    assert p["discover_hosts"] == f"{RUN}/discover_hosts.sh" and p["slots"] == 2
    assert p["discovery"] == ["job-worker-0.job.ns.svc:2222", "job-worker-1.job.ns.svc:2222"]
    assert p["files"][f"{RUN}/discover_hosts.sh"] == "#!/bin/sh\n"  # filled in as workers answer
    assert p["env"]["RINGRUN_DISCOVER_HOSTS"] == f"{RUN}/discover_hosts.sh"
    assert p["argv"] == command
    # not elastic (no discovery flag), or not horovodrun: the usual wait, no script
    for other in (["horovodrun", "-np", "2", "python", "train.py"], ["mpirun", "--min-np", "1", "a.out"]):
        obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = other
        p = plan(obj, "launcher", ssh_port=2222)
        assert p["discover_hosts"] is None and p["discovery"] == [] and len(p["wait_for"]) == 2


def test_an_elastic_horovod_job_on_one_machine():
    from ringrun.runtime.local import localize

    obj = specs.mpijob(slotsPerWorker=2)
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = [
        "horovodrun", "--min-np", "1", "--host-discovery-script", "/etc/mpi/discover_hosts.sh", "python", "t.py"]
    (job,) = parse_jobs(json.dumps(obj))
    local = localize(job, build_plan(job, Identity("launcher", 0, "t"), Context(run_dir=RUN)))
    assert local.argv == ("horovodrun", "--network-interface", "lo", "--min-np", "1", "--host-discovery-script",
                          f"{RUN}/discover_hosts.sh", "python", "t.py")
    assert dict(local.files)[f"{RUN}/discover_hosts.sh"] == "#!/bin/sh\necho localhost:4\n"
    assert local.discovery == () and local.wait_for == ()
    assert [n.split(":")[0] for n in local.notes] == ["/etc/mpi/discover_hosts.sh (mpi-operator's) is ringrun's "
                                                      f"{RUN}/discover_hosts.sh here", "added --network-interface lo"]


def test_a_suspended_elastic_horovod_job_plans_nothing_to_run(tmp_path):
    from conftest import run_cli

    obj = specs.mpijob(runPolicy={"suspend": True})
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["command"] = [
        "horovodrun", "--min-np", "1", "python", "t.py"]
    p = plan(obj, "launcher")
    assert (p["argv"], p["discover_hosts"], p["discovery"], p["mode"]) == ([], None, [], "suspend")
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(obj))
    code, out, err = run_cli(["run", str(spec)], environ={"PATH": "/usr/bin:/bin"})
    assert code == 7 and "Traceback" not in err
    assert json.loads(out)["status"]["conditions"][-1]["type"] == "Suspended"


def test_an_mpi_worker_given_a_command_runs_ringruns_sshd_and_says_so():
    """mpi-operator gives a worker with neither command nor args `/usr/sbin/sshd -De`; ringrun's image is given it as
    args (the ENTRYPOINT kept): the worker's plan is still ringrun's sshd, and a note names what is not run."""
    p = plan(specs.mpijob(), "worker", 1, command=("/usr/sbin/sshd", "-De"))
    assert p["argv"] == ["/usr/sbin/sshd", "-D", "-e", "-f", f"{RUN}/sshd_config"]
    assert p["notes"] == ["an MPI worker runs ringrun's sshd; the pod's command (/usr/sbin/sshd -De) is not run"]
    assert plan(specs.mpijob(), "worker", 1)["notes"] == []

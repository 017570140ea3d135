"""Pure parts of `ringrun run` and `ringrun launch`: local plans, --set, the launch argv."""

import json

import pytest

import specs
from ringrun.runtime import Context, Identity, SpecError, build_plan, parse_jobs
from ringrun.runtime.commands import launch_argv, thread_defaults
from ringrun.runtime.local import LOCAL_OPENMPI_ENV, apply_sets, localize, processes
from ringrun.runtime.parse import parse_objects
from ringrun.runtime.plan import OPENMPI_ROOT_ENV


def local(obj, role, index=0):
    (job,) = parse_objects([obj])
    plan = build_plan(job, Identity(role, index, "t"), Context(run_dir="/r"))
    return job, localize(job, plan)


def test_mpi_launcher_gets_a_localhost_hostfile_and_local_mpi_settings():
    job, local_plan = local(specs.mpijob(workers=3, slotsPerWorker=2, runLauncherAsWorker=True), "launcher")
    plan = local_plan.to_dict()
    assert processes(job) == (("launcher", 0),)
    assert local_plan.hostfile == "/r/hostfile" and plan["files"]["/r/hostfile"] == "localhost slots=8\n"
    assert (plan["wait_for"], plan["workers"], plan["notify"], plan["ssh"]) == ([], [], [], None)
    assert {k: plan["env"][k] for k in LOCAL_OPENMPI_ENV} == LOCAL_OPENMPI_ENV
    assert plan["env"]["PRTE_MCA_prte_default_hostfile"] == "/r/hostfile"
    # root's Open MPI variables only when the process runs as root, never over what the caller set
    assert not set(dict(OPENMPI_ROOT_ENV)) & set(local_plan.process_env({}, is_root=False))
    assert {k: local_plan.process_env({}, is_root=True)[k] for k in dict(OPENMPI_ROOT_ENV)} == dict(OPENMPI_ROOT_ENV)
    assert local_plan.process_env({"OMPI_ALLOW_RUN_AS_ROOT": "0"}, is_root=True)["OMPI_ALLOW_RUN_AS_ROOT"] == "0"


def test_hydra_launcher_gets_host_colon_slots_and_no_open_mpi_settings():
    _, local_plan = local(specs.mpijob(mpiImplementation="MPICH"), "launcher")
    plan = local_plan.to_dict()
    assert plan["files"]["/r/hostfile"] == "localhost:2\n"
    assert not set(LOCAL_OPENMPI_ENV) & set(plan["env"])
    assert plan["root_env"] == {}


def test_replica_names_become_loopback_everywhere():
    job, plan = local(specs.mxjob(servers=2), "worker", 1)
    plan = plan.to_dict()
    config = json.loads(plan["env"]["MX_CONFIG"])
    assert {e["url"] for urls in config["cluster"].values() for e in urls} == {"127.0.0.1"}
    assert (plan["env"]["DMLC_PS_ROOT_URI"], plan["env"]["DMLC_NODE_HOST"]) == ("127.0.0.1", "127.0.0.1")
    assert len(processes(job)) == 5
    pt = local(specs.pytorchjob(), "worker", 0)[1].to_dict()
    assert (pt["env"]["MASTER_ADDR"], pt["env"]["PET_MASTER_ADDR"]) == ("127.0.0.1", "127.0.0.1")


def test_only_mxnet_replicas_lose_a_stray_port():
    environ = {"PORT": "8080", "DMLC_NODE_HOST": "10.0.0.9", "HOME": "/h"}
    (mx,) = parse_objects([specs.mxjob()])
    (pt,) = parse_objects([specs.pytorchjob()])
    context = Context(run_dir="/r")
    for role in ("scheduler", "server", "worker"):
        env = localize(mx, build_plan(mx, Identity(role, 0, "t"), context)).process_env(environ)
        assert (env["HOME"], env["DMLC_NODE_HOST"], "PORT" in env) == ("/h", "127.0.0.1", False)
    env = localize(pt, build_plan(pt, Identity("worker", 0, "t"), context)).process_env(environ)
    assert {k: env[k] for k in environ} == environ
    assert environ == {"PORT": "8080", "DMLC_NODE_HOST": "10.0.0.9", "HOME": "/h"}  # the argument is not changed


def test_set_shortcuts_and_paths():
    obj = specs.mpijob()
    changed = apply_sets(obj, ["Launcher.command=mpirun -np 2 python3 t.py", "Worker.replicas=5",
                               "Launcher.env.FOO=bar", "spec.runPolicy.backoffLimit=2", "spec.slotsPerWorker=3"])
    assert obj == specs.mpijob()  # the argument is not changed
    launcher = changed["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["command"] == ["mpirun", "-np", "2", "python3", "t.py"]
    assert launcher["env"] == [{"name": "FOO", "value": "bar"}]
    assert changed["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] == 5
    assert (changed["spec"]["runPolicy"], changed["spec"]["slotsPerWorker"]) == ({"backoffLimit": 2}, 3)
    t9k = apply_sets(specs.t9kjob(), ['worker.cmd=["python", "x.py"]'])
    assert t9k["spec"]["worker"]["cmd"] == ["python", "x.py"]


@pytest.mark.parametrize("item,text", [("novalue", "expected PATH=VALUE"),
                                       ("spec.mpiReplicaSpecs.Worker.replicas.x=1", "cannot set it here")])
def test_bad_sets(item, text):
    with pytest.raises(SpecError, match=text):
        apply_sets(specs.mpijob(), [item])


def test_launch_argv_openmpi():
    argv = launch_argv("openmpi", 4, ["python", "t.py"], hosts="a:2,b:2", mca=[("btl", "self,tcp")],
                       export=["PATH"], is_root=True)
    assert argv == ["mpirun", "-np", "4", "--tag-output", "--bind-to", "none", "--map-by", ":OVERSUBSCRIBE",
                    "--host", "a:2,b:2", "--mca", "mpi_yield_when_idle", "1", "--allow-run-as-root",
                    "--mca", "btl", "self,tcp", "-x", "PATH", "python", "t.py"]
    # on this machine alone: one-sided windows without UCX; a user's own yield setting replaces ringrun's
    assert launch_argv("openmpi", 2, ["x"], mca=[("mpi_yield_when_idle", "0")], tag=False) == [
        "mpirun", "-np", "2", "--bind-to", "none", "--map-by", ":OVERSUBSCRIBE", "--mca", "osc", "^ucx",
        "--mca", "mpi_yield_when_idle", "0", "x"]
    assert "mpi_yield_when_idle" not in launch_argv("openmpi", 2, ["x"], yield_when_idle=False)


def test_thread_defaults_share_the_cores_unless_set():
    assert thread_defaults(2, 2, {}) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert thread_defaults(3, 16, {"PATH": "/bin"}) == {"OMP_NUM_THREADS": "5", "MKL_NUM_THREADS": "5"}
    assert thread_defaults(8, 2, {}) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert thread_defaults(1, 16, {"MKL_NUM_THREADS": "3"}) == {}  # the user decided (torch reads MKL's over OMP's)
    assert thread_defaults(1, 16, {"OMP_NUM_THREADS": ""}) == {}


def test_launch_argv_mpich():
    assert launch_argv("mpich", 2, ["./a.out"], hostfile="/h", export=["A", "B"]) == [
        "mpirun", "-n", "2", "-prepend-rank", "-f", "/h", "-genvlist", "A,B", "./a.out"]
    with pytest.raises(ValueError, match="Open MPI only"):
        launch_argv("mpich", 2, ["x"], mca=[("a", "b")])

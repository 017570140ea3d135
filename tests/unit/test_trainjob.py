"""A Trainer v2 TrainJob merged with its runtime (runtime/kinds/trainjob.py): runtimePatches, the trainer's
overrides, numNodes, PET_NPROC_PER_NODE's CPU rule, the torch plugin's variables, JobSet's pod names, and the
webhook's refusals. Pure: no process, no server."""

import copy
import os

import pytest
import yaml

from ringrun.runtime import Context, Identity, build_plan, resolve_identity
from ringrun.runtime.errors import SpecError
from ringrun.runtime.kinds import trainjob
from ringrun.runtime.kinds.registry import of
from ringrun.runtime.local import localize, replica_names, with_port
from ringrun.runtime.parse import parse_object, parse_objects

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API = "trainer.kubeflow.org/v1alpha1"


def published(name="torch_distributed"):
    with open(os.path.join(ROOT, "runtime", "trainer_runtimes", f"{name}.yaml")) as f:
        return yaml.safe_load(f)


def lookup(*runtimes):
    found = {(r["kind"], r["metadata"]["name"]): r for r in runtimes}
    return lambda kind, namespace, name: found.get((kind, name))


def job(name="tj", **spec):
    base = {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2, "command": ["python3", "t.py"]}}
    base.update(spec)
    return {"apiVersion": API, "kind": "TrainJob", "metadata": {"name": name, "namespace": "team"}, "spec": base}


def parsed(obj, *runtimes):
    found, problems = parse_object(obj, runtimes=lookup(*(runtimes or (published(),))))
    assert not problems, problems.lines
    return found


def problems_of(obj, *runtimes):
    found, problems = parse_object(obj, runtimes=lookup(*(runtimes or (published(),))))
    assert found is None
    return problems.lines


def test_the_trainer_overrides_the_runtimes_node_container_and_numnodes():
    obj = job(trainer={"numNodes": 3, "image": "ringrun:torch", "command": ["torchrun", "t.py"], "args": ["--x"],
                       "env": [{"name": "A", "value": "1"}]})
    before = copy.deepcopy(obj)
    spec = parsed(obj)
    assert obj == before  # the argument is never changed
    assert (spec.framework, spec.main_container, spec.roles) == ("torch", "node", ("node",))
    node = spec.replica("node")
    assert node.replicas == 3
    main = node.container("node")
    assert (main.image, main.command, main.args, main.env) == ("ringrun:torch", ("torchrun", "t.py"), ("--x",),
                                                               (("A", "1"),))
    assert (spec.trainer.runtime_kind, spec.trainer.runtime_name, spec.trainer.num_nodes) == (
        "ClusterTrainingRuntime", "torch-distributed", 3)


def test_numnodes_from_the_runtime_when_the_trainer_gives_none():
    runtime = published()
    runtime["spec"]["mlPolicy"]["numNodes"] = 4
    assert parsed(job(trainer={"command": ["true"]}), runtime).replica("node").replicas == 4


@pytest.mark.parametrize("resources, nproc", [
    (None, "1"),  # auto, no GPU, no cpu asked for: max(1, 0)
    ({"requests": {"cpu": "2"}, "limits": {"cpu": "4"}}, "2"),  # the request first
    ({"limits": {"cpu": "4"}}, "4"),
    ({"limits": {"cpu": "1500m"}}, "2"),  # Quantity.Value() rounds up
    ({"limits": {"nvidia.com/gpu": "1"}}, "auto"),
])
def test_nproc_per_node_follows_the_torch_plugins_cpu_rule(resources, nproc):
    trainer = {"numNodes": 1, "command": ["true"]}
    if resources is not None:
        trainer["resourcesPerNode"] = resources
    spec = parsed(job(trainer=trainer))
    assert spec.trainer.nproc_per_node == nproc


def test_numprocpernode_given_wins():
    assert parsed(job(trainer={"numNodes": 1, "numProcPerNode": 3, "command": ["true"]})).trainer.nproc_per_node \
        == "3"


def patch(manager, container, env):
    return {"manager": manager, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{
        "name": "node", "template": {"spec": {"template": {"spec": {"containers": [{"name": container,
                                                                                   "env": env}]}}}}}]}}}}


def with_sidecar():
    runtime = published()
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["containers"].append({"name": "sidecar", "image": "side", "env": [{"name": "X", "value": "0"}]})
    return runtime


def test_runtime_patches_apply_in_order_to_the_named_replicated_job():
    first = patch("a.io/one", "sidecar", [{"name": "X", "value": "1"}, {"name": "Y", "value": "1"}])
    second = patch("b.io/two", "sidecar", [{"name": "Y", "value": "2"}])
    spec = parsed(job(runtimePatches=[first, second], trainer={"numNodes": 1, "command": ["true"],
                                                               "env": [{"name": "Z", "value": "3"}]}),
                  with_sidecar())
    node = spec.replica("node")
    assert node.container("sidecar").env == (("X", "1"), ("Y", "2"))
    assert node.container("node").env == (("Z", "3"),)  # the trainer's env goes to `node`


def test_runtime_patches_refused_as_the_jobset_plugin_refuses_them():
    lines = problems_of(job(runtimePatches=[
        patch("platform", "sidecar", []), patch("a.io/x", "node", [{"name": "X", "value": "1"}]),
        patch("a.io/y", "nobody", [])]), with_sidecar())
    assert lines == [
        'spec.runtimePatches[0].manager: must be a domain-prefixed path (such as "acme.io/foo")',
        "spec.runtimePatches: must not have envs for the dataset-initializer, model-initializer, node containers",
        "spec.runtimePatches: must not have container that doesn't exist in the runtime job node"]
    wrong = patch("a.io/z", "sidecar", [])
    wrong["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["name"] = "other"
    assert problems_of(job(runtimePatches=[wrong]), with_sidecar()) == [
        "spec.runtimePatches: must not have replicated job that doesn't exist in the runtime job template"]
    assert problems_of(job(initializer={"model": {"storageUri": "hf://m"}})) == [
        "spec.runtimeRef: must have model-initializer job when trainJob is configured with input modelConfig"]


def test_runtime_patches_change_only_while_suspended():
    from ringrun.runtime.kinds.trainjob import update_problems

    old = job(runtimePatches=[patch("a.io/one", "sidecar", [])])
    new = job(runtimePatches=[])
    assert update_problems(old, new) == [("spec.runtimePatches", "Forbidden: RuntimePatches can only be modified "
                                                                 "when the TrainJob is suspended before or after "
                                                                 "the update")]
    assert update_problems({**old, "spec": {**old["spec"], "suspend": True}}, new) == []
    assert update_problems(old, {**new, "spec": {**new["spec"], "suspend": True}}) == []
    assert update_problems(old, old) == []


def test_the_torch_plugins_variables_and_jobsets_names():
    spec = parsed(job())
    names = [of(spec).pod_name(spec.name, "node", i) for i in range(2)]
    assert names == ["tj-node-0-0", "tj-node-0-1"]
    plan = build_plan(spec, Identity("node", 1, "test"), Context(run_dir="/run/x"))
    env = dict(plan.env)
    assert {k: env[k] for k in ("PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR",
                                "PET_MASTER_PORT", "JOB_COMPLETION_INDEX")} == {
        "PET_NNODES": "2", "PET_NPROC_PER_NODE": "1", "PET_NODE_RANK": "1", "PET_MASTER_ADDR": "tj-node-0-0.tj",
        "PET_MASTER_PORT": "29500", "JOB_COMPLETION_INDEX": "1"}
    assert plan.argv == ("python3", "t.py")
    # one machine: the master's name is this machine, its port the job's own
    local = with_port(spec, 40123)
    assert "tj-node-0-0.tj" in replica_names(local)
    here = dict(localize(local, build_plan(local, Identity("node", 1, "test"), Context(run_dir="/run/x"))).env)
    assert (here["PET_MASTER_ADDR"], here["PET_MASTER_PORT"]) == ("127.0.0.1", "40123")


def test_a_pod_finds_itself_by_its_completion_index_and_host_name():
    spec = parsed(job())
    found = resolve_identity(spec, env={"JOB_COMPLETION_INDEX": "1", "HOSTNAME": "tj-node-0-1"})
    assert (found.role, found.index) == ("node", 1)
    # the MPI policy: the node pods are ringrun's MPI workers, the launcher's pod its launcher
    mpi = parsed(job(runtimeRef={"name": "deepspeed-distributed"}, trainer={"numNodes": 3, "command": ["mpirun"]}),
                 published("deepspeed_distributed"))
    for hostname, index, expected in (("tj-node-0-1", "1", ("worker", 1)), ("tj-launcher-0-0", "0", ("launcher", 0))):
        found = resolve_identity(mpi, env={"JOB_COMPLETION_INDEX": index, "HOSTNAME": hostname})
        assert (found.role, found.index) == expected


def test_the_webhooks_refusals():
    assert problems_of(job(runtimeRef={"name": "gone"})) == [
        'spec.runtimeRef: clustertrainingruntimes.trainer.kubeflow.org "gone" not found: specified '
        "clusterTrainingRuntime must be created before the TrainJob is created"]
    reserved = job(trainer={"numNodes": 1, "command": ["true"], "env": [{"name": "PET_NODE_RANK", "value": "0"},
                                                                      {"name": "PET_NNODES", "value": "9"}]})
    assert problems_of(reserved) == [
        "spec.trainer.env: must not have reserved envs, invalid envs configured: [PET_NNODES PET_NODE_RANK]"]
    assert problems_of(job(runtimeRef={"name": "jax-distributed"}), published("jax_distributed")) == [
        "spec.runtimeRef: ringrun does not run JAX runtimes (mlPolicy.jax): runtime 'jax-distributed'"]
    mpi = job(runtimeRef={"name": "deepspeed-distributed"},
              trainer={"numNodes": 2, "env": [{"name": "OMPI_MCA_plm_rsh_args", "value": "-v"}]})
    assert problems_of(mpi, published("deepspeed_distributed")) == [
        "spec.trainer.env: must not have reserved envs, invalid envs configured: [OMPI_MCA_plm_rsh_args]"]


def test_a_runtime_of_another_kind_or_group_is_unsupported():
    assert problems_of(job(runtimeRef={"name": "x", "kind": "JobSet"})) == [
        "spec.runtimeRef: unsupported runtime: JobSet.trainer.kubeflow.org"]
    assert problems_of(job(runtimeRef={"name": "x", "apiGroup": "example.com"})) == [
        "spec.runtimeRef: unsupported runtime: ClusterTrainingRuntime.example.com"]


def test_a_resumed_trainjob_says_so_and_keeps_its_reported_progress():
    from ringrun.runtime.status import TRAINER

    held = {"conditions": [{"type": "Suspended", "status": "True", "reason": "Suspended",
                            "message": "TrainJob is suspended", "lastTransitionTime": "T0"}],
            "trainerStatus": {"progressPercentage": 5, "lastUpdatedTime": "T1"}}
    running = {"conditions": [], "jobsStatus": []}
    merged = TRAINER.merge(held, running, "T2")
    assert merged["conditions"] == [{"type": "Suspended", "status": "False", "reason": "Resumed",
                                     "message": "TrainJob is resumed", "lastTransitionTime": "T2"}]
    assert merged["trainerStatus"] == held["trainerStatus"]
    done = {"conditions": [{"type": "Complete", "status": "True"}], "jobsStatus": []}
    assert [c["reason"] if c["type"] == "Suspended" else c["type"] for c in TRAINER.merge(merged, done, "T3")[
        "conditions"]] == ["Resumed", "Complete"]  # the resume keeps its time
    assert TRAINER.merge(merged, done, "T3")["conditions"][0]["lastTransitionTime"] == "T2"
    assert TRAINER.merge({}, running, "T2") == running


def test_the_crds_cel_rules_need_no_runtime():
    found, problems = parse_object(job(name="9lives"))
    assert "metadata.name: metadata.name must match RFC 1035 DNS label format" in problems.lines
    found, problems = parse_object(job(managedBy="me"))
    assert problems.lines == ["spec.managedBy: ManagedBy must be trainer.kubeflow.org/trainjob-controller or "
                              "kueue.x-k8s.io/multikueue if set"]
    # alone, a valid TrainJob is accepted with no replicas: its runtime is resolved where the runtimes are
    found, problems = parse_object(job())
    assert not problems and found.replicas == () and found.trainer.runtime_name == "torch-distributed"


def test_a_file_may_hold_the_runtime_beside_its_trainjob():
    runtime = published()
    runtime["kind"], runtime["metadata"]["name"] = "TrainingRuntime", "mine"
    runtime["metadata"]["namespace"] = "team"
    obj = job(runtimeRef={"name": "mine", "kind": "TrainingRuntime"})
    (spec,) = parse_objects([runtime, obj])
    assert spec.trainer.runtime_name == "mine"
    with pytest.raises(SpecError, match="trainingruntimes.trainer.kubeflow.org \"mine\" not found"):
        parse_objects([obj])


def test_the_mpi_policy_a_launcher_and_its_nodes_as_trainers_mpi_plugin_makes_them():
    """deepspeed-distributed: runLauncherAsNode (the launcher is a node too), 1 process a node, the launcher after
    the nodes are Ready; the hostfile names JobSet's endpoints; the launcher's pod gets Trainer's variables."""
    from ringrun.runtime import topology

    spec = parsed(job(runtimeRef={"name": "deepspeed-distributed"}, trainer={"numNodes": 3, "command": ["mpirun"]}),
                  published("deepspeed_distributed"))
    assert spec.framework == "mpi" and spec.roles == ("launcher", "worker")
    launcher, workers = spec.replica("launcher"), spec.replica("worker")
    assert (launcher.type, launcher.replicas, workers.type, workers.replicas) == ("launcher", 1, "node", 2)
    assert launcher.depends_on == (("worker", "Ready"),)
    assert launcher.container("node").command == ("mpirun",)
    assert workers.container("node").command == ("/usr/sbin/sshd",)  # the trainer's command is the launcher's
    assert (spec.mpi.slots_per_worker, spec.mpi.run_launcher_as_worker, spec.mpi.ssh_auth_mount_path) == (
        1, True, "/home/mpiuser/.ssh")
    assert [of(spec).pod_name(spec.name, r, i) for r, i in (("launcher", 0), ("worker", 0), ("worker", 1))] == [
        "tj-launcher-0-0", "tj-node-0-0", "tj-node-0-1"]
    assert topology.hostfile(spec) == ("tj-launcher-0-0.tj slots=1\ntj-node-0-0.tj slots=1\n"
                                       "tj-node-0-1.tj slots=1\n")
    pod = of(spec).operator_pod(spec, "launcher", 0)
    env = dict(pod.env)
    assert {k: env[k] for k in ("OMPI_MCA_orte_default_hostfile", "OMPI_MCA_orte_keep_fqdn_hostnames",
                                "OMPI_MCA_orte_set_default_slots", "OMPI_MCA_plm_rsh_args")} == {
        "OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile", "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
        "OMPI_MCA_orte_set_default_slots": "1", "OMPI_MCA_plm_rsh_args": "-o ConnectionAttempts=10"}
    assert pod.ssh and pod.config == ("/etc/mpi", (("hostfile", topology.hostfile(spec)),))
    assert of(spec).pod_labels(spec.name, "worker", 1)["jobset.sigs.k8s.io/replicatedjob-name"] == "node"


def test_the_mpi_policy_without_the_launcher_as_a_node_and_numprocpernode():
    runtime = published("deepspeed_distributed")
    runtime["spec"]["mlPolicy"]["mpi"].update(runLauncherAsNode=False, numProcPerNode=2)
    spec = parsed(job(runtimeRef={"name": "deepspeed-distributed"}, trainer={"numNodes": 2, "command": ["true"]}),
                  runtime)
    assert (spec.count("worker"), spec.mpi.slots_per_worker, spec.mpi.run_launcher_as_worker) == (2, 2, False)
    given = parsed(job(runtimeRef={"name": "deepspeed-distributed"},
                       trainer={"numNodes": 2, "numProcPerNode": 4, "command": ["true"]}), runtime)
    assert given.mpi.slots_per_worker == 4


def test_an_mpi_launcher_on_one_machine_reads_this_runs_hostfile():
    runtime = published("deepspeed_distributed")
    spec = parsed(job(runtimeRef={"name": "deepspeed-distributed"},
                      trainer={"numNodes": 2, "command": ["mpirun", "--hostfile", "/etc/mpi/hostfile", "true"]}),
                  runtime)
    plan = localize(spec, build_plan(spec, Identity("launcher", 0, "test"), Context(run_dir="/run/x")))
    assert plan.argv == ("mpirun", "--hostfile", "/run/x/hostfile", "true")
    assert dict(plan.files)["/run/x/hostfile"] == "localhost slots=2\n"
    assert "/etc/mpi/hostfile in the command is this run's hostfile, /run/x/hostfile" in plan.notes


def test_pods_restart_on_failure_up_to_the_trainer_jobs_backoff_limit():
    spec = parsed(job())
    assert spec.replica("node").restart_policy == "OnFailure"  # JobSet's webhook default
    assert spec.run_policy.backoff_limit is None  # a Job's default, 6, from runtime/policy.py
    runtime = published()
    node = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]
    node["spec"]["backoffLimit"] = 0
    node["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    strict = parsed(job(), runtime)
    assert (strict.replica("node").restart_policy, strict.run_policy.backoff_limit) == ("Never", 0)


def test_what_a_trainjob_asks_for_and_who_manages_it():
    from ringrun.runtime.effects import ignored_locally
    from ringrun.server.api.objects import job_requests

    spec = parsed(job(trainer={"numNodes": 2, "command": ["true"], "resourcesPerNode": {
        "requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}}))
    assert job_requests(spec) == (4.0, 8 * 2**30)  # requests win over limits, for each of the 2 nodes
    assert parsed(job()).trainer.managed_by is None and ignored_locally(parsed(job())) == []
    elsewhere = parsed(job(managedBy="kueue.x-k8s.io/multikueue"))
    assert elsewhere.trainer.managed_by == "kueue.x-k8s.io/multikueue"
    assert [path for path, _ in ignored_locally(elsewhere)] == ["spec.managedBy"]
    # Trainer's own controller is who ringrun stands in for
    assert parsed(job(managedBy="trainer.kubeflow.org/trainjob-controller")).trainer.managed_by is None


@pytest.mark.parametrize("name", ["flux-interactive", "lammps-train-job", "lammps-train-gpus"])
def test_trainers_flux_examples_are_refused_naming_why(name):
    """examples/flux at v2.3.0: the runtime is a valid ClusterTrainingRuntime; its TrainJobs need Flux (the flux
    plugin's init container and brokers, LAMMPS images), which ringrun does not run: refused, saying so."""
    folder = os.path.join(ROOT, "tests", "fixtures", "trainer-examples", "flux")
    objects = [yaml.safe_load(open(os.path.join(folder, f"{f}.yaml"))) for f in ("flux-runtime", name)]
    with pytest.raises(SpecError) as refused:
        parse_objects(objects)
    assert str(refused.value) == ("[1].spec.runtimeRef: ringrun does not run Flux runtimes (mlPolicy.flux): runtime "
                                  "'flux-distributed'")

"""Bad input: every problem reported as `field.path: message` with the offending value, exit code 2, no traceback."""

import json

import pytest

import specs
from conftest import run_cli


def mutate(factory, change, **kwargs):
    obj = factory(**kwargs)
    change(obj)
    return obj


def mpi_replica(obj, role):
    return obj["spec"]["mpiReplicaSpecs"][role]


def launcher_container(obj):
    return mpi_replica(obj, "Launcher")["template"]["spec"]["containers"][0]


def setitem(path, value):
    """A mutation setting obj[path...] = value."""
    def change(obj):
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return change


def delitem(path):
    def change(obj):
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return change


L = ["spec", "mpiReplicaSpecs", "Launcher"]
W = ["spec", "mpiReplicaSpecs", "Worker"]
LC = L + ["template", "spec", "containers", 0]

# (id, spec object or raw text, expected substrings of stderr: the field path and the offending value)
BAD = [
    ("unknown-apiversion", mutate(specs.mpijob, setitem(["apiVersion"], "kubeflow.org/v9")),
     ["kind: unsupported apiVersion/kind 'kubeflow.org/v9' 'MPIJob'"]),
    ("unknown-kind", mutate(specs.mpijob, setitem(["kind"], "TFJob")), ["kind: unsupported", "'TFJob'"]),
    ("missing-kind", mutate(specs.mpijob, delitem(["kind"])), ["kind: required field is missing"]),
    ("apiversion-not-string", mutate(specs.mpijob, setitem(["apiVersion"], 3)),
     ["apiVersion: must be a string, got 3 (integer)"]),
    ("yaml-not-mapping", "- 1\n- 2\n", ["[0]: a job spec must be a mapping", "got 1 (integer)"]),
    ("yaml-scalar", "just a string\n", ["<document>: a job spec must be a mapping", "'just a string' (string)"]),
    ("invalid-yaml", "spec: [unclosed\n", ["not valid YAML or JSON (line"]),
    ("empty-file", "", ["holds no job spec"]),
    ("missing-metadata-name", mutate(specs.mpijob, delitem(["metadata", "name"])),
     ["metadata.name: required field is missing"]),
    ("name-not-dns1123", mutate(specs.mpijob, setitem(["metadata", "name"], "My_Job")),
     ["metadata.name: must be a DNS-1123 label", "'My_Job'"]),
    ("name-too-long", mutate(specs.mpijob, setitem(["metadata", "name"], "a" * 64)),
     ["metadata.name: must be a DNS-1123 label"]),
    ("namespace-not-dns1123", mutate(specs.mpijob, setitem(["metadata", "namespace"], "-ns")),
     ["metadata.namespace: must be a DNS-1123 label", "'-ns'"]),
    ("spec-missing", mutate(specs.mpijob, delitem(["spec"])), ["spec: required field is missing"]),
    ("spec-is-list", mutate(specs.mpijob, setitem(["spec"], [1])), ["spec: must be a mapping, got [1] (list)"]),
    ("negative-replicas", mutate(specs.mpijob, setitem(W + ["replicas"], -1)),
     ["spec.mpiReplicaSpecs.Worker.replicas: must be >= 0, got -1"]),
    ("missing-replicas", mutate(specs.mpijob, delitem(W + ["replicas"])),
     ["spec.mpiReplicaSpecs.Worker.replicas: required field is missing"]),
    ("replicas-string", mutate(specs.mpijob, setitem(W + ["replicas"], "2")),
     ["spec.mpiReplicaSpecs.Worker.replicas: must be an integer, got '2' (string)"]),
    ("replicas-bool", mutate(specs.mpijob, setitem(W + ["replicas"], True)),
     ["spec.mpiReplicaSpecs.Worker.replicas: must be an integer, got True (boolean)"]),
    ("replicas-float", mutate(specs.mpijob, setitem(W + ["replicas"], 2.5)),
     ["spec.mpiReplicaSpecs.Worker.replicas: must be an integer, got 2.5 (number)"]),
    ("two-launchers", mutate(specs.mpijob, setitem(L + ["replicas"], 2)),
     ["spec.mpiReplicaSpecs.Launcher.replicas: Launcher must have exactly 1 replica, got 2"]),
    ("no-launcher", mutate(specs.mpijob, delitem(L)),
     ["spec.mpiReplicaSpecs.Launcher: required: a Launcher replica type"]),
    ("two-masters", mutate(specs.pytorchjob, setitem(["spec", "pytorchReplicaSpecs", "Master", "replicas"], 2)),
     ["spec.pytorchReplicaSpecs.Master.replicas: Master must have exactly 1 replica, got 2"]),
    ("zero-schedulers", mutate(specs.mxjob, setitem(["spec", "mxReplicaSpecs", "Scheduler", "replicas"], 0)),
     ["spec.mxReplicaSpecs.Scheduler.replicas: Scheduler must have exactly 1 replica, got 0"]),
    ("no-containers", mutate(specs.mpijob, setitem(W + ["template", "spec", "containers"], [])),
     ["spec.mpiReplicaSpecs.Worker.template.spec.containers: must not be empty"]),
    ("containers-missing", mutate(specs.mpijob, delitem(W + ["template", "spec", "containers"])),
     ["spec.mpiReplicaSpecs.Worker.template.spec.containers: required field is missing"]),
    ("container-name-bad", mutate(specs.mpijob, setitem(LC + ["name"], "Main")),
     ["spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].name: must be a DNS-1123 label", "'Main'"]),
    ("bad-memory-quantity", mutate(specs.mpijob, setitem(LC + ["resources"], {"limits": {"memory": "2GB!"}})),
     ["containers[0].resources.limits.memory: must be a resource quantity", "'2GB!'"]),
    ("negative-cpu", mutate(specs.mpijob, setitem(LC + ["resources"], {"requests": {"cpu": -1}})),
     ["containers[0].resources.requests.cpu: must be a non-negative quantity, got -1"]),
    ("command-not-list", mutate(specs.mpijob, setitem(LC + ["command"], "mpirun python t.py")),
     ["containers[0].command: must be a list, got 'mpirun python t.py' (string)"]),
    ("command-element-number", mutate(specs.mpijob, setitem(LC + ["args"], ["-n", 4])),
     ["containers[0].args[1]: must be a string, got 4 (integer)"]),
    ("bad-port", mutate(specs.mpijob, setitem(LC + ["ports"], [{"containerPort": 70000}])),
     ["containers[0].ports[0].containerPort: must be <= 65535, got 70000"]),
    ("bad-env-name", mutate(specs.mpijob, setitem(LC + ["env"], [{"name": "A B", "value": "1"}])),
     ["containers[0].env[0].name: must be a valid environment variable name, got 'A B'"]),
    ("unknown-restart-policy", mutate(specs.mpijob, setitem(W + ["restartPolicy"], "Sometimes")),
     ["spec.mpiReplicaSpecs.Worker.restartPolicy: must be one of Always, OnFailure, Never, ExitCode; got 'Sometimes'"]),
    ("unknown-clean-pod-policy", mutate(specs.mpijob, setitem(["spec", "runPolicy"], {"cleanPodPolicy": "Some"})),
     ["spec.runPolicy.cleanPodPolicy: must be one of None, Running, All; got 'Some'"]),
    ("inline-clean-pod-policy", mutate(specs.mxjob, setitem(["spec", "cleanPodPolicy"], "Never")),
     ["spec.cleanPodPolicy: must be one of None, Running, All; got 'Never'"]),
    ("conflicting-run-policy", mutate(specs.mxjob, lambda o: o["spec"].update(
        cleanPodPolicy="All", runPolicy={"cleanPodPolicy": "None"})),
     ["spec.cleanPodPolicy: conflicts with spec.runPolicy.cleanPodPolicy"]),
    ("negative-backoff", mutate(specs.mpijob, setitem(["spec", "runPolicy"], {"backoffLimit": -3})),
     ["spec.runPolicy.backoffLimit: must be >= 0, got -3"]),
    ("zero-deadline", mutate(specs.mpijob, setitem(["spec", "runPolicy"], {"activeDeadlineSeconds": 0})),
     ["spec.runPolicy.activeDeadlineSeconds: must be >= 1, got 0"]),
    ("unknown-job-mode", mutate(specs.mxjob, setitem(["spec", "jobMode"], "MXServe")),
     ["spec.jobMode: must be one of MXTrain, MXTune; got 'MXServe'"]),
    ("role-of-other-mode", mutate(specs.mxjob, setitem(["spec", "mxReplicaSpecs", "Tuner"],
                                                       {"replicas": 1, "template": specs.template(
                                                           specs.container("mxnet"))})),
     ["spec.mxReplicaSpecs.Tuner: not a role of jobMode MXTrain"]),
    ("unknown-replica-type", mutate(specs.pytorchjob, setitem(["spec", "pytorchReplicaSpecs", "Chief"], {})),
     ["spec.pytorchReplicaSpecs.Chief: unknown replica type (known: Master, Worker)"]),
    ("unknown-spec-field", mutate(specs.mpijob, setitem(["spec", "slotPerWorker"], 2)),
     ["spec.slotPerWorker: unknown field"]),
    ("slots-zero", mutate(specs.mpijob, setitem(["spec", "slotsPerWorker"], 0)),
     ["spec.slotsPerWorker: must be >= 1, got 0"]),
    ("unknown-mpi-implementation", mutate(specs.mpijob, setitem(["spec", "mpiImplementation"], "MVAPICH")),
     ["spec.mpiImplementation: must be one of OpenMPI, Intel, MPICH; got 'MVAPICH'"]),
    ("nproc-per-node-word", mutate(specs.pytorchjob, setitem(["spec", "nprocPerNode"], "many")),
     ["spec.nprocPerNode: must be a positive integer or one of auto, cpu, gpu; got 'many'"]),
    ("elastic-min-above-max", mutate(specs.pytorchjob, setitem(["spec", "elasticPolicy"],
                                                               {"minReplicas": 5, "maxReplicas": 2})),
     ["spec.elasticPolicy.minReplicas: must be <= maxReplicas (2), got 5"]),
    ("t9k-empty-cmd", mutate(specs.t9kjob, setitem(["spec", "worker", "cmd"], [])),
     ["spec.worker.cmd: must not be empty"]),
    ("t9k-missing-cmd", mutate(specs.t9kjob, delitem(["spec", "worker", "cmd"])),
     ["spec.worker.cmd: required field is missing"]),
    ("t9k-wrong-container", mutate(specs.t9kjob, setitem(["spec", "worker", "template"],
                                                         specs.template(specs.container("main")))),
     ["spec.worker.template.spec.containers: must contain a container named 'mpi-worker'"]),
    ("t9k-clean-up", mutate(specs.t9kjob, setitem(["spec", "runPolicy"], {"cleanUpWorkers": "All"})),
     ["spec.runPolicy.cleanUpWorkers: must be one of all, unfinished, none; got 'All'"]),
    ("t9k-mca-number", mutate(specs.t9kjob, setitem(["spec", "mca"], {"mpi_yield_when_idle": 1})),
     ["spec.mca.mpi_yield_when_idle: must be a string, got 1 (integer)"]),
    ("t9k-priority", mutate(specs.t9kjob, setitem(["spec", "scheduler"], {"t9kScheduler": {"queue": "q",
                                                                                          "priority": 101}})),
     ["spec.scheduler.t9kScheduler.priority: must be <= 100, got 101"]),
    ("t9k-queue-missing", mutate(specs.t9kjob, setitem(["spec", "scheduler"], {"t9kScheduler": {}})),
     ["spec.scheduler.t9kScheduler.queue: required field is missing"]),
    ("t9k-debug-type", mutate(specs.t9kjob, setitem(["spec", "runMode"], {"debug": {
        "enable": True, "replicaSpecs": [{"type": "chief"}]}})),
     ["spec.runMode.debug.replicaSpecs[0].type: must be one of master, launcher, worker; got 'chief'"]),
    ("t9k-debug-and-pause", mutate(specs.t9kjob, setitem(["spec", "runMode"], {"debug": {"enable": True},
                                                                               "pause": {"enable": True}})),
     ["spec.runMode: debug and pause cannot both be enabled"]),
]


@pytest.mark.parametrize("name,obj,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_spec(tmp_path, name, obj, expected):
    path = tmp_path / "job.yaml"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    code, out, err = run_cli(["validate", str(path)])
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert all(line.startswith("ringrun validate: ") for line in err.splitlines())


def test_table_is_large_enough():
    assert len(BAD) >= 30


def test_every_problem_is_reported_at_once(tmp_path):
    obj = specs.mpijob()
    obj["metadata"]["name"] = "Bad_Name"
    obj["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] = -1
    obj["spec"]["slotsPerWorker"] = "two"
    obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "lots"}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(obj))
    code, _, err = run_cli(["validate", str(path)])
    assert code == 2
    assert len(err.splitlines()) == 4
    for field in ("metadata.name:", "spec.mpiReplicaSpecs.Worker.replicas:", "spec.slotsPerWorker:",
                  "resources.limits.cpu:"):
        assert field in err


def test_problems_in_several_objects_are_prefixed(tmp_path):
    bad_mpi, bad_pt = specs.mpijob(workers=-1), specs.pytorchjob()
    bad_pt["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 3
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps([bad_mpi, bad_pt]))
    code, _, err = run_cli(["validate", str(path)])
    assert code == 2
    assert "[0].spec.mpiReplicaSpecs.Worker.replicas: must be >= 0, got -1" in err
    assert "[1].spec.pytorchReplicaSpecs.Master.replicas: Master must have exactly 1 replica, got 3" in err


@pytest.mark.parametrize("args,expected", [
    (["validate", "/nonexistent/job.yaml"], "/nonexistent/job.yaml: no such file"),
    (["validate", "/"], "/: is a directory"),
])
def test_unreadable_files(args, expected):
    code, out, err = run_cli(args)
    assert (code, out) == (2, "")
    assert expected in err and "Traceback" not in err

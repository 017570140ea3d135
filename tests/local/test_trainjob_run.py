"""`ringrun run` of Trainer v2 TrainJobs (issue 27): Trainer's own published examples at v2.3.0
(tests/fixtures/trainer-examples, unchanged) with the published runtimes, and a runtime with ordered steps."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import FIXTURES

RINGRUN = os.path.join(os.path.dirname(sys.executable), "ringrun")
EXAMPLES = FIXTURES / "trainer-examples"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed: install the `torch` extra (make test does)")


def run(spec, tmp_path, *args, timeout=240):
    """`ringrun run SPEC --log-dir --status` in a folder of its own: (process, status document, {replica:
    stdout})."""
    logs, status = tmp_path / "logs", tmp_path / "status.json"
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}")
    done = subprocess.run([RINGRUN, "run", str(spec), "--log-dir", str(logs), "--status", str(status), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)
    document = json.loads(status.read_text()) if status.exists() else None
    outputs = {p.name.split(".")[0]: p.read_text() for p in logs.glob("*.stdout.log")} if logs.exists() else {}
    return done, document, outputs


def condition(document):
    (last,) = document["status"]["conditions"]
    return last["type"], last["reason"]


@needs_torch
def test_multi_node_example_three_nodes_one_gloo_group(tmp_path):
    done, document, outputs = run(EXAMPLES / "01-multi-node.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    assert condition(document) == ("Complete", "AllJobsCompleted")
    assert sorted(outputs) == ["node-0", "node-1", "node-2"]
    for index in range(3):
        lines = outputs[f"node-{index}"].splitlines()
        assert "WORLD_SIZE: 3" in lines and f"RANK: {index}" in lines and "LOCAL_RANK: 0" in lines
    # each node ran in a folder of its own, named like its pod
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("multi-node")) == [
        "multi-node-example-node-0-0", "multi-node-example-node-0-1", "multi-node-example-node-0-2"]


@needs_torch
def test_runtime_patches_example_two_processes_per_node(tmp_path):
    # resourcesPerNode requests 2 cpus: PET_NPROC_PER_NODE 2, so 2 nodes x 2 processes
    done, document, outputs = run(EXAMPLES / "02-runtime-patches.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    assert condition(document) == ("Complete", "AllJobsCompleted")
    ranks = sorted(line for text in outputs.values() for line in text.splitlines() if line.startswith("RANK: "))
    assert ranks == ["RANK: 0", "RANK: 1", "RANK: 2", "RANK: 3"]
    assert all(text.count("CUSTOM_VAR: custom-value") == 2 and text.count("WORLD_SIZE: 4") == 2
               for text in outputs.values())


def test_kueue_example_stays_suspended(tmp_path):
    # suspend: true until Kueue admits it: ringrun holds it, as Trainer does, and says so
    done, document, _ = run(EXAMPLES / "03-kueue-integration.yaml", tmp_path, timeout=60)
    assert done.returncode == 7, done.stderr
    assert condition(document) == ("Suspended", "Suspended")
    assert document["status"]["jobsStatus"] == [{"name": "node", "ready": 0, "succeeded": 0, "failed": 0,
                                                 "active": 0, "suspended": 1}]


def test_volcano_example_four_nodes(tmp_path):
    # its runtime (in the same file) asks for Volcano's gang scheduling: on one machine every node starts at once;
    # `--set node.replicas` is the trainer's numNodes
    done, document, outputs = run(EXAMPLES / "04-volcano-integration.yaml", tmp_path, "--set", "node.replicas=4")
    assert done.returncode == 0, done.stderr
    assert condition(document) == ("Complete", "AllJobsCompleted")
    for index in range(4):
        assert outputs[f"node-{index}"].splitlines()[0] == f"Node {index}/4 started via Volcano gang scheduling"


def test_multi_step_example_is_refused_as_trainers_webhook_refuses_it(tmp_path):
    # at v2.3.0 its runtime's dataset-initializer container lacks the `initializer` volumeMount that Trainer's
    # JobSet plugin requires of a TrainJob with a dataset initializer; with it, its initializer (Trainer's image,
    # fetching hf://) could not run here anyway
    done, document, _ = run(EXAMPLES / "05-multi-step.yaml", tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("ringrun run: [1].spec.runtimeRef: must have volumeMount with name - initializer in "
                           "container dataset-initializer of the dataset-initializer job\n")
    assert document is None


def test_ordered_steps_the_initializer_completes_before_the_nodes_start(tmp_path):
    """A runtime of the user's own with a dataset initializer the nodes depend on (Complete): the initializer gets
    STORAGE_URI and the TrainJob's env, and the nodes start only after it has written its mark."""
    runtime = yaml.safe_load((EXAMPLES / "05-multi-step.yaml").read_text().split("\n---\n")[0])
    init = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    init["volumes"] = [{"name": "initializer", "emptyDir": {}}]
    init["containers"][0]["volumeMounts"] = [{"name": "initializer", "mountPath": "/workspace"}]
    init["containers"][0]["command"] = [sys.executable, "-c", (
        "import os, time; time.sleep(1); print(os.environ['STORAGE_URI']); "
        "open(os.environ['MARK'], 'w').write('ready')")]
    mark = tmp_path / "mark"
    job = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "steps"},
           "spec": {"runtimeRef": {"kind": "TrainingRuntime", "name": "torch-with-dataset-init"},
                    "initializer": {"dataset": {"storageUri": "file:///data/set",
                                                "env": [{"name": "MARK", "value": str(mark)}]}},
                    "trainer": {"numNodes": 2, "command": [sys.executable, "-c", f"print(open({str(mark)!r}).read())"],
                                "resourcesPerNode": {"limits": {"cpu": "1"}}}}}
    spec = tmp_path / "steps.yaml"
    spec.write_text(yaml.safe_dump_all([runtime, job]))
    done, document, outputs = run(spec, tmp_path)
    assert done.returncode == 0, done.stderr
    assert condition(document) == ("Complete", "AllJobsCompleted")
    assert outputs == {"dataset-initializer-0": "file:///data/set\n", "node-0": "ready\n", "node-1": "ready\n"}
    assert [s["name"] for s in document["status"]["jobsStatus"]] == ["dataset-initializer", "node"]

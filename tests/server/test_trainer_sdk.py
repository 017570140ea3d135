"""The Kubeflow SDK (kubeflow==0.5.0, in .venv-trainer-sdk: it needs kubernetes<36) unchanged against `ringrun serve`:
its TrainerClient's Kubernetes backend finds Trainer's published runtimes, and trains a function on 2 nodes."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")

import json
import os
import subprocess
import sys

from rawhttp import request
from serverproc import ROOT, wait_until

SDK_PYTHON = os.path.join(ROOT, ".venv-trainer-sdk", "bin", "python")
pytestmark = pytest.mark.skipif(not os.path.exists(SDK_PYTHON), reason=".venv-trainer-sdk is missing: `make test` "
                                                                       "builds it with the `trainer-sdk` extra")
RUNTIMES = os.path.join(ROOT, "runtime", "trainer_runtimes")  # Trainer v2.3.0's, as published


def sdk(server, namespace, what, timeout=120):
    """Run tests/server/trainer_sdk_client.py's `what` with the SDK's Python; its finished process."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir)}
    done = subprocess.run([SDK_PYTHON, os.path.join(ROOT, "tests", "server", "trainer_sdk_client.py"),
                           server.kubeconfig, namespace, what], capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, done.stderr
    return done


def test_sdk_lists_and_gets_the_published_runtimes(fresh_server):
    import yaml

    server = fresh_server()  # Trainer's published runtimes installed on its first start
    # a namespaced runtime of the user's own, beside the cluster's
    own = yaml.safe_load(open(os.path.join(RUNTIMES, "torch_distributed.yaml")))
    own["kind"], own["metadata"]["name"] = "TrainingRuntime", "team-torch"
    own["spec"]["mlPolicy"]["numNodes"] = 2
    assert request(server, "POST", "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainingruntimes",
                   own)[0] == 201
    done = sdk(server, "team", "runtimes")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["runtimes"] == sorted([
        ["deepspeed-distributed", "ClusterTrainingRuntime", "deepspeed", 1],
        ["jax-distributed", "ClusterTrainingRuntime", "jax", 1],
        ["mlx-distributed", "ClusterTrainingRuntime", "mlx", 1],
        ["team-torch", "TrainingRuntime", "torch", 2],
        ["torch-distributed", "ClusterTrainingRuntime", "torch", 1],
        ["torch-distributed-with-cache", "ClusterTrainingRuntime", "torch", 1],
        ["torchtune-llama3.2-1b", "ClusterTrainingRuntime", "torchtune", 1],
        ["xgboost-distributed", "ClusterTrainingRuntime", "xgboost", 1]])
    assert answer["torch"] == {"name": "torch-distributed", "image": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime",
                               "framework": "torch", "trainer_type": "CustomTrainer"}
    # the SDK read the public ConfigMap first: no warning about a missing one
    assert "kubeflow-trainer-public" not in done.stderr, done.stderr


def test_sdk_trains_a_function_on_two_nodes(fresh_server):
    pytest.importorskip("torch", reason="the torch extra (the CPU wheel) is installed by `make test`")
    # the jobs run the SDK's `torchrun`, from this Python's environment (a cluster's image would have it)
    bin_dir = os.path.dirname(sys.executable)
    server = fresh_server(env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    answer = json.loads(sdk(server, "team", "train", timeout=300).stdout.strip().splitlines()[-1])
    name = answer["name"]
    assert answer["waited"] == answer["status"] == "Complete", answer
    assert answer["num_nodes"] == 2
    assert answer["steps"] == [["node-0", "Succeeded", f"{name}-node-0-0"], ["node-1", "Succeeded", f"{name}-node-0-1"]]
    # each node's own log, read from its pod's `node` container: the allreduce of 1 + 2 on both ranks
    assert answer["logs"]["node-0"][-1].strip() == "rank 0 of 2: sum 3"
    assert answer["logs"]["node-1"][-1].strip() == "rank 1 of 2: sum 3"
    assert answer["listed"] == [name]
    assert ("TrainJob", name, "AllJobsCompleted") in [tuple(e) for e in answer["events"]]
    assert ("TrainJob", name, "SuccessfulCreatePod") in [tuple(e) for e in answer["events"]]
    assert answer["after_delete"] == []
    # the runtime the job started with was kept as Trainer keeps it, and goes with the job
    wait_until(lambda: request(server, "GET", f"/api/v1/namespaces/team/configmaps/{name}-runtime-snapshot")[0] == 404,
               timeout=90, interval=0.5, what="the runtime snapshot collected")

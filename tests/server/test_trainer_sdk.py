"""The Kubeflow SDK (kubeflow==0.5.0, in .venv-trainer-sdk: it needs kubernetes<36) unchanged against `ringrun serve`:
its TrainerClient's Kubernetes backend finds Trainer's published runtimes (issue 27; TrainJobs come next)."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")

import json
import os
import subprocess

from rawhttp import request
from serverproc import ROOT

SDK_PYTHON = os.path.join(ROOT, ".venv-trainer-sdk", "bin", "python")
pytestmark = pytest.mark.skipif(not os.path.exists(SDK_PYTHON), reason=".venv-trainer-sdk is missing: `make test` "
                                                                       "builds it with the `trainer-sdk` extra")
RUNTIMES = os.path.join(ROOT, "server", "trainer_runtimes")  # Trainer v2.3.0's, as published


def test_sdk_lists_and_gets_the_published_runtimes(fresh_server):
    import yaml

    server = fresh_server()  # Trainer's published runtimes installed on its first start
    # a namespaced runtime of the user's own, beside the cluster's
    own = yaml.safe_load(open(os.path.join(RUNTIMES, "torch_distributed.yaml")))
    own["kind"], own["metadata"]["name"] = "TrainingRuntime", "team-torch"
    own["spec"]["mlPolicy"]["numNodes"] = 2
    assert request(server, "POST", "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainingruntimes",
                   own)[0] == 201
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.dirname(server.data_dir)}
    done = subprocess.run([SDK_PYTHON, os.path.join(ROOT, "tests", "server", "trainer_sdk_client.py"),
                           server.kubeconfig, "team"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
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

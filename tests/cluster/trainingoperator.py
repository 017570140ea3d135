"""What training-operator gives a PyTorchJob's and an MXJob's pods (shared/ANCHORS.md), for tests that run pods as
containers: a headless Service per replica named like its pod (`<job>-<role>-<i>`, resolvable by that name in the
namespace) and these variables in the framework's container."""

import json

PYTORCH_PORT, MXNET_PORT = 23456, 9091


def pytorch_env(job, role, index, workers, nproc=1, port=PYTORCH_PORT):
    """MASTER_ADDR/PORT at the master's Service, the node's RANK (workers from 1), WORLD_SIZE = nodes x nprocPerNode,
    torchrun's PET_* names for the same, PYTHONUNBUFFERED."""
    nodes = 1 + workers
    rank = 0 if role == "master" else index + 1
    master = f"{job}-master-0"
    return {"MASTER_ADDR": master, "MASTER_PORT": str(port), "WORLD_SIZE": str(nodes * nproc), "RANK": str(rank),
            "PET_MASTER_ADDR": master, "PET_MASTER_PORT": str(port), "PET_NNODES": str(nodes),
            "PET_NPROC_PER_NODE": str(nproc), "PET_NODE_RANK": str(rank), "PYTHONUNBUFFERED": "1"}


def mxnet_env(job, role, index, counts, port=MXNET_PORT):
    """MX_CONFIG (every replica's Service and this one's task), ps-lite's DMLC_* for the scheduler's Service."""
    cluster = {r: [{"url": f"{job}-{r}-{i}", "port": port} for i in range(n)] for r, n in counts.items()}
    env = {"MX_CONFIG": json.dumps({"cluster": cluster, "labels": {r: "" for r in counts},
                                    "task": {"type": role, "index": index}}),
           "DMLC_PS_ROOT_URI": f"{job}-scheduler-0", "DMLC_PS_ROOT_PORT": str(port),
           "DMLC_NUM_SERVER": str(counts.get("server", 0)), "DMLC_NUM_WORKER": str(counts.get("worker", 0)),
           "DMLC_ROLE": role, "DMLC_USE_KUBERNETES": "1"}
    if role == "worker":
        env["DMLC_WORKER_ID"] = str(index)
    return env

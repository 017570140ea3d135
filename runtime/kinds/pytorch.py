"""Kubeflow PyTorchJob: kubeflow.org/v1 (training-operator)."""

import re

from .. import env as envs
from ..model import ElasticPolicy, JobSpec, PyTorchOptions, OperatorPod
from . import common

RDZV_BACKENDS = ("c10d", "etcd", "etcd-v2", "static")
DEFAULT_RESTART = {"Master": "OnFailure", "Worker": "OnFailure"}


def parse(doc, api_version, kind):
    name, namespace, spec = common.job_spec(doc)
    if spec is None:
        return None
    replicas_field = spec["pytorchReplicaSpecs"]
    replicas, seen = common.replica_specs(replicas_field, ("Master", "Worker"), DEFAULT_RESTART,
                                          default_replicas={"Master": 1, "Worker": 1})  # training-operator's
    elastic = _elastic(spec["elasticPolicy"]) if spec["elasticPolicy"].present else None
    # training-operator derives MASTER_ADDR from the Master; an elastic job may instead rendezvous at worker-0.
    common.require_single(replicas_field, replicas, seen, "Master", required=elastic is None)
    if elastic is not None and "worker" not in seen and isinstance(replicas_field.value, dict):
        replicas_field["Worker"].error("required: an elastic PyTorchJob needs a Worker replica type")
    nproc = _nproc(spec["nprocPerNode"])
    if elastic is not None and elastic.nproc_per_node is not None and nproc is not None:
        # training-operator v1.7.0 pkg/apis/kubeflow.org/v1 validation (the webhook from v1.8): one or the other
        spec["elasticPolicy"]["nProcPerNode"].error("must not be set together with spec.nprocPerNode (deprecated: "
                                                    "use spec.nprocPerNode)")
    run_policy = common.run_policy(spec)
    if not replicas or (elastic is None and "master" not in replicas):
        return None
    options = PyTorchOptions(nproc_per_node=nproc, elastic=elastic)
    return JobSpec(api_version, kind, name, namespace, "pytorch",
                   tuple(replicas[r] for r in ("master", "worker") if r in replicas), run_policy, pytorch=options)


def _nproc(f):
    """`nprocPerNode`: a positive count (integer or digits) or one of torchrun's words auto, cpu, gpu; None when
    absent."""
    if not f.present:
        return None
    if isinstance(f.value, int) and not isinstance(f.value, bool):
        value = f.integer(minimum=1, maximum=1024)
        return str(value) if value is not None else None
    value = f.string()
    if value is None:
        return None
    if value in ("auto", "cpu", "gpu") or (re.fullmatch(r"[1-9][0-9]{0,3}", value)):
        return value
    f.error(f"must be a positive integer or one of auto, cpu, gpu; got {value!r}")
    return None


def _elastic(f):
    if f.mapping() is None:
        return None
    low = f["minReplicas"].integer(minimum=1, maximum=common.MAX_REPLICAS)
    high = f["maxReplicas"].integer(minimum=1, maximum=common.MAX_REPLICAS)
    if low is not None and high is not None and low > high:
        f["minReplicas"].error(f"must be <= maxReplicas ({high}), got {low}")
    conf = []
    for item in f["rdzvConf"].elements():
        if item.mapping(required=True) is not None:
            key, value = item["key"].string(required=True, nonempty=True), item["value"].string(default="")
            if key is not None and value is not None:
                conf.append((key, value))
    return ElasticPolicy(
        min_replicas=low,
        max_replicas=high,
        rdzv_backend=f["rdzvBackend"].string(default="c10d", choices=RDZV_BACKENDS) or "c10d",
        rdzv_host=f["rdzvHost"].string(nonempty=True),
        rdzv_port=f["rdzvPort"].integer(minimum=1, maximum=65535),
        rdzv_id=f["rdzvId"].string(),
        rdzv_conf=tuple(conf),
        max_restarts=f["maxRestarts"].integer(minimum=0),
        nproc_per_node=f["nProcPerNode"].integer(minimum=1, maximum=1024),
        standalone=bool(f["standalone"].boolean(default=False)),
    )


def operator_pod(job, role, index):
    """What training-operator gives a replica's pod: its variables (runtime/env.py) in the main container; the
    replica is reached by its Service, named like its pod."""
    return OperatorPod(env=tuple(envs.pytorch_env(job, role, index).items()))

"""Run by .venv-trainer-sdk's Python (the Kubeflow SDK, kubeflow==0.5.0, unchanged): the calls a user makes against
a server's kubeconfig, printed as one JSON object. argv: KUBECONFIG NAMESPACE [runtimes | train]."""

import json
import sys

from kubeflow.common.types import KubernetesBackendConfig
from kubeflow.trainer import CustomTrainer, TrainerClient


def allreduce():
    """The training function: a gloo allreduce over every node's rank + 1, its sum printed by each rank."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    print(f"rank {dist.get_rank()} of {dist.get_world_size()}: sum {value.item():g}", flush=True)
    dist.destroy_process_group()


def runtimes(client):
    found = client.list_runtimes()
    torch = client.get_runtime("torch-distributed")
    return {
        "runtimes": sorted([r.name, r.kind.value, r.trainer.framework, r.trainer.num_nodes] for r in found),
        "torch": {"name": torch.name, "image": torch.trainer.image, "framework": torch.trainer.framework,
                  "trainer_type": torch.trainer.trainer_type.value},
    }


def train(client):
    """The SDK's flow: train() a CustomTrainer on 2 nodes, wait for it, read it back, its logs and events, delete."""
    runtime = client.get_runtime("torch-distributed")
    name = client.train(runtime=runtime, trainer=CustomTrainer(func=allreduce, num_nodes=2))
    done = client.wait_for_job_status(name, status={"Complete", "Failed"}, timeout=240, polling_interval=1)
    job = client.get_job(name)
    logs = {step: list(client.get_job_logs(name, step=step)) for step in ("node-0", "node-1")}
    listed = [j.name for j in client.list_jobs()]
    events = [(e.involved_object_kind, e.involved_object_name, e.reason) for e in client.get_job_events(name)]
    client.delete_job(name)
    after = [j.name for j in client.list_jobs()]
    return {"name": name, "waited": done.status, "status": job.status, "num_nodes": job.num_nodes,
            "steps": sorted([s.name, s.status, s.pod_name] for s in job.steps), "logs": logs, "listed": listed,
            "events": events, "after_delete": after}


def main(kubeconfig, namespace, what="runtimes"):
    client = TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace=namespace))
    print(json.dumps({"runtimes": runtimes, "train": train}[what](client)))


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""Run by .venv-trainer-sdk's Python (the Kubeflow SDK, kubeflow==0.5.0, unchanged): the calls a user makes against
a server's kubeconfig, printed as one JSON object. argv: KUBECONFIG NAMESPACE."""

import json
import sys

from kubeflow.common.types import KubernetesBackendConfig
from kubeflow.trainer import TrainerClient


def main(kubeconfig, namespace):
    client = TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace=namespace))
    runtimes = client.list_runtimes()
    torch = client.get_runtime("torch-distributed")
    print(json.dumps({
        "runtimes": sorted([r.name, r.kind.value, r.trainer.framework, r.trainer.num_nodes] for r in runtimes),
        "torch": {"name": torch.name, "image": torch.trainer.image, "framework": torch.trainer.framework,
                  "trainer_type": torch.trainer.trainer_type.value},
    }))


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""Environment each replica gets, one function per framework, each returning a NEW dict.

Values follow the Kubeflow operators (mpi-operator v2, training-operator v1) so a pod behaves the same whichever of
them injected the variables; see docs/conventions.md for the sources.
"""

import functools
import json

from . import topology
from .model import MPIImplementation

DEFAULT_PYTORCH_PORT = 23456
DEFAULT_MXNET_PORT = 9091


def mpi_launcher_env(job, hostfile, ssh_config):
    """The launcher's variables: hostfile, slots and ssh options for every supported MPI.

    Open MPI 4 reads `OMPI_MCA_orte_*` and `OMPI_MCA_plm_rsh_args`; Open MPI 5 (PRRTE) ignores those and reads
    `PRTE_MCA_prte_*` and `PRTE_MCA_plm_ssh_args` instead (mpi-operator issue #842), so both are set. MPICH and Intel MPI
    read hydra's variables: mpi-operator sets `HYDRA_LAUNCH_EXTRA_ARGS`, but MPICH's hydra reads
    `HYDRA_LAUNCHER_EXTRA_ARGS` (the names in its mpiexec.hydra), so MPICH gets both.
    """
    slots = str(job.mpi.slots_per_worker)
    ssh_args = f"-F {ssh_config}"
    env = {"K_MPI_JOB_ROLE": "launcher"}
    if job.mpi.implementation is MPIImplementation.OPENMPI:
        env.update({
            "OMPI_MCA_orte_default_hostfile": hostfile,
            "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
            "OMPI_MCA_orte_set_default_slots": slots,
            "OMPI_MCA_plm_rsh_args": ssh_args,
            "PRTE_MCA_prte_default_hostfile": hostfile,
            "PRTE_MCA_prte_keep_fqdn_hostnames": "1",
            "PRTE_MCA_prte_set_default_slots": slots,
            "PRTE_MCA_plm_ssh_args": ssh_args,
        })
    elif job.mpi.implementation is MPIImplementation.INTEL:
        env.update({
            "I_MPI_HYDRA_HOST_FILE": hostfile,
            "I_MPI_HYDRA_BOOTSTRAP": "ssh",
            "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS": ssh_args,
            "I_MPI_PERHOST": slots,
        })
    else:
        env.update({
            "HYDRA_HOST_FILE": hostfile,
            "HYDRA_LAUNCHER": "ssh",
            "HYDRA_LAUNCH_EXTRA_ARGS": ssh_args,
            "HYDRA_LAUNCHER_EXTRA_ARGS": ssh_args,
        })
    return env


# Variables that carry ssh options to mpirun's launch agent. ringrun's `-F <ssh_config>` (port, keys, host key
# policy) must reach ssh even where the operator set one of them (mpi-operator v2beta1 sets the Open MPI 4, Intel MPI
# and MPICH ones to `-o ConnectionAttempts=10`): build_plan puts ringrun's first and keeps the operator's after it.
SSH_OPTION_VARIABLES = ("OMPI_MCA_plm_rsh_args", "PRTE_MCA_plm_ssh_args", "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS",
                        "HYDRA_LAUNCH_EXTRA_ARGS", "HYDRA_LAUNCHER_EXTRA_ARGS")
# The rsh agent of the older operators (mpi-operator v1alpha2 and v1, training-operator's MPIJob v1): kubectl exec
# by pod name, `/etc/mpi/kubexec.sh`, set in one of these for Open MPI, Intel MPI (its bootstrap exec) and MPICH.
RSH_AGENT_VARIABLES = ("OMPI_MCA_plm_rsh_agent", "I_MPI_HYDRA_BOOTSTRAP_EXEC", "HYDRA_LAUNCHER_EXEC")
# ringrun's choice of ssh as the launcher: never set beside an operator's agent
_SSH_LAUNCHER = ("I_MPI_HYDRA_BOOTSTRAP", "HYDRA_LAUNCHER")


def mpi_agent_launcher_env(job, hostfile):
    """The launcher's variables when the operator's rsh agent starts the ranks: hostfile and slots only."""
    env = mpi_launcher_env(job, hostfile, "")
    return {k: v for k, v in env.items() if k not in SSH_OPTION_VARIABLES and k not in _SSH_LAUNCHER}


def mpi_worker_env(job):
    return {"K_MPI_JOB_ROLE": "worker"}


def pytorch_port(job, role):
    """The `pytorchjob-port` of the role's `pytorch` container, default 23456."""
    replica = job.replica(role)
    port = replica.container("pytorch").port("pytorchjob-port") if replica else None
    return port or DEFAULT_PYTORCH_PORT


def nproc_count(job):
    """Processes per node in WORLD_SIZE: nprocPerNode when it is a number, else 1 (training-operator v1.9.0
    pytorch/envvar.go getNprocPerNodeInt: `auto`, `cpu`, `gpu`, absent and elastic nProcPerNode all count 1)."""
    value = job.pytorch.nproc_per_node
    return int(value) if value is not None and value.isdigit() else 1


def nproc_per_node(job):
    """PET_NPROC_PER_NODE: elastic nProcPerNode when given, else nprocPerNode, defaulted to `auto` as training-operator
    v1.7-v1.9 default it (pkg/apis/kubeflow.org/v1/pytorch_defaults.go setDefaultNprocPerNode)."""
    elastic = job.pytorch.elastic
    if elastic is not None and elastic.nproc_per_node is not None:
        return str(elastic.nproc_per_node)
    return job.pytorch.nproc_per_node or "auto"


def elastic_nnodes(job):
    """PET_NNODES of an elastic job, `min:max` after training-operator's defaulting (pytorch_defaults.go
    setElasticPolicy: a missing bound is the other one; neither: both are the Worker replicas)."""
    elastic, workers = job.pytorch.elastic, job.count("worker")
    low = elastic.min_replicas or elastic.max_replicas or workers
    high = elastic.max_replicas or elastic.min_replicas or workers
    return f"{low}:{high}"


def rdzv_endpoint(job):
    """(host, port) of an elastic job's rendezvous: `rdzvHost`/`rdzvPort`, else `<job>-worker-0` and its port."""
    elastic = job.pytorch.elastic
    return (elastic.rdzv_host or topology.service_name(job, "worker", 0),
            elastic.rdzv_port or pytorch_port(job, "worker"))


def pytorch_master(job):
    """(address, port) of the master: `<job>-master-0`, or the rendezvous endpoint of an elastic job without one."""
    if job.replica("master") is not None:
        return topology.service_name(job, "master", 0), pytorch_port(job, "master")
    return rdzv_endpoint(job)


def pytorch_env(job, role, index):
    """training-operator's PyTorch variables plus torchrun's PET_* names."""
    nodes = sum(r.replicas for r in job.replicas)
    has_master = job.replica("master") is not None
    node_rank = index + 1 if role == "worker" and has_master else index
    addr, port = pytorch_master(job)
    env = {
        "PYTHONUNBUFFERED": "1",
        "MASTER_ADDR": addr,
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(nodes * nproc_count(job)),
        "RANK": str(node_rank),
        "PET_MASTER_ADDR": addr,
        "PET_MASTER_PORT": str(port),
        "PET_NNODES": str(nodes),
        "PET_NPROC_PER_NODE": nproc_per_node(job),
        "PET_NODE_RANK": str(node_rank),
    }
    elastic = job.pytorch.elastic
    if elastic is not None:
        host, rdzv_port = rdzv_endpoint(job)
        env["PET_RDZV_ENDPOINT"] = f"{host}:{rdzv_port}"
        env["PET_RDZV_BACKEND"] = elastic.rdzv_backend
        env["PET_NNODES"] = elastic_nnodes(job)
        if elastic.max_restarts is not None:
            env["PET_MAX_RESTARTS"] = str(elastic.max_restarts)
        if elastic.rdzv_id is not None:
            env["PET_RDZV_ID"] = elastic.rdzv_id
        if elastic.rdzv_conf:
            env["PET_RDZV_CONF"] = ",".join(f"{k}={v}" for k, v in elastic.rdzv_conf)
        if elastic.standalone:
            # training-operator writes "" here, which torchrun's int() refuses; "1" is what it reads as true
            env["PET_STANDALONE"] = "1"
    return env


def mxnet_port(job, role):
    """The `mxjob-port` of the role's `mxnet` container, default 9091."""
    port = job.replica(role).container("mxnet").port("mxjob-port")
    return port or DEFAULT_MXNET_PORT


def mx_config(job, role, index):
    """MX_CONFIG as training-operator writes it: cluster (every replica's url and port), labels (each role's
    `tuner-server-key` annotation), task. Byte for byte what Go's encoding/json gives: compact, map keys sorted,
    struct fields in declaration order."""
    task = json.dumps({"type": role, "index": index}, separators=(",", ":"))
    return f'{_mx_cluster_and_labels(job)},"task":{task}}}'


@functools.lru_cache(maxsize=8)
def _mx_cluster_and_labels(job):
    """`{"cluster":...,"labels":...` of MX_CONFIG, the same for every replica: made once per job, so planning every
    replica stays linear in the size of the result."""
    ordered = sorted(job.replicas, key=lambda r: r.role)
    cluster = {r.role: [{"url": topology.service_name(job, r.role, i), "port": mxnet_port(job, r.role)}
                        for i in range(r.replicas)] for r in ordered}
    labels = {r.role: dict(r.annotations).get("tuner-server-key", "") for r in ordered}
    return json.dumps({"cluster": cluster, "labels": labels}, separators=(",", ":"))[:-1]


# ps-lite takes a bare PORT as its own listen port (and fails to bind), and DMLC_NODE_HOST as the address it
# advertises: inherited from the caller or the image they break the job, so MXNet processes never inherit them.
MXNET_STRAY = ("PORT", "DMLC_NODE_HOST")


def mxnet_env(job, role, index):
    """DMLC_* for ps-lite (MXTrain: scheduler 0 is the root) and MX_CONFIG for every role."""
    env = {"MX_CONFIG": mx_config(job, role, index), "DMLC_ROLE": role}
    if job.replica("scheduler") is not None:
        env.update({
            "DMLC_PS_ROOT_URI": topology.service_name(job, "scheduler", 0),
            "DMLC_PS_ROOT_PORT": str(mxnet_port(job, "scheduler")),
            "DMLC_NUM_SERVER": str(job.count("server")),
            "DMLC_NUM_WORKER": str(job.count("worker")),
            "DMLC_USE_KUBERNETES": "1",
        })
    if role == "worker":
        env["DMLC_WORKER_ID"] = str(index)
    return env

"""Kubeflow MPIJob: kubeflow.org/v1alpha2, v1 and v2beta1 (mpi-operator and training-operator)."""

from .. import topology
from ..model import JobSpec, MPIImplementation, MPIOptions, OperatorPod
from . import common

IMPLEMENTATIONS = tuple(MPIImplementation)
# mpi-operator v1's `mpiDistribution` spelled Intel MPI differently.
_DISTRIBUTIONS = {"OpenMPI": MPIImplementation.OPENMPI, "IntelMPI": MPIImplementation.INTEL,
                  "Intel": MPIImplementation.INTEL, "MPICH": MPIImplementation.MPICH}
DEFAULT_RESTART = {"Launcher": "OnFailure", "Worker": "Never"}


def parse(doc, api_version, kind):
    """A Kubeflow MPIJob -> JobSpec (None when problems were recorded)."""
    name, namespace, spec = common.job_spec(doc)
    if spec is None:
        return None
    replicas_field = spec["mpiReplicaSpecs"]
    # mpi-operator v2beta1 and training-operator both default the Launcher's replicas to 1
    replicas, seen = common.replica_specs(replicas_field, ("Launcher", "Worker"), DEFAULT_RESTART,
                                          default_replicas={"Launcher": 1})
    common.require_single(replicas_field, replicas, seen, "Launcher")
    implementation = spec["mpiImplementation"].string(default="OpenMPI", choices=IMPLEMENTATIONS)
    implementation = MPIImplementation(implementation) if implementation else MPIImplementation.OPENMPI
    if spec["mpiDistribution"].present:
        distribution = spec["mpiDistribution"].string(choices=tuple(_DISTRIBUTIONS))
        implementation = _DISTRIBUTIONS.get(distribution, implementation)
    main = spec["mainContainer"].string(nonempty=True)
    if main is not None and "launcher" in replicas and main not in [c.name for c in replicas["launcher"].containers]:
        spec["mainContainer"].error(f"no container named {main!r} in the Launcher template")
    mpi = MPIOptions(
        implementation=implementation,
        # mpi-operator v1alpha2 and v1 could start the ranks with their own rsh agent (kubexec.sh)
        operator_agent=api_version.rpartition("/")[2] in ("v1alpha2", "v1"),
        slots_per_worker=spec["slotsPerWorker"].integer(default=1, minimum=1, maximum=4096) or 1,
        ssh_auth_mount_path=spec["sshAuthMountPath"].absolute_path(default="/root/.ssh") or "/root/.ssh",
        launcher_creation_policy=spec["launcherCreationPolicy"].string(
            default="AtStartup", choices=("AtStartup", "WaitForWorkersReady")) or "AtStartup",
        run_launcher_as_worker=bool(spec["runLauncherAsWorker"].boolean(default=False)),
    )
    run_policy = common.run_policy(spec)
    if "launcher" not in replicas:
        return None
    return JobSpec(api_version, kind, name, namespace, "mpi",
                   tuple(replicas[r] for r in ("launcher", "worker") if r in replicas), run_policy, mpi=mpi,
                   main_container=main or "")


# mpi-operator v2beta1 (pkg/controller/mpi_job_controller.go at v0.8.x): the `<job>-config` ConfigMap at /etc/mpi,
# the variables naming it per library, ssh's connection attempts, and sshd as a worker's command when its container
# gives neither command nor args; for Open MPI also PRRTE's names of the same (Open MPI 5 reads only those).
CONFIG_DIR = "/etc/mpi"
_SSH_ATTEMPTS = "-o ConnectionAttempts=10"
WORKER_COMMAND = ("/usr/sbin/sshd", "-De")


def _launcher_env(job):
    hostfile, slots = f"{CONFIG_DIR}/hostfile", str(job.mpi.slots_per_worker)
    env = {"K_MPI_JOB_ROLE": "launcher", "NVIDIA_VISIBLE_DEVICES": "", "NVIDIA_DRIVER_CAPABILITIES": ""}
    if job.mpi.implementation is MPIImplementation.OPENMPI:
        env.update(OMPI_MCA_orte_keep_fqdn_hostnames="true", OMPI_MCA_orte_default_hostfile=hostfile,
                   OMPI_MCA_plm_rsh_args=_SSH_ATTEMPTS, OMPI_MCA_orte_set_default_slots=slots)
        # beyond mpi-operator: Open MPI 5 (PRRTE) ignores the orte names (mpi-operator issue #842), so a launcher
        # whose `command: mpirun` bypasses ringrun's entrypoint would run every rank on itself
        env.update(PRTE_MCA_prte_default_hostfile=hostfile, PRTE_MCA_prte_keep_fqdn_hostnames="1",
                   PRTE_MCA_prte_set_default_slots=slots)
    elif job.mpi.implementation is MPIImplementation.INTEL:
        env.update(I_MPI_HYDRA_HOST_FILE=hostfile, I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS=_SSH_ATTEMPTS,
                   I_MPI_PERHOST=slots)
    else:
        env.update(HYDRA_HOST_FILE=hostfile, HYDRA_LAUNCH_EXTRA_ARGS=_SSH_ATTEMPTS)
    return env


def operator_pod(job, role, index):
    """What mpi-operator gives replica (role, index): the launcher its hostfile ConfigMap (0444) and variables, a
    worker K_MPI_JOB_ROLE, the job's search domain (MPICH's and Intel MPI's proxies reach the launcher by its host
    name) and sshd when its container runs nothing of its own; both the ssh Secret."""
    if role == "launcher":
        return OperatorPod(env=tuple(_launcher_env(job).items()), ssh=True,
                           config=(CONFIG_DIR, (("hostfile", topology.hostfile(job)),)))
    return OperatorPod(env=(("K_MPI_JOB_ROLE", "worker"),), ssh=True, default_command=WORKER_COMMAND,
                       dns_search=(f"{job.name}.{job.namespace}.svc.cluster.local",))

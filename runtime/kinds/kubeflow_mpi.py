"""Kubeflow MPIJob: kubeflow.org/v1alpha2, v1 and v2beta1 (mpi-operator and training-operator)."""

from ..model import JobSpec, MPIImplementation, MPIOptions
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

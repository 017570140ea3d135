"""mpirun argv builders, one per MPI implementation. Lists, never shell strings."""

from .model import MPIImplementation

# Flags that already fix the number of processes (Open MPI and hydra spellings).
NP_FLAGS = {"-np", "--np", "-n", "--n", "-c"}


def sets_np(args):
    """Whether `args` already give the process count (`-np 4`, `--np=4`, `-n 4`)."""
    return any(a.split("=", 1)[0] in NP_FLAGS for a in args)


def mpirun_path(mpi_home):
    return f"{mpi_home.rstrip('/')}/bin/mpirun" if mpi_home else "mpirun"


def openmpi_argv(np, hostfile, ssh_config, command, mca=(), extra_args=(), mpi_home=None):
    """Open MPI 4/5: `mpirun -np N --hostfile H --mca K V ... --mca plm_rsh_args "-F C" EXTRA... CMD...`.

    `--mca plm_rsh_args` on the command line reaches Open MPI 4 and (as an alias of plm_ssh_args) Open MPI 5; it is
    left out when the spec's own `mca` sets it.
    """
    argv = [mpirun_path(mpi_home)]
    if not sets_np(extra_args):
        argv += ["-np", str(np)]
    argv += ["--hostfile", hostfile]
    for key, value in mca:
        argv += ["--mca", key, value]
    if not any(k in ("plm_rsh_args", "plm_ssh_args") for k, _ in mca):
        argv += ["--mca", "plm_rsh_args", f"-F {ssh_config}"]
    return argv + list(extra_args) + list(command)


def hydra_argv(np, hostfile, ssh_config, command, mca=(), extra_args=(), mpi_home=None):
    """MPICH and Intel MPI (hydra): `mpirun -n N -f H EXTRA... CMD...`; ssh options go through the environment
    (HYDRA_LAUNCH_EXTRA_ARGS / I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS). MCA parameters are Open MPI's only."""
    if mca:
        raise ValueError("MCA parameters apply to Open MPI only")
    argv = [mpirun_path(mpi_home)]
    if not sets_np(extra_args):
        argv += ["-n", str(np)]
    return argv + ["-f", hostfile] + list(extra_args) + list(command)


MPIRUN = {MPIImplementation.OPENMPI: openmpi_argv, MPIImplementation.INTEL: hydra_argv,
          MPIImplementation.MPICH: hydra_argv}


def launch_argv(implementation, np, command, hosts=None, hostfile=None, mca=(), export=(), is_root=False,
                oversubscribed=False, mpirun="mpirun", tag=True):
    """`ringrun launch` (and `ringrun bench`): mpirun for local multi-process hosts, ranks' output tagged with their
    rank unless `tag` is false.

    Open MPI: no binding (several "hosts" on one machine would all bind to core 0), oversubscription allowed,
    `--mca mpi_yield_when_idle 1` when there are more ranks than cores, `--allow-run-as-root` for root.
    MPICH and Intel MPI (hydra): `-prepend-rank`, `-genvlist` for exported variables.
    """
    if not isinstance(implementation, MPIImplementation):
        implementation = MPIImplementation.from_cli(implementation)
    if not implementation.hydra:
        argv = [mpirun, "-np", str(np)] + (["--tag-output"] if tag else []) + [
            "--bind-to", "none", "--map-by", ":OVERSUBSCRIBE"]
        if hosts:
            argv += ["--host", hosts]
        if hostfile:
            argv += ["--hostfile", hostfile]
        if oversubscribed:
            argv += ["--mca", "mpi_yield_when_idle", "1"]
        if is_root:
            argv += ["--allow-run-as-root"]
        for key, value in mca:
            argv += ["--mca", key, value]
        for name in export:
            argv += ["-x", name]
        return argv + list(command)
    if mca:
        raise ValueError("--mca applies to Open MPI only")
    argv = [mpirun, "-n", str(np)] + (["-prepend-rank"] if tag else [])
    if hosts:
        argv += ["-hosts", hosts]
    if hostfile:
        argv += ["-f", hostfile]
    if export:
        argv += ["-genvlist", ",".join(export)]
    return argv + list(command)

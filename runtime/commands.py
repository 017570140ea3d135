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
                yield_when_idle=True, mpirun="mpirun", tag=True):
    """`ringrun launch` (and `ringrun bench`): mpirun for local multi-process hosts, ranks' output tagged with their
    rank unless `tag` is false.

    Open MPI: no binding (several "hosts" on one machine would all bind to core 0), oversubscription allowed,
    `--mca mpi_yield_when_idle 1` unless `yield_when_idle` is false or `mca` sets it (a rank waiting in MPI gives its
    core to the framework threads beside it: Horovod's background thread, torch's intra-op threads),
    `--mca osc ^ucx` when every rank is on this machine, `--allow-run-as-root` for root.
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
        if yield_when_idle and not any(key == "mpi_yield_when_idle" for key, _ in mca):
            argv += ["--mca", "mpi_yield_when_idle", "1"]
        if not (hosts or hostfile):
            argv += ["--mca", "osc", "^ucx"]  # every rank here: windows in shared memory (UCX's prints an error)
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


# Intra-op thread pools (torch, numpy's BLAS, MKL) size themselves by the machine's cores, each rank's as if it were
# alone: ranks x threads then oversubscribe the cores. Measured with scripts/cnn_throughput.py under `ringrun launch`
# (BENCHMARKS.md): on 2 cores, 2 ranks of 2 threads each ran 1.4x (ring) and 2.4x (Horovod) slower than 2 ranks of 1;
# 1 rank of 2 threads, 2x faster than the 1 thread torch picks under mpirun. torch reads MKL_NUM_THREADS over OMP_NUM_THREADS, so a user who
# sets either has decided: then neither is set.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def thread_defaults(ranks_here, cores, environ):
    """{variable: value} for THREAD_VARIABLES when the environment sets none of them: the cores shared out among
    the ranks on this machine (at least 1 each), as torchrun sets OMP_NUM_THREADS; {} otherwise."""
    if any(name in environ for name in THREAD_VARIABLES):
        return {}
    share = str(max(1, cores // max(1, ranks_here)))
    return {name: share for name in THREAD_VARIABLES}


# Horovod's elastic mode (horovodrun --min-np/--max-np/--host-discovery-script): the launcher's command finds its
# hosts by running a discovery script every second, and keeps training as hosts come and go.
HOROVOD_ELASTIC_FLAGS = ("--host-discovery-script", "--min-np", "--max-np", "--min-num-proc", "--max-num-proc")
DISCOVERY_FLAG = "--host-discovery-script"
# mpi-operator's discovery script (v0.8.2 pkg/controller/mpi_job_controller.go, the `<job>-config` ConfigMap)
OPERATOR_DISCOVER_HOSTS = "/etc/mpi/discover_hosts.sh"


def is_horovod_elastic(argv):
    """Whether `argv` runs horovodrun in elastic mode."""
    return bool(argv) and argv[0].rsplit("/", 1)[-1] == "horovodrun" \
        and any(a.split("=", 1)[0] in HOROVOD_ELASTIC_FLAGS for a in argv[1:])


def discovery_script(argv):
    """The discovery script `argv` (horovodrun) names, or None."""
    for i, word in enumerate(argv):
        if word == DISCOVERY_FLAG and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(DISCOVERY_FLAG + "="):
            return word.split("=", 1)[1]
    return None


def with_discovery_script(argv, path):
    """`argv` with its discovery script replaced by `path` (a new tuple)."""
    out, skip = [], False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == DISCOVERY_FLAG and i + 1 < len(argv):
            out += [word, path]
            skip = True
        elif word.startswith(DISCOVERY_FLAG + "="):
            out.append(f"{DISCOVERY_FLAG}={path}")
        else:
            out.append(word)
    return tuple(out)

"""Names of replicas and MPI host files, as the Kubeflow operators create them."""


def service_name(job, role, index):
    """`<job>-<role>-<index>`: the per-replica service training-operator creates (PyTorch, MXNet)."""
    return f"{job.name}-{role}-{index}"


def mpi_host(job, role, index=0):
    """The DNS name of an MPIJob pod through the job's headless service (mpi-operator v2).

    Workers are `<job>-worker-<i>.<job>.<ns>.svc`; the launcher pod's hostname is `<job>-launcher`. A kind with a
    rule of its own (its JobKind's `mpi_host`: Trainer's `<job>-node-0-<i>.<job>`) names them its way.
    """
    from .kinds import registry  # which imports this module's users

    kind = registry.of(job)
    if kind is not None and kind.mpi_host is not None:
        return kind.mpi_host(job, role, index)
    pod = f"{job.name}-launcher" if role == "launcher" else f"{job.name}-{role}-{index}"
    return f"{pod}.{job.name}.{job.namespace}.svc"


def mpi_slots(job):
    """[(host, slots)] in hostfile order: the launcher first when runLauncherAsWorker, then every worker."""
    slots = job.mpi.slots_per_worker
    hosts = [(mpi_host(job, "launcher"), slots)] if job.mpi.run_launcher_as_worker else []
    return hosts + [(mpi_host(job, "worker", i), slots) for i in range(job.count("worker"))]


def hostfile_line(host, slots, implementation):
    """Open MPI: `host slots=N`; MPICH and Intel MPI (hydra): `host:N`."""
    return f"{host}:{slots}" if implementation.hydra else f"{host} slots={slots}"


def hostfile(job):
    """The whole hostfile text for the job's MPI implementation (empty when there are no hosts)."""
    lines = [hostfile_line(h, s, job.mpi.implementation) for h, s in mpi_slots(job)]
    return "".join(line + "\n" for line in lines)


def world_size(job):
    """Number of MPI ranks: hosts x slotsPerWorker."""
    return sum(s for _, s in mpi_slots(job))


def hostfile_hosts(text):
    """Host names of a hostfile in either format (`host slots=N`, `host:N`, `host`), comments and blanks skipped."""
    hosts = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            host = words[0].rsplit(":", 1)[0] if ":" in words[0] and words[0].rsplit(":", 1)[1].isdigit() else words[0]
            if host not in hosts:
                hosts.append(host)
    return hosts


def discover_hosts(entries):
    """A Horovod host discovery script that prints `entries` (`host` or `host:slots`), one a line: mpi-operator
    v0.8.2's `discover_hosts.sh` format (`#!/bin/sh`, then `echo ENTRY`)."""
    return "#!/bin/sh\n" + "".join(f"echo {entry}\n" for entry in entries)

"""What mpi-operator v2beta1 gives an MPIJob's pods, for tests that run pods as containers (as v0.8.2's
pkg/controller/mpi_job_controller.go does).

Every pod: host name = pod name, subdomain = the job (its DNS name `<pod>.<job>.<ns>.svc`), the ssh Secret
(`id_rsa`, `id_rsa.pub`, `authorized_keys`) at sshAuthMountPath, mode 0600 when that is /root/.ssh, else 0644.
The launcher: K_MPI_JOB_ROLE=launcher, the hostfile ConfigMap at /etc/mpi (`hostfile`, 0444: Open MPI's
`<job>-worker-<i>.<job>.<ns>.svc slots=N`, MPICH's and Intel MPI's `host:N`) and, per library, the variables that
name it, the slots and `-o ConnectionAttempts=10` for ssh; NVIDIA_VISIBLE_DEVICES and NVIDIA_DRIVER_CAPABILITIES
empty. A worker: K_MPI_JOB_ROLE=worker, the DNS search domain `<job>.<ns>.svc.cluster.local` (MPICH's and Intel
MPI's proxies reach the launcher by its host name), and `/usr/sbin/sshd -De` as its command when its container
gives neither command nor args (which replaces the image's ENTRYPOINT: a worker of ringrun's image gives `args`).
"""

import os
import shutil

CONFIG_DIR = "/etc/mpi"
SSH_ARGS = "-o ConnectionAttempts=10"


ROOT_SSH = "/root/.ssh"
WORKER_COMMAND = ("/usr/sbin/sshd", "-De")


def launcher_env(implementation, slots):
    hostfile = f"{CONFIG_DIR}/hostfile"
    env = {"K_MPI_JOB_ROLE": "launcher", "NVIDIA_VISIBLE_DEVICES": "", "NVIDIA_DRIVER_CAPABILITIES": ""}
    if implementation == "OpenMPI":
        env.update(OMPI_MCA_orte_keep_fqdn_hostnames="true", OMPI_MCA_orte_default_hostfile=hostfile,
                   OMPI_MCA_plm_rsh_args=SSH_ARGS, OMPI_MCA_orte_set_default_slots=str(slots))
    elif implementation == "Intel":
        env.update(I_MPI_HYDRA_HOST_FILE=hostfile, I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS=SSH_ARGS,
                   I_MPI_PERHOST=str(slots))
    else:
        env.update(HYDRA_HOST_FILE=hostfile, HYDRA_LAUNCH_EXTRA_ARGS=SSH_ARGS)
    return env


def worker_env():
    return {"K_MPI_JOB_ROLE": "worker"}


def dns_search(job, namespace):
    return f"{job}.{namespace}.svc.cluster.local"


def worker_command(container):
    """(command replacing the ENTRYPOINT or None, args) of a worker's container."""
    if not container.get("command") and not container.get("args"):
        return WORKER_COMMAND, ()
    return container.get("command"), tuple(container.get("args") or ())


def secret(source, folder, mount_path):
    """The `<job>-ssh` Secret's files copied from `source` into `folder` with the modes the operator asks for."""
    os.makedirs(folder, exist_ok=True)
    mode = 0o600 if mount_path == ROOT_SSH else 0o644
    for name in ("id_rsa", "id_rsa.pub", "authorized_keys"):
        shutil.copy(os.path.join(source, name), os.path.join(folder, name))
        os.chmod(os.path.join(folder, name), mode)
    os.chmod(folder, 0o755)
    return folder


def config_map(folder, job, namespace, workers, slots, implementation):
    """The `<job>-config` ConfigMap as files in `folder` (mounted at /etc/mpi); returns the folder."""
    os.makedirs(folder, exist_ok=True)
    hosts = [f"{job}-worker-{i}.{job}.{namespace}.svc" for i in range(workers)]
    lines = [f"{h} slots={slots}" if implementation == "OpenMPI" else f"{h}:{slots}" for h in hosts]
    path = os.path.join(folder, "hostfile")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o444)
    os.chmod(folder, 0o755)
    return folder

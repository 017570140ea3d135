"""MPIJob v1alpha2 and v1 as their own operators run them (mpi-operator v0.2.3/v0.3.0, training-operator's MPIJob v1):
the launcher pod gets a hostfile of bare pod names (no headless service, so those names have no DNS record) and an rsh
agent, /etc/mpi/kubexec.sh, that runs each daemon in its worker pod with `kubectl exec`; the workers run `sleep`.
ringrun's launcher then uses both as they are: it waits for no name and sets no ssh option. Without them (ringrun's
own images and manifests) it keeps ssh, as every other pod test shows."""

import os
import stat

import pytest

from conftest import HERE, JOB, NAMESPACE, MPICluster, flavour

# kubectl exec stand-in: the command runs with the worker pod's network and host name (what a daemon started in that
# pod has); the pod test harness names each pod's network namespace rr-<n> in the order of pod_names().
KUBEXEC = """#!/bin/sh
POD_NAME=$1
shift
case "$POD_NAME" in
  {cases}
  *) echo "kubexec: no pod $POD_NAME" >&2; exit 1 ;;
esac
exec nsenter --net=/run/netns/$NETNS -- unshare --uts -- /bin/sh -c 'hostname "$1" && exec /bin/sh -c "$2"' sh \
  "$POD_NAME" "$*"
"""


def v1_mpijob(api, command):
    container = {"name": "mpi", "image": "ringrun:test"}
    return {"apiVersion": api, "kind": "MPIJob", "metadata": {"name": JOB, "namespace": NAMESPACE},
            "spec": {"slotsPerWorker": 1, "cleanPodPolicy": "Running", "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {"spec": {"containers": [{**container,
                                                                                  "command": command}]}}},
                "Worker": {"replicas": 2, "template": {"spec": {"containers": [container]}}}}}}


@pytest.mark.parametrize("api", ["kubeflow.org/v1alpha2", "kubeflow.org/v1"])
def test_the_operators_kubexec_and_bare_pod_names_are_used_as_they_are(tmp_path, api):
    implementation, venv, env = flavour("openmpi4")  # the Open MPI of those operators' images
    command = ["mpirun", "-n", "2", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
               str(venv / "bin" / "python"), str(HERE / "rankcheck.py")]
    with MPICluster(tmp_path, v1_mpijob(api, command), venv, env, workers=2) as job:
        names = list(job.cluster.pods)
        cases = "\n  ".join(f"{name}) NETNS={job.pod(name).netns} ;;" for name in names if "worker" in name)
        agent = tmp_path / "kubexec.sh"
        agent.write_text(KUBEXEC.format(cases=cases))
        agent.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        hostfile = tmp_path / "operator-hostfile"
        hostfile.write_text("".join(f"{JOB}-worker-{i} slots=1\n" for i in range(2)))  # bare pod names
        for i in range(2):  # the operators' workers: `sleep 365d`, no sshd, no ringrun
            job.cluster.start(f"{JOB}-worker-{i}", ["/bin/sleep", "600"], job.pod_env(f"{JOB}-worker-{i}", "worker"))
        operator = {"OMPI_MCA_plm_rsh_agent": str(agent), "OMPI_MCA_orte_default_hostfile": str(hostfile),
                    "RINGRUN_HOSTFILE": str(hostfile), "RINGRUN_WAIT_TIMEOUT": "5"}
        job.start_launcher(operator)
        code = job.launcher().wait(120)
        log = job.launcher().log()
        assert code == 0, job.logs()
        assert "RANKCHECK size=2 hosts=pi-worker-0,pi-worker-1 allreduce=exact" in log, log
        assert "waiting up to" not in log  # no wait on names that would never resolve
        assert f"running {' '.join(command)}" in log
        run_dir = tmp_path / f"{JOB}-launcher.run"
        assert (run_dir / "hostfile").read_text() == hostfile.read_text()
        assert not (run_dir / "ssh_config").exists() and not (run_dir / "ssh").exists()
        assert os.path.exists(agent)

"""An MPIJob v2beta1 as a cluster runs it: each pod a container of ringrun's job image (`make images`), the
ENTRYPOINT untouched and the replica's command as the pod's `args`, mpi-operator's pod variables, hostfile ConfigMap
and ssh Secret, the pods' DNS names on a network of the job's own. Open MPI, MPICH and Intel MPI in the root images,
the non-root image (uid 1000, sshd on 2222), a launcher that starts before its workers, a worker killed mid-run."""

import json
import os
import time

import pytest

import mpioperator
from conftest import check_ranks_ran
from containers import IMAGE_PYTHON, SPEC_DIR, TESTS, ContainerCluster, missing_images

JOB, NAMESPACE = "pi", "default"
# mpiImplementation -> (image, the container env a user gives it). Every pod is on one kernel: UCX would take the
# pods for one host and use shared memory between them, so MPICH is told to use TCP as pods on two nodes would;
# Intel MPI's libfabric likewise, and its pinning is off (two pods share the machine's cores).
FLAVOURS = {
    "OpenMPI": ("ringrun:latest", {}),
    "MPICH": ("ringrun:mpich", {"UCX_TLS": "tcp,self"}),
    "Intel": ("ringrun:intelmpi", {"FI_PROVIDER": "tcp", "I_MPI_PIN": "0"}),
}


@pytest.fixture(autouse=True)
def images_built():
    missing = missing_images(["ringrun:latest", "ringrun:nonroot", "ringrun:mpich", "ringrun:intelmpi"])
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (`make images` builds them)")


def mpirun(implementation, np, program, *args):
    """A launcher's command as a user writes it: mpirun -n NP (Open MPI: no binding, yield when idle, as several pods
    share the cores), the image's Python, a program of tests/cluster."""
    flags = ["--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"] if implementation == "OpenMPI" else []
    return ["mpirun", "-n", str(np), *flags, IMAGE_PYTHON, f"{TESTS}/{program}", *args]


def spec(implementation, image, env, slots, workers, args, auth="/root/.ssh", clean="Running"):
    """The job, its launcher's command as `args` and its workers' `args` sshd's (with neither, mpi-operator would
    replace the image's ENTRYPOINT with sshd: ringrun's worker runs sshd itself and takes them as a no-op)."""
    def template(command):
        container = {"name": "mpi", "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}
        return {"spec": {"containers": [{**container, "args": list(command)}]}}
    return {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob", "metadata": {"name": JOB, "namespace": NAMESPACE},
            "spec": {"slotsPerWorker": slots, "mpiImplementation": implementation, "sshAuthMountPath": auth,
                     "runPolicy": {"cleanPodPolicy": clean},
                     "mpiReplicaSpecs": {"Launcher": {"replicas": 1, "template": template(args)},
                                         "Worker": {"replicas": workers,
                                                    "template": template(mpioperator.WORKER_COMMAND)}}}}


class MPIJobPods:
    """The pods of one MPIJob as containers, started as mpi-operator would start them."""

    def __init__(self, workdir, job, secret, workers, operator=True, mounts=()):
        """operator=False: no hostfile ConfigMap and no launcher variables but K_MPI_JOB_ROLE (ringrun's own
        manifests, with no mpi-operator); `mounts` go to every pod."""
        self.workdir, self.job, self.workers = str(workdir), job, workers
        self.operator, self.mounts = operator, list(mounts)
        self.secret = mpioperator.secret(str(secret), os.path.join(self.workdir, "ssh-secret"),
                                         job["spec"]["sshAuthMountPath"])
        folder = os.path.join(self.workdir, "spec")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "job.json"), "w", encoding="utf-8") as handle:
            json.dump(job, handle)
        self.spec_dir = folder
        self.config = mpioperator.config_map(os.path.join(self.workdir, "config"), JOB, NAMESPACE, workers,
                                             job["spec"]["slotsPerWorker"], job["spec"]["mpiImplementation"])
        names = [f"{JOB}-launcher"] + [f"{JOB}-worker-{i}" for i in range(workers)]
        self.cluster = ContainerCluster(self.workdir, JOB, NAMESPACE, names)

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cluster.__exit__(*exc)

    def _start(self, name, replica, env, mounts, extra_env=None, **pod):
        template = self.job["spec"]["mpiReplicaSpecs"][replica]["template"]["spec"]["containers"][0]
        own = {e["name"]: e["value"] for e in template.get("env", [])}
        env = {**own, **env, "RINGRUN_SPEC": f"{SPEC_DIR}/job.json", **(extra_env or {})}
        mounts = [(self.spec_dir, SPEC_DIR, "ro"), (self.secret, self.job["spec"]["sshAuthMountPath"], "ro"),
                  *self.mounts, *mounts]
        pod.setdefault("args", template.get("args", ()))
        pod.setdefault("command", template.get("command"))
        return self.cluster.start(name, template["image"], env=env, mounts=mounts, **pod)

    def start_workers(self, indices=None):
        template = self.job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
        command, args = mpioperator.worker_command(template)
        for i in range(self.workers) if indices is None else indices:
            self._start(f"{JOB}-worker-{i}", "Worker", mpioperator.worker_env(), (), command=command, args=args,
                        dns_search=mpioperator.dns_search(JOB, NAMESPACE))

    def start_launcher(self, extra_env=None):
        spec = self.job["spec"]
        if not self.operator:
            return self._start(f"{JOB}-launcher", "Launcher", {"K_MPI_JOB_ROLE": "launcher"}, (), extra_env)
        env = mpioperator.launcher_env(spec["mpiImplementation"], spec["slotsPerWorker"])
        return self._start(f"{JOB}-launcher", "Launcher", env, [(self.config, mpioperator.CONFIG_DIR, "ro")],
                           extra_env)

    def pod(self, name):
        return self.cluster.pods[name]

    def launcher(self):
        return self.pod(f"{JOB}-launcher")

    def worker_pods(self):
        return [self.pod(f"{JOB}-worker-{i}") for i in range(self.workers)]

    def logs(self):
        return "\n".join(f"----- {name}\n{pod.log()}" for name, pod in self.cluster.pods.items())

    def wait_all(self, timeout):
        deadline = time.monotonic() + timeout
        return {name: pod.wait(max(0.1, deadline - time.monotonic())) for name, pod in self.cluster.pods.items()}


def wait_for_text(pod, text, count=1, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pod.log().count(text) >= count:
            return True
        if not pod.running():
            return pod.log().count(text) >= count
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("slots", [1, 2])
@pytest.mark.parametrize("implementation", list(FLAVOURS))
def test_mpijob_runs_across_container_pods_and_workers_exit(tmp_path, secret, implementation, slots):
    image, env = FLAVOURS[implementation]
    job = spec(implementation, image, env, slots, 2, mpirun(implementation, 2 * slots, "rankcheck.py"))
    with MPIJobPods(tmp_path, job, secret, workers=2) as pods:
        pods.start_workers()
        pods.start_launcher()
        logs = pods.logs
        check_ranks_ran(pods.wait_all(timeout=180), logs(), JOB, slots)
        # the operator's hostfile is the one used (it names the workers by their service names)
        assert f"{JOB}-worker-0.{JOB}.{NAMESPACE}.svc" in pods.launcher().log(), logs()
        assert "the launcher finished with exit code 0" in pods.worker_pods()[0].log()
    assert pods.cluster.leftovers() == {}


def test_the_non_root_image_runs_as_uid_1000_with_sshd_on_2222(tmp_path, secret):
    image, env = "ringrun:nonroot", {}
    job = spec("OpenMPI", image, env, 2, 2, mpirun("OpenMPI", 4, "rankcheck.py"), auth="/home/mpiuser/.ssh")
    with MPIJobPods(tmp_path, job, secret, workers=2) as pods:
        pods.start_workers()
        pods.start_launcher()
        check_ranks_ran(pods.wait_all(timeout=180), pods.logs(), JOB, 2)
        worker = pods.worker_pods()[0].log()
        assert "port 2222" in worker and f"for mpiuser from {pods.launcher().address}" in worker, pods.logs()


def test_a_launcher_started_before_its_workers_waits_for_them(tmp_path, secret):
    image, env = FLAVOURS["OpenMPI"]
    job = spec("OpenMPI", image, env, 1, 2, mpirun("OpenMPI", 2, "rankcheck.py"))
    with MPIJobPods(tmp_path, job, secret, workers=2) as pods:
        pods.start_launcher()
        assert wait_for_text(pods.launcher(), "waiting up to 300 s for", timeout=60), pods.logs()
        assert pods.launcher().running() and "running mpirun" not in pods.launcher().log(), pods.logs()
        pods.start_workers()
        codes = pods.wait_all(timeout=180)
        assert set(codes.values()) == {0}, pods.logs()
        assert "RANKCHECK size=2 hosts=pi-worker-0,pi-worker-1 allreduce=exact" in pods.launcher().log()


@pytest.mark.parametrize("implementation", list(FLAVOURS))
def test_a_worker_killed_mid_run_fails_the_launcher_and_the_others_stop(tmp_path, secret, implementation):
    image, env = FLAVOURS[implementation]
    job = spec(implementation, image, env, 1, 2, mpirun(implementation, 2, "hold.py", "120"))
    with MPIJobPods(tmp_path, job, secret, workers=2) as pods:
        pods.start_workers()
        pods.start_launcher({"RINGRUN_GRACE_SECONDS": "3"})
        assert wait_for_text(pods.launcher(), "HOLDING", count=2, timeout=90), pods.logs()
        pods.pod(f"{JOB}-worker-1").kill()
        code = pods.launcher().wait(60)
        assert code != 0, pods.logs()
        # the surviving worker is told the job failed (cleanPodPolicy Running) and exits with the launcher's code
        assert pods.pod(f"{JOB}-worker-0").wait(30) == code, pods.logs()
        assert pods.pod(f"{JOB}-worker-1").wait(5) == 137

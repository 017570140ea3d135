"""runtime/pods.py: a job's pods as a cluster makes them (image names, pull policies, the operators' variables and
files, volumes, limits, DNS names), and launcher/engine.py's `run` command of one pod."""

import copy
import os

import pytest
import yaml

from ringrun.launcher.engine import Engine
from ringrun.runtime.errors import SpecError
from ringrun.runtime.parse import parse_objects
from ringrun.runtime.pods import SPEC_DIR, pod_specs, valid_image, with_pull

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    with open(os.path.join(ROOT, "examples", name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def pods_of(obj, host_path=None):
    (job,) = parse_objects([obj])
    pods, warnings = pod_specs(job, host_path)
    return {p.name: p for p in pods}, warnings


@pytest.mark.parametrize("image, ok", [
    ("ringrun:latest", True), ("localhost/ringrun:nonroot", True), ("ringrun", True),
    ("100.79.1.215:20202/paas_cci_w00427225/horovod-mxnet:mnist", True),
    ("registry.example:5000/a/b@sha256:" + "0" * 64, True), ("[::1]:5000/x:y", True),
    ("*.*.*.215:20202/cci/mxnet:xsw-dis", False), ("Ringrun:latest", False), ("a b", False), ("", False),
    ("ringrun:", False), ("-x", False), ("ringrun:" + "t" * 129, False),
])
def test_image_names_follow_the_engines_grammar(image, ok):
    assert valid_image(image) is ok


def test_an_mpijob_has_workers_first_with_sshd_args_and_a_launcher_with_the_operators_hostfile():
    pods, warnings = pods_of(load("mpijob-allreduce.yaml"))
    assert list(pods) == ["allreduce-worker-0", "allreduce-worker-1", "allreduce-launcher"]
    assert warnings == ()
    launcher, worker = pods["allreduce-launcher"], pods["allreduce-worker-1"]
    env = dict(launcher.env)
    assert env["K_MPI_JOB_ROLE"] == "launcher" and env["OMPI_MCA_orte_default_hostfile"] == "/etc/mpi/hostfile"
    assert env["OMPI_MCA_orte_set_default_slots"] == "2" and env["RINGRUN_SPEC"] == f"{SPEC_DIR}/job.json"
    assert (env["RINGRUN_ROLE"], env["RINGRUN_INDEX"]) == ("launcher", "0")
    assert launcher.config == ("/etc/mpi", (("hostfile", "allreduce-worker-0.allreduce.default.svc slots=2\n"
                                                         "allreduce-worker-1.allreduce.default.svc slots=2\n"),))
    assert launcher.args[:2] == ("mpirun", "python3") and launcher.command == ()
    assert dict(worker.env)["K_MPI_JOB_ROLE"] == "worker" and worker.args == ("/usr/sbin/sshd", "-De")
    assert worker.dns_search == ("allreduce.default.svc.cluster.local",)
    assert "allreduce-worker-1.allreduce.default.svc" in worker.aliases and worker.hostname == "allreduce-worker-1"
    assert (worker.cpus, worker.memory) == (1.0, 2**30) and worker.ssh_mode == 0o600
    assert [m.target for m in launcher.mounts] == [SPEC_DIR, "/root/.ssh", "/etc/mpi"]
    assert launcher.pull == "always"  # :latest, no imagePullPolicy: Kubernetes' default


def test_a_worker_with_neither_command_nor_args_gets_mpi_operators_sshd_as_its_command():
    obj = load("mpijob-allreduce.yaml")
    del obj["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["args"]
    obj["spec"]["sshAuthMountPath"] = "/home/mpiuser/.ssh"
    pods, _ = pods_of(obj)
    worker = pods["allreduce-worker-0"]
    assert worker.command == ("/usr/sbin/sshd", "-De") and worker.args == () and worker.ssh_mode == 0o644


def test_pytorch_pods_get_training_operators_variables_and_their_service_names():
    pods, _ = pods_of(load("pytorchjob-gloo.yaml"))
    master, worker = pods["gloo-allreduce-master-0"], pods["gloo-allreduce-worker-1"]
    env = dict(worker.env)
    assert (env["MASTER_ADDR"], env["RANK"], env["WORLD_SIZE"]) == ("gloo-allreduce-master-0", "2", "3")
    assert dict(master.env)["RANK"] == "0" and master.mounts[0].target == SPEC_DIR and len(master.mounts) == 1
    assert master.ssh_mode == 0 and master.config is None


def test_pull_policies_map_to_the_engines_words_and_can_be_overridden():
    obj = load("pytorchjob-gloo.yaml")
    specs = obj["spec"]["pytorchReplicaSpecs"]
    specs["Master"]["template"]["spec"]["containers"][0].update(image="ringrun:1.0")
    specs["Worker"]["template"]["spec"]["containers"][0].update(image="ringrun:1.0", imagePullPolicy="Never")
    pods, _ = pods_of(obj)
    assert (pods["gloo-allreduce-master-0"].pull, pods["gloo-allreduce-worker-0"].pull) == ("missing", "never")
    assert {p.pull for p in with_pull(tuple(pods.values()), "always")} == {"always"}


def _with_volumes(volumes, mounts, limits=None):
    obj = load("pytorchjob-gloo.yaml")
    for role in ("Master", "Worker"):
        template = obj["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]
        template["volumes"] = copy.deepcopy(volumes)
        template["containers"][0]["volumeMounts"] = copy.deepcopy(mounts)
        if limits:
            template["containers"][0]["resources"] = {"limits": limits}
    return obj


def test_hostpath_and_emptydir_volumes_are_mounted_where_the_container_says():
    obj = _with_volumes([{"name": "data", "hostPath": {"path": "/srv/data"}}, {"name": "scratch", "emptyDir": {}},
                         {"name": "shm", "emptyDir": {"medium": "Memory"}}],
                        [{"name": "data", "mountPath": "/data", "readOnly": True},
                         {"name": "scratch", "mountPath": "/scratch"}, {"name": "shm", "mountPath": "/dev/shm"}])
    pods, warnings = pods_of(obj)
    mounts = {m.target: m for m in pods["gloo-allreduce-master-0"].mounts}
    assert (mounts["/data"].source, mounts["/data"].host_path, mounts["/data"].read_only) == ("hostPath", "/srv/data",
                                                                                            True)
    assert (mounts["/scratch"].source, mounts["/scratch"].read_only) == ("emptyDir", False)
    assert mounts["/dev/shm"].medium == "Memory" and warnings == ()


@pytest.mark.parametrize("mount, volume, message", [
    ({"subPath": "a"}, {"emptyDir": {}}, "volumeMounts[0].subPath: not supported in ringrun's containers"),
    ({"mountPath": "/d:rw"}, {"emptyDir": {}}, "volumeMounts[0].mountPath: '/d:rw': ':' and ',' are not allowed"),
    ({}, {"hostPath": {"path": "/srv/a,b"}}, "volumes[0].hostPath.path: '/srv/a,b': ':' and ',' are not allowed"),
])
def test_mounts_an_engine_would_misread_or_a_job_could_redirect_are_refused(mount, volume, message):
    obj = _with_volumes([{"name": "v", **volume}], [{"name": "v", "mountPath": "/d", **mount}])
    with pytest.raises(SpecError) as caught:
        pods_of(obj)
    assert f"spec.pytorchReplicaSpecs.Master.template.spec.{message}" in str(caught.value) or \
        f"spec.pytorchReplicaSpecs.Master.template.spec.containers[0].{message}" in str(caught.value), caught.value


@pytest.mark.parametrize("limits, message", [
    ({"memory": "8Ei"}, "resources.limits.memory: 8Ei is more memory than an engine can limit"),
    ({"cpu": "1n"}, "resources.limits.cpu: 1n is outside 1m - 1000000 CPUs"),
    ({"cpu": "1e400"}, "resources.limits.cpu: 1e400 is outside 1m - 1000000 CPUs"),
])
def test_limits_no_engine_takes_are_refused_by_field(limits, message):
    with pytest.raises(SpecError) as caught:
        pods_of(_with_volumes([], [], limits=limits))
    assert f"spec.pytorchReplicaSpecs.Master.template.spec.containers[0].{message}" in str(caught.value)


def test_an_exbibyte_is_a_suffix_not_an_exponent():
    pods, _ = pods_of(_with_volumes([], [], limits={"memory": "1Ei"}))
    assert pods["gloo-allreduce-master-0"].memory == 2**60


def test_a_relative_working_dir_and_too_many_pods_are_refused():
    obj = load("pytorchjob-gloo.yaml")
    obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["workingDir"] = "../etc"
    with pytest.raises(SpecError) as caught:
        pods_of(obj)
    assert "containers[0].workingDir: '../etc' must be an absolute path without '..'" in str(caught.value)
    obj = load("pytorchjob-gloo.yaml")
    obj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = 1024
    with pytest.raises(SpecError) as caught:
        pods_of(obj)
    assert "has 1025 replicas; one machine runs at most 1024 containers of a job" in str(caught.value)


def test_a_mounted_volume_of_another_kind_is_refused_by_field_and_an_unmounted_one_warned_about():
    obj = _with_volumes([{"name": "cfg", "configMap": {"name": "x"}}, {"name": "pvc", "persistentVolumeClaim":
                                                                       {"claimName": "y"}}],
                        [{"name": "cfg", "mountPath": "/cfg"}])
    with pytest.raises(SpecError) as caught:
        pods_of(obj)
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].volumeMounts[0]: volume 'cfg' is a " \
           "configMap volume" in str(caught.value)
    del obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["volumeMounts"]
    del obj["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["volumeMounts"]
    _, warnings = pods_of(obj)
    assert "spec.pytorchReplicaSpecs.Worker.template.spec.volumes[1]: persistentVolumeClaim volume 'pvc' is not " \
           "provided on one machine (no container of ringrun's mounts it)" in warnings


def test_a_hostpath_the_server_does_not_grant_is_refused_naming_the_volume():
    obj = _with_volumes([{"name": "data", "hostPath": {"path": "/etc"}}], [{"name": "data", "mountPath": "/d"}])
    with pytest.raises(SpecError) as caught:
        pods_of(obj, host_path=lambda path: path.startswith("/srv/"))
    assert "spec.pytorchReplicaSpecs.Master.template.spec.volumes[0].hostPath.path: '/etc' is not a folder this " \
           "server grants" in str(caught.value)


def test_limits_become_cpus_and_bytes_and_unknown_resources_are_warned_about():
    obj = _with_volumes([], [], limits={"cpu": "500m", "memory": "1.5Gi", "nvidia.com/gpu": 1})
    pods, warnings = pods_of(obj)
    master = pods["gloo-allreduce-master-0"]
    assert (master.cpus, master.memory) == (0.5, 3 * 2**29)
    assert "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].resources.limits.nvidia.com/gpu: no such " \
           "resource on this machine; not enforced" in warnings


def test_an_image_no_engine_can_parse_is_refused_naming_each_field():
    obj = load("mxjob-kvstore.yaml")
    for spec in obj["spec"]["mxReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][0]["image"] = "*.*.*.215:20202/cci/mxnet:xsw-dis"
    with pytest.raises(SpecError) as caught:
        pods_of(obj)
    for role in obj["spec"]["mxReplicaSpecs"]:
        assert f"spec.mxReplicaSpecs.{role}.template.spec.containers[0].image: '*.*.*.215:20202/cci/mxnet:xsw-dis' " \
               "is not an image name a container engine can parse" in str(caught.value)


def test_security_context_users_come_from_the_container_then_the_pod():
    obj = load("pytorchjob-gloo.yaml")
    specs = obj["spec"]["pytorchReplicaSpecs"]
    specs["Master"]["template"]["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 100}
    specs["Worker"]["template"]["spec"]["securityContext"] = {"runAsUser": 1000}
    specs["Worker"]["template"]["spec"]["containers"][0]["securityContext"] = {"runAsUser": 2000}
    pods, _ = pods_of(obj)
    assert (pods["gloo-allreduce-master-0"].user, pods["gloo-allreduce-worker-0"].user) == ("1000:100", "2000")


def _run(*args, **kwargs):
    raise AssertionError("run_argv runs nothing")


def test_the_engines_run_command_holds_every_part_of_the_pod():
    pods, _ = pods_of(load("mpijob-allreduce.yaml"))
    launcher = pods["allreduce-launcher"]
    engine = Engine("podman", "/usr/bin/podman", runner=_run)
    argv = engine.run_argv(launcher, "c1", "net1", "/r/env", [("/r/spec", SPEC_DIR, True, False),
                                                            (None, "/dev/shm", False, False),
                                                            ("/srv/data", "/data", False, True)],
                           {"io.ringrun.owner": "me"}, (("MULTI", "a\nb"),))
    assert argv[:4] == ["/usr/bin/podman", "run", "--rm", "--name"]
    assert argv[argv.index("ringrun:latest"):] == ["ringrun:latest", *launcher.args]
    for pair in (["--network", "net1"], ["--env-file", "/r/env"], ["--volume", f"/r/spec:{SPEC_DIR}:ro"],
                 ["--tmpfs", "/dev/shm"], ["--env", "MULTI=a\nb"], ["--label", "io.ringrun.owner=me"],
                 ["--hostname", "allreduce-launcher"], ["--pull", "never"],
                 ["--network-alias", "allreduce-launcher.allreduce.default.svc"],
                 ["--volume", "/srv/data:/data:rw,nosuid,nodev"], ["--cap-drop", "MKNOD"],
                 ["--security-opt", "no-new-privileges"]):
        assert pair in [argv[j:j + 2] for j in range(len(argv) - 1)], pair
    assert "--entrypoint" not in argv  # args only: the image's ENTRYPOINT (ringrun) runs them


def test_a_command_replaces_the_entrypoint_and_the_images_cmd():
    obj = load("mpijob-allreduce.yaml")
    container = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    container["command"], container["args"] = ["mpirun", "-n", "2"], ["/home/mpiuser/pi"]
    pods, _ = pods_of(obj)
    engine = Engine("docker", "/usr/bin/docker", runner=_run)
    argv = engine.run_argv(pods["allreduce-launcher"], "c", "n", "/e", [], {})
    assert argv[argv.index("--entrypoint"):] == ["--entrypoint", "mpirun", "ringrun:latest", "-n", "2",
                                                 "/home/mpiuser/pi"]
    assert "--log-driver" not in argv  # podman's option

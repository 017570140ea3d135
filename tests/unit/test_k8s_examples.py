"""examples/k8s: the manifests for a cluster validate, use the job image of docker/ the way its ENTRYPOINT needs, read
the spec from the ConfigMap their comment creates, and plan every pod as intended (argv, sshd, keys, identity)."""

import json
import re

import pytest
import yaml

from conftest import ROOT, run_cli

K8S = ROOT / "examples" / "k8s"
IMAGE = "ringrun:latest"  # the tag docker/Dockerfile's comment builds


def manifest(name):
    return yaml.safe_load((K8S / name).read_text())


def pod_specs(obj):
    spec = obj["spec"]
    if obj["apiVersion"].startswith("kubeflow.org"):
        return [r["template"]["spec"] for r in spec["mpiReplicaSpecs"].values()]
    return [spec["worker"]["template"]["spec"]]


def plan(name, environ):
    code, out, err = run_cli(["plan", str(K8S / name), "--run-dir", "/run/rr"], environ=environ)
    assert (code, err) == (0, "")
    return json.loads(out)


@pytest.mark.parametrize("name", ["mpijob-v2beta1.yaml", "tensorstack-mpijob.yaml"])
def test_manifest_uses_the_image_and_the_configmap_it_documents(name):
    code, out, err = run_cli(["validate", str(K8S / name)])
    assert (code, err) == (0, "") and out.startswith("MPIJob")
    text = (K8S / name).read_text()
    created = re.findall(r"kubectl create configmap (\S+) --from-file=job\.yaml=examples/k8s/(\S+)", text)
    assert created == [(created[0][0], name)]  # the ConfigMap holds this very file
    assert f"docker build -f docker/Dockerfile -t {IMAGE} ." in text
    for pod in pod_specs(manifest(name)):
        (container,) = pod["containers"]
        assert container["image"] == IMAGE
        assert "command" not in container  # a command would replace ringrun's ENTRYPOINT
        env = {e["name"]: e["value"] for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        spec_dir, spec_file = env["RINGRUN_SPEC"].rsplit("/", 1)
        (volume,) = [n for n, path in mounts.items() if path == spec_dir]
        assert spec_file == "job.yaml" and volumes[volume]["configMap"]["name"] == created[0][0]


def test_mpijob_v2beta1_pods():
    name = "mpijob-v2beta1.yaml"
    launcher_args = manifest(name)["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]["args"]
    launcher = plan(name, {"K_MPI_JOB_ROLE": "launcher", "HOSTNAME": "allreduce-launcher-x7k2p"})
    assert (launcher["role"], launcher["argv"]) == ("launcher", launcher_args)
    assert launcher["files"]["/run/rr/hostfile"] == "".join(
        f"allreduce-worker-{i}.allreduce.default.svc slots=2\n" for i in (0, 1))
    assert launcher["wait_for"] == [f"allreduce-worker-{i}.allreduce.default.svc:22" for i in (0, 1)]
    assert launcher["notify"] == [f"allreduce-worker-{i}.allreduce.default.svc" for i in (0, 1)]  # cleanPodPolicy
    assert launcher["env"]["RINGRUN_WAIT_TIMEOUT"] == "300"
    # a worker with neither command nor args would get mpi-operator's `/usr/sbin/sshd -De` in place of ringrun's
    # ENTRYPOINT; given as args, ringrun's worker runs sshd itself
    assert manifest(name)["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["args"] == [
        "/usr/sbin/sshd", "-De"]
    worker = plan(name, {"K_MPI_JOB_ROLE": "worker", "HOSTNAME": "allreduce-worker-1"})
    assert (worker["role"], worker["index"]) == ("worker", 1)
    assert worker["argv"] == ["/usr/sbin/sshd", "-D", "-e", "-f", "/run/rr/sshd_config"]
    assert worker["ssh"]["mount"] == "/root/.ssh"


def test_tensorstack_pods():
    name = "tensorstack-mpijob.yaml"
    launcher = plan(name, {"HOSTNAME": "t9k-allreduce-launcher"})
    argv = launcher["argv"]
    assert argv[:3] == ["/opt/ringrun/venv/bin/mpirun", "-np", "2"]  # mpiHome
    joined = " ".join(argv)
    assert "--mca btl self,tcp --mca mpi_yield_when_idle 1" in joined
    assert argv[-8:] == ["--bind-to", "none", "--tag-output",
                         "python", "-m", "ringrun.kernels.check", "--length", "1000003"]
    assert launcher["ssh"]["mount"] == "/etc/ringrun-ssh"
    worker = plan(name, {"HOSTNAME": "t9k-allreduce-worker-0"})
    assert worker["argv"][0] == "/usr/sbin/sshd" and worker["ssh"]["mount"] == "/etc/ringrun-ssh"

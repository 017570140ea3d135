"""`ringrun run --engine docker`: the same job through docker instead of podman. A dockerd of the test's own (its
data and exec roots in fresh folders, no default bridge, inside the test's `unshare --net --mount`), ringrun:pi
moved into it from podman, the published pi example run with DOCKER_HOST pointing at it: its ranks on its worker
containers, nothing left in docker after it. dockerd is stopped by its PID."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ROOT
from containers import missing_images, podman
from serverproc import end

RINGRUN = os.path.join(os.path.dirname(sys.executable), "ringrun")
PI = ROOT / "tests" / "fixtures" / "corpus" / "kubeflow+mpi-operator" / "v0.8.2" / "examples" / "v2beta1" / "pi" / \
    "pi.yaml"


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory):
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        pytest.fail("dockerd is not installed (`make system-packages` installs Debian's docker.io)")
    if missing_images(["ringrun:pi"]):
        pytest.fail("ringrun:pi is not built (`make images` builds it)")
    folder = tmp_path_factory.mktemp("dockerd")
    run = tempfile.mkdtemp(prefix="rrdk-", dir="/run")  # containerd's socket path must stay short
    socket = os.path.join(run, "docker.sock")
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    log = open(folder / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([dockerd, "--data-root", str(folder / "root"), "--exec-root", os.path.join(run, "exec"),
                             "--pidfile", os.path.join(run, "pid"), "-H", f"unix://{socket}", "--bridge", "none"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "info"], env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "dockerd.log").read_text()
            time.sleep(0.5)
        image = folder / "pi.tar"
        podman("save", "--output", str(image), "localhost/ringrun:pi", timeout=300)
        for argv in (["load", "--input", str(image)], ["tag", "localhost/ringrun:pi", "ringrun:pi"]):
            subprocess.run(["docker", *argv], env=env, check=True, capture_output=True, timeout=300)
        yield env
    finally:
        end(proc, 60)
        log.close()
        shutil.rmtree(run, ignore_errors=True)


def test_the_pi_example_runs_through_docker(tmp_path, docker_host):
    spec = tmp_path / "pi.yaml"
    spec.write_text(PI.read_text().replace("mpioperator/mpi-pi:openmpi", "ringrun:pi"))
    result = subprocess.run([RINGRUN, "run", "--engine", "docker", "--grace", "3", str(spec)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env=docker_host, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rank 0 on host pi-worker-0" in result.stdout and "Rank 1 on host pi-worker-1" in result.stdout
    assert "pi is approximately 3.14" in result.stdout
    assert f"running {shutil.which('docker')} run --rm --name ringrun-" in result.stderr  # the engine it ran
    left = subprocess.run(["docker", "ps", "--all", "--filter", "label=io.ringrun.owner=ringrun-run", "--format",
                           "{{.Names}}"], env=docker_host, capture_output=True, text=True, timeout=60)
    networks = subprocess.run(["docker", "network", "ls", "--filter", "label=io.ringrun.owner=ringrun-run",
                               "--format", "{{.Name}}"], env=docker_host, capture_output=True, text=True, timeout=60)
    assert left.stdout.split() == [] and networks.stdout.split() == []

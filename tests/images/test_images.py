"""The job images `make images` builds (scripts/images.py), run with podman: what each carries and how it starts.

Run by `make test-images` as root inside `unshare --net --mount` (every container with `--network none`); as
anyone else, or where the images were not built, they skip saying why.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import images  # noqa: E402  (scripts/images.py: the variants, the runtime wrapper)

SEED = ROOT / "tests" / "fixtures" / "seed-000-request.json"
LIBRARY = {"openmpi": "Open MPI", "mpich": "HYDRA", "intelmpi": "Intel(R) MPI Library"}


def _why_not():
    if os.geteuid() != 0:
        return "the image tests need root (podman as root, images built by `make images` as root)"
    if shutil.which("podman") is None:
        return "podman is not installed (`make test` installs it as root)"
    return None


@pytest.fixture(scope="module")
def podman():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    engine = images.Engine("podman", open(os.devnull, "w"))
    missing = [f"ringrun:{n}" for n in images.VARIANTS if not engine.has_image(f"ringrun:{n}")]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (`make images` builds them)")
    engine.choose_runtime()

    def run(image, *argv, entrypoint=None, env=(), mounts=(), hostname=None, check=True):
        args = ["podman", *engine.global_args, "run", "--rm", "--network", "none"]
        args += ["--entrypoint", entrypoint] if entrypoint else []
        args += ["--hostname", hostname] if hostname else []
        args += [a for k, v in env for a in ("--env", f"{k}={v}")]
        args += [a for host, inside in mounts for a in ("--volume", f"{host}:{inside}:ro")]
        result = subprocess.run(args + [image, *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=300)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result
    return run


def inspect(image):
    out = subprocess.run(["podman", "image", "inspect", image], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return json.loads(out)[0]["Config"]


@pytest.mark.parametrize("name", list(images.VARIANTS))
def test_each_image_carries_this_ringrun_its_mpi_and_sshd(podman, name):
    variant = images.VARIANTS[name]
    version = podman(f"ringrun:{name}", "--version", entrypoint="ringrun").stdout
    mine = subprocess.run([sys.executable, "-m", "ringrun.launcher", "--version"], capture_output=True, text=True,
                          timeout=60).stdout
    assert version == mine and version.startswith("ringrun ")
    base = variant
    while base.extras is None:  # an image made from another (nonroot, horovod, pi) has its extras
        base = images.VARIANTS[base.parent]
    extras = base.extras.split(",")
    assert LIBRARY[extras[0]] in podman(f"ringrun:{name}", "--version", entrypoint="mpirun").stdout
    assert podman(f"ringrun:{name}", "-u", entrypoint="id").stdout.strip() == ("1000" if variant.user != "root"
                                                                               else "0")
    config = inspect(f"ringrun:{name}")
    assert config["Entrypoint"] == ["ringrun", "entrypoint", "--"]
    assert ("RINGRUN_SSH_PORT=2222" in config["Env"]) == (variant.port == 2222)
    has = set(extras) | ({"horovod.torch"} if name == "horovod" else set())
    for framework in ("torch", "mxnet", "horovod.torch"):  # imported: a wheel's system libraries are there too
        found = podman(f"ringrun:{name}", "-c", f"import {framework}", entrypoint="python3", check=False)
        assert (found.returncode == 0) == (framework in has), found.stderr[-2000:]


def test_the_entrypoint_runs_a_replica_of_the_spec_it_is_given(podman):
    """The ENTRYPOINT untouched, the job spec mounted as a ConfigMap would be: a PyTorchJob master (one node, so
    nothing to wait for) runs the pod's args with training-operator's variables."""
    spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "one", "namespace": "ns"},
            "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "pytorch", "image": "ringrun:torch"}]}}}}}}
    folder = ROOT / "build" / "image-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(spec))
    result = podman("ringrun:torch", "python3", "-c", "import os; print(os.environ['RANK'], os.environ['WORLD_SIZE'], "
                    "os.environ['MASTER_ADDR'])", env=[("RINGRUN_SPEC", "/etc/ringrun/job.json")],
                    mounts=[(folder, "/etc/ringrun")], hostname="one-master-0")
    assert result.stdout.splitlines()[-1] == "0 1 one-master-0"


def test_the_seed_validates_in_every_mpi_image(podman):
    for name in ("latest", "mpich", "intelmpi"):
        result = podman(f"ringrun:{name}", "validate", "/seed/seed.json", entrypoint="ringrun",
                        mounts=[(SEED, "/seed/seed.json")])
        assert result.stdout.startswith("MPIJob default/mpi-test (kubeflow.org/v1alpha2)")


def test_a_bad_spec_fails_in_the_image_with_the_spec_error_code(podman):
    result = podman("ringrun:nonroot", env=[("RINGRUN_SPEC", "/nowhere.yaml")], check=False)
    assert result.returncode == 2 and "/nowhere.yaml: no such file" in result.stderr

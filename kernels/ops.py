"""Reduction ops and dtypes, and the checks every collective applies to its buffer."""

import numpy as np

DTYPES = tuple(np.dtype(t) for t in ("float16", "float32", "float64", "int32", "int64"))
_SUPPORTED = frozenset(DTYPES)
# `average` reduces with add, then divides by the world size (floor division for integer dtypes).
UFUNCS = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum, "average": np.add}


def flat_view(buf, what="buf"):
    """A 1-D view of `buf` after checking it can be reduced in place. Raises ValueError/TypeError, never copies."""
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(buf).__name__}")
    if buf.dtype not in _SUPPORTED:
        raise ValueError(f"{what}: dtype {buf.dtype} is not supported (supported: {', '.join(map(str, DTYPES))})")
    flags = buf.flags
    if not flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous (use np.ascontiguousarray and copy the result back)")
    if not flags.writeable:
        raise ValueError(f"{what} is read-only; the reduction happens in place")
    return buf if buf.ndim == 1 else buf.reshape(-1)


def ufunc_for(op):
    try:
        return UFUNCS[op]
    except (KeyError, TypeError):
        raise ValueError(f"op must be one of {', '.join(UFUNCS)}, got {op!r}") from None


def finish(flat, op, size):
    """Apply what is left after the reduction: average divides by the world size."""
    if op == "average" and size > 1 and flat.size:
        if flat.dtype.kind == "f":
            np.divide(flat, size, out=flat)
        else:
            np.floor_divide(flat, size, out=flat)

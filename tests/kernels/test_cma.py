"""Cross Memory Attach (kernels/cma.py) within this process: the copies land, and a refused one is an OSError that
says what was asked."""

import os

import numpy as np
import pytest

from ringrun.kernels.cma import Copier


def test_read_and_write_copy_exact_bytes():
    copier = Copier()
    source = np.arange(100_000, dtype=np.float64)
    target = np.zeros_like(source)
    copier.read(os.getpid(), target.ctypes.data + 8, source.ctypes.data + 16, 800)
    assert np.array_equal(target[1:101], source[2:102]) and target[0] == 0 and target[101] == 0
    other = np.zeros_like(source)
    copier.write(os.getpid(), source.ctypes.data, other.ctypes.data, source.nbytes)
    assert np.array_equal(other, source)


def test_a_refused_copy_raises_and_the_probe_says_no():
    copier = Copier()
    with pytest.raises(OSError, match=r"process_vm_readv of 8 bytes with pid .*: Bad address"):
        copier.read(os.getpid(), np.zeros(1).ctypes.data, 8, 8)  # nothing is mapped at address 8
    known = np.array([0x1234567890, 7], dtype=np.int64)
    assert copier.works(os.getpid(), known.ctypes.data, known.tobytes()) is True
    assert copier.works(os.getpid(), known.ctypes.data, known[::-1].tobytes()) is False  # readable, another value
    assert copier.works(os.getpid(), 8, known.tobytes()) is False

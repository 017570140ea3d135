"""ringrun.kernels - collectives over mpi4py (or any object with the `kernels.comm` protocol).

Knows nothing of ringrun.runtime or ringrun.launcher.
"""

from .allreduce import allreduce, choose_algorithm
from .collectives import allgather, broadcast
from .fusion import Fusion, allreduce_many

__all__ = ["Fusion", "allgather", "allreduce", "allreduce_many", "broadcast", "choose_algorithm"]

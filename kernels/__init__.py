"""ringrun.kernels - collectives over mpi4py (ring allreduce and friends). Knows nothing of runtime or launcher."""

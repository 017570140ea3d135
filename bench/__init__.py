"""ringrun.bench - the benchmark harness: per-rank timing, framework adapters, the report.

    options.py   the options of `ringrun bench allreduce|fusion|train`, shared with the ranks; sizes
    registry.py  impl -> adapter; `Unavailable`
    ring.py      ringrun's own collectives (ringrun.kernels)    mpi.py      MPI ranks and MPI_Allreduce
    horovod.py   Horovod on the MPI ranks                       gloo.py     torch.distributed's gloo ranks
    rank.py      what every rank runs: verify, then time (`python -m ringrun.bench.rank`)
    report.py    documents -> statistics and tables             models.py   reference models' parameter shapes

Uses ringrun.kernels; ringrun.kernels knows nothing of it. Starting the ranks (mpirun, plain processes) is the
launcher's (launcher/bench.py). Importing this package or its options loads no framework: `ringrun` builds its
parser from `options` on every run.
"""

"""`ringrun serve` on the command line, and the `ringrun` console script: the launcher's commands and this one.
The server builds on the launcher (its CLI, its execution core), never the other way round."""

import argparse
import os
import sys

from ringrun.launcher.cli import SECONDS, add_container_options, bounded, grace_seconds
from ringrun.launcher.cli import main as launcher_main
from ringrun.launcher.logfiles import Rotation


def _capacity(text):
    """--capacity cpu=N,memory=Q -> (cpu cores, memory bytes); a part left out is this machine's."""
    from ringrun.launcher.machine import machine_capacity
    from ringrun.runtime import UsageError
    from ringrun.runtime.quantity import parse_quantity

    cpu, memory = machine_capacity()
    for part in (p for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        try:
            amount = parse_quantity(value)
        except ValueError:
            amount = None
        if name.strip() not in ("cpu", "memory") or amount is None or amount < 0:
            raise UsageError(f"--capacity: expected cpu=N,memory=QUANTITY (e.g. cpu=8,memory=16Gi), got {text!r}")
        if name.strip() == "cpu":
            cpu = float(amount)
        else:
            memory = int(amount)
    return cpu, memory


def _log_size(text):
    """--log-max-size: a quantity of bytes (10Mi, 1M, 65536) from 4Ki to 1Gi (a log is read whole at most)."""
    from ringrun.runtime.quantity import parse_quantity

    try:
        amount = parse_quantity(text)
    except ValueError:
        amount = None
    if amount is None or not 4096 <= amount <= 2**30:
        raise argparse.ArgumentTypeError(f"must be a size from 4Ki to 1Gi (e.g. 10Mi), got {text!r}")
    return int(amount)


def _uid_range(text):
    """--job-uids FIRST-LAST: an argparse type (1 <= FIRST <= LAST < 2**32 - 1)."""
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit() and 1 <= int(first) <= int(last) < 2**32 - 1):
        raise argparse.ArgumentTypeError(f"must be FIRST-LAST, two uids from 1 to 4294967294, got {text!r}")
    return int(first), int(last)


def default_data_dir(environ):
    """$XDG_DATA_HOME/ringrun/serve, else ~/.local/share/ringrun/serve."""
    base = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "ringrun", "serve")


def cmd_serve(args, environ, hostname, out, err):
    try:
        from .app import Settings, serve
    except ImportError as exc:
        from ringrun.runtime.errors import SetupError

        raise SetupError(f"ringrun serve needs the `server` extra: {sys.executable} -m pip install 'aiohttp>=3.9,<4' "
                         f"'cryptography>=42' (`make test` installs it into .venv): {exc}") from None
    settings = Settings(data_dir=args.data_dir or default_data_dir(environ), host=args.host, port=args.port,
                        token_files=tuple(args.token_auth_file or ()), policy_file=args.policy,
                        capacity=_capacity(args.capacity) if args.capacity else None,
                        grace=grace_seconds(args, environ), watch_history=args.watch_history, jobs_dir=args.jobs_dir,
                        max_connections=args.max_connections, log_rotation=Rotation(args.log_max_size, args.log_max_files),
                        containers=bool(args.containers or args.engine or args.pull), engine=args.engine,
                        pull=args.pull, trainer_runtimes=not args.no_trainer_runtimes,
                        **({"job_uids": args.job_uids} if args.job_uids else {}))
    return serve(settings, environ, out, err)


def add_serve(sub):
    """The `serve` subcommand, added to the launcher's parser."""
    serve_help = "the job API server: MPIJob, PyTorchJob, MXJob and TensorStack MPIJob over Kubernetes' API, run here"
    serve = sub.add_parser(
        "serve", help=serve_help, description=serve_help,
        epilog="writes DATA/kubeconfig (server URL, CA, admin token) once it accepts connections: "
               "export KUBECONFIG=DATA/kubeconfig, then kubectl or the kubernetes Python client. SIGTERM or SIGINT "
               "stops it: running jobs are stopped (Failed), queued jobs start when it starts again")
    serve.add_argument("--data-dir", metavar="DIR", help="store, certificates, tokens, logs (default "
                                                         "$XDG_DATA_HOME/ringrun/serve or ~/.local/share/ringrun/serve)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=bounded(int, 0, 65535, "a port number from 0 (any free port) to 65535"),
                       default=6443, help="port (default 6443; 0 picks a free one)")
    serve.add_argument("--token-auth-file", action="append", metavar="FILE",
                       help="more users: CSV lines token,user,uid,\"group1,group2\" (kube-apiserver's format)")
    serve.add_argument("--policy", metavar="FILE", help="who may do what where: rules of user|group, namespaces, "
                                                        "verbs, resources (the admin may do everything)")
    serve.add_argument("--capacity", metavar="cpu=N,memory=Q",
                       help="what admitted jobs may request together (default: this machine's cores and memory)")
    serve.add_argument("--grace", type=SECONDS, metavar="S",
                       help="seconds between SIGTERM and SIGKILL when stopping a job (default $RINGRUN_GRACE_SECONDS "
                            "or 5)")
    serve.add_argument("--watch-history", type=bounded(int, 256, 10**7, "a number of events from 256 to 10000000"),
                       default=20000, metavar="N", help="changes kept for watches (default 20000); a watch from an "
                                                        "older resourceVersion gets 410 Expired")
    serve.add_argument("--jobs-dir", metavar="DIR", help="where each job gets a folder of its own (its HOME and "
                                                         "default workingDir; default /var/lib/ringrun/jobs as root, "
                                                         "DATA/jobs otherwise)")
    serve.add_argument("--max-connections", type=bounded(int, 2, 1_000_000, "a count from 2 to 1000000"),
                       default=2048, metavar="N", help="client connections at once, TLS handshakes included (default "
                                                       "2048, fewer when RLIMIT_NOFILE leaves fewer); half of them "
                                                       "from one address at most")
    serve.add_argument("--log-max-size", type=_log_size, default=10 * 1024 * 1024, metavar="QUANTITY",
                       help="each replica's log is rotated past this size (default 10Mi, kubelet's)")
    serve.add_argument("--log-max-files", type=bounded(int, 1, 100, "a count from 1 to 100"), default=5, metavar="N",
                       help="log files kept per replica, the current one included (default 5, kubelet's)")
    serve.add_argument("--job-uids", type=_uid_range, metavar="FIRST-LAST",
                       help="as root: the uids given to namespaces, one each, for their jobs (default "
                            "1000000000-1000099999)")
    serve.add_argument("--no-trainer-runtimes", action="store_true",
                       help="do not install Kubeflow Trainer's published ClusterTrainingRuntimes (torch-distributed, "
                            "deepspeed-distributed, ...) when the data directory's store is new")
    add_container_options(serve, "a process as the namespace's user")
    serve.set_defaults(func=cmd_serve)


def main(argv=None, environ=None, hostname=None, out=None, err=None):
    """`ringrun ...`: every command; returns the exit code."""
    return launcher_main(argv, environ, hostname, out, err, commands=(add_serve,))


def entry():
    """Console-script entry point."""
    sys.exit(main())

"""The `ringrun` command line. Quiet on success, one clear line per problem on failure, documented exit codes (one
`ExitCode` each, runtime/errors.py: the help's and the README's lists are made from it). `run` and `launch` exit with
the job's code: the launcher's (MPI) or the master's / first failure's."""

import argparse
import json
import os
import signal
import sys

from ringrun.runtime.errors import ExitCode, exit_codes_help

EXIT_INTERRUPTED = ExitCode.signal(signal.SIGINT)
EXIT_NOT_FOUND = ExitCode.NOT_STARTED


def bounded(kind, low, high, what):
    """An argparse type: a `kind` (int or float) in [low, high], finite; the error names the range."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not low <= value <= high:  # also false for nan
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


PORT = bounded(int, 1, 65535, "a port number from 1 to 65535")
RANKS = bounded(int, 1, 2**31 - 1, "a number of ranks from 1 to 2147483647")
SECONDS = bounded(float, 0.0, 1e9, "a number of seconds from 0 to 1e9")
DEADLINE = bounded(float, 0.001, 1e9, "a number of seconds above 0, at most 1e9")


def _read_spec(path):
    """The text of the spec at `path` ('-' is standard input). Raises SpecError when it cannot be read."""
    from ringrun.runtime import SpecError

    from ringrun.runtime.parse import MAX_SPEC_BYTES

    try:
        if path == "-":
            text, source = sys.stdin.read(MAX_SPEC_BYTES + 1), "<stdin>"
        else:
            with open(path, encoding="utf-8") as handle:  # at most one byte past the limit: /dev/zero ends too
                text, source = handle.read(MAX_SPEC_BYTES + 1), path
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError([f"{source}: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB; no job spec is that big"])
        return text, source
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a job spec"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot be read: {exc}"]) from None


def _load_job(args, err):
    from ringrun.runtime import parse_jobs, select_job
    from ringrun.runtime.kinds.trainjob import published_lookup

    text, source = _read_spec(args.spec)
    return _warn(select_job(parse_jobs(text, source, args.field_validation, published_lookup), args.job), args,
                 err)


def _warn(job, args, err):
    """Print the job's warnings (a field accepted in another form than its CRD's) and return the job."""
    for line in job.warnings:
        err.write(f"ringrun {args.subcommand}: warning: {line}\n")
    return job


def default_ssh_port(environ):
    """RINGRUN_SSH_PORT, else 22 for root and 2222 for anyone else (a non-root sshd cannot bind below 1024)."""
    value = environ.get("RINGRUN_SSH_PORT")
    if value:
        if not value.isdigit() or not 0 < int(value) < 65536:
            from ringrun.runtime import UsageError

            raise UsageError(f"RINGRUN_SSH_PORT: must be a port number, got {value!r}")
        return int(value)
    return 22 if os.geteuid() == 0 else 2222


def cmd_validate(args, environ, hostname, out, err):
    from ringrun.runtime.summary import summary

    out.write(summary(_load_job(args, err)))
    return 0


def cmd_plan(args, environ, hostname, out, err):
    from ringrun.runtime import build_plan, resolve_identity

    job = _load_job(args, err)
    identity = resolve_identity(job, role=args.role, index=args.index, env=environ, hostname=hostname)
    plan = build_plan(job, identity, pod_context(args, environ, job, identity))
    if args.format == "env":
        out.write(plan.env_lines())
    else:
        out.write(json.dumps(plan.to_dict(), indent=2) + "\n")
    return 0


def _check_outputs(args):
    """--status must name a file in an existing folder, --log-dir a folder (made when missing): checked before
    anything starts, so a run never fails half-way for want of a place to write. Raises UsageError."""
    from ringrun.runtime import UsageError

    if args.status is not None:
        folder = os.path.dirname(os.path.abspath(args.status))
        if os.path.isdir(args.status):
            raise UsageError(f"--status: {args.status!r} is a directory; give a file name")
        if not os.path.isdir(folder):
            raise UsageError(f"--status: the folder {folder!r} does not exist")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--status: the folder {folder!r} is not writable")
    if args.log_dir is not None and os.path.exists(args.log_dir) and not os.path.isdir(args.log_dir):
        raise UsageError(f"--log-dir: {args.log_dir!r} exists and is not a directory")
    if args.log_dir is not None:
        try:
            os.makedirs(args.log_dir, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--log-dir: cannot make {args.log_dir!r}: {exc.strerror or exc}") from None
        if not os.access(args.log_dir, os.W_OK | os.X_OK):
            raise UsageError(f"--log-dir: {args.log_dir!r} is not writable")


def run_dir_of(args, environ, job):
    """A pod's run directory (absolute): --run-dir, else $RINGRUN_RUN_DIR, else the default of launcher/rundir.py
    (root: /run/ringrun/<job>; others: $XDG_RUNTIME_DIR/ringrun/<job> or ~/.ringrun/run/<job>)."""
    from .rundir import default_run_dir

    given = args.run_dir or environ.get("RINGRUN_RUN_DIR") or default_run_dir(job.name, environ, os.geteuid())
    if not given:
        from ringrun.runtime import UsageError

        raise UsageError("no run directory: give --run-dir or RINGRUN_RUN_DIR (neither XDG_RUNTIME_DIR nor HOME "
                         "names a folder of this user's)")
    return os.path.abspath(given)


def add_container_options(parser, otherwise):
    """--containers, --engine and --pull (`ringrun run` and `ringrun serve`); `otherwise`: what a replica is
    without them."""
    parser.add_argument("--containers", action="store_true",
                        help="run each replica as a container of its `image` (podman or docker) on a network of its "
                             f"job's own with the pods' DNS names, as the operators make the pods; default: "
                             f"{otherwise}")
    parser.add_argument("--engine", choices=("podman", "docker"),
                        help="the container engine (implies --containers; default: podman, else docker)")
    parser.add_argument("--pull", choices=("never", "missing", "always"),
                        help="pull images so, whatever each container's imagePullPolicy says (implies --containers)")


def cmd_run(args, environ, hostname, out, err):
    from ringrun.runtime import select_job
    from ringrun.runtime.local import apply_sets
    from ringrun.runtime.kinds.trainjob import published_lookup
    from ringrun.runtime.parse import load_documents, parse_objects

    from .local import Options, run_job

    text, source = _read_spec(args.spec)
    objects = load_documents(text, source)
    if args.set:
        objects = [apply_sets(o, args.set) if args.job is None or _name(o) == args.job else o for o in objects]
    job = _warn(select_job(parse_objects(objects, args.field_validation, published_lookup), args.job), args, err)
    _check_outputs(args)
    containers = None
    if args.containers or args.engine or args.pull:  # --engine and --pull mean nothing without containers
        from .containers import ContainerOptions

        containers = ContainerOptions(engine=args.engine, pull=args.pull)
    obj = next((o for o in objects if _name(o) == job.name and o.get("kind") == job.kind), None)
    options = Options(status_path=args.status, timeout=args.timeout, log_dir=args.log_dir,
                      grace=grace_seconds(args, environ), is_root=os.geteuid() == 0, containers=containers)
    code, document = run_job(job, environ, options, out, err, obj=obj)
    out.write(json.dumps(document, indent=2) + "\n")
    return code


OPERATOR_HOSTFILE = "/etc/mpi/hostfile"


def _seconds(environ, name, default):
    from ringrun.runtime import UsageError

    value = environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not 0 <= seconds < float("inf"):
        raise UsageError(f"{name}: must be a number of seconds >= 0, got {value!r}")
    return seconds


def grace_seconds(args, environ):
    """--grace (range-checked by its option type), else $RINGRUN_GRACE_SECONDS, else the supervisor's default."""
    from .supervise import DEFAULT_GRACE_SECONDS

    if getattr(args, "grace", None) is not None:
        return args.grace
    return _seconds(environ, "RINGRUN_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)


def pod_context(args, environ, job, identity, command=()):
    """What a replica's plan is made from in its pod, the same for `plan` and `entrypoint`: the run directory, the
    workers' ssh port, the environment, a replacement command, and for an MPI launcher the hostfile an operator
    mounted (RINGRUN_HOSTFILE, default /etc/mpi/hostfile), which wins over the spec's workers."""
    from ringrun.runtime import Context

    hostfile = None
    operator_hostfile = environ.get("RINGRUN_HOSTFILE", OPERATOR_HOSTFILE)
    if identity.role == "launcher" and os.path.isfile(operator_hostfile):
        with open(operator_hostfile, encoding="utf-8") as handle:
            hostfile = handle.read()
    return Context(run_dir=run_dir_of(args, environ, job), ssh_port=args.ssh_port or default_ssh_port(environ),
                   environ=dict(environ), command=tuple(command), hostfile=hostfile)


def cmd_entrypoint(args, environ, hostname, out, err):
    from ringrun.runtime import UsageError, build_plan, resolve_identity

    from .entrypoint import Settings, execute, finish
    from .readiness import DEFAULT_WAIT_SECONDS

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.finish is not None:
        run_dir = args.run_dir or environ.get("RINGRUN_RUN_DIR")
        if not run_dir:
            raise UsageError("--finish: needs --run-dir or RINGRUN_RUN_DIR (a worker's sshd sets it for every session)")
        return finish(run_dir, args.finish)
    args.spec = args.spec or environ.get("RINGRUN_SPEC")
    if not args.spec:
        raise UsageError("entrypoint: give the job spec with --spec or RINGRUN_SPEC")
    job = _load_job(args, err)
    identity = resolve_identity(job, role=args.role, index=args.index, env=environ, hostname=hostname)
    plan = build_plan(job, identity, pod_context(args, environ, job, identity, command))
    settings = Settings(wait_timeout=_seconds(environ, "RINGRUN_WAIT_TIMEOUT", DEFAULT_WAIT_SECONDS),
                        grace=grace_seconds(args, environ), is_root=os.geteuid() == 0)
    return execute(job, plan, environ, settings, out, err)


def _name(obj):
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta.get("name") if isinstance(meta, dict) else None


def cmd_bench(args, environ, hostname, out, err):
    from .bench import main as bench_main

    return bench_main(args, environ, out, err)


def cmd_bench_start(args, environ, hostname, out, err):
    from .benchstart import main as bench_start

    return bench_start(args, environ, out, err)


def cmd_bench_serve(args, environ, hostname, out, err):
    from .benchserve import main as bench_serve

    return bench_serve(args, environ, out, err)


def cmd_launch(args, environ, hostname, out, err):
    import shutil

    from ringrun.runtime import UsageError
    from ringrun.runtime.commands import launch_argv, thread_defaults

    from .execute import run_commands, with_python_on_path

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("launch: give the command to run after --")
    env = with_python_on_path(environ)
    local = not (args.H or args.hostfile)  # a command for other hosts may exist only there
    if local and shutil.which(command[0], path=env["PATH"]) is None:
        err.write(f"ringrun launch: cannot start {command[0]}: not found (or not executable)\n")
        return EXIT_NOT_FOUND
    mpirun = shutil.which("mpirun", path=env["PATH"]) or "mpirun"
    export = list(args.x or ())
    if local:  # every rank on this machine: its cores shared out among them (the other hosts' counts are unknown)
        threads = thread_defaults(args.np, len(os.sched_getaffinity(0)), environ)
        env.update(threads)
        export += [name for name in threads if name not in export]
    try:
        argv = launch_argv(args.impl, args.np, command, hosts=args.H, hostfile=args.hostfile, mca=args.mca or (),
                           export=export, is_root=os.geteuid() == 0, mpirun=mpirun)
    except ValueError as exc:
        raise UsageError(f"launch: {exc}") from None
    return run_commands([("mpirun", argv, env)], out, err, "ringrun launch", grace=grace_seconds(args, environ))


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit 2) that names the option, the value and where help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def field_validation(parser):
    parser.add_argument("--field-validation", choices=("Strict", "Warn", "Ignore"), default="Strict",
                        help="a field the kind's CRD schema does not have: Strict (default) refuses the spec; Warn "
                             "drops it with a warning (what `ringrun serve` and kube-apiserver do when a client "
                             "sends no fieldValidation); Ignore drops it silently")


def build_parser(commands=()):
    """The parser of every subcommand; `commands`: more of them, each add(subparsers) (ringrun.server's `serve`:
    the server builds on the launcher, never the other way round)."""
    from ringrun.runtime.model import MPIImplementation

    parser = Parser(
        prog="ringrun",
        description="Runtime inside distributed-training pods (MPIJob, PyTorchJob, MXJob, TensorStack MPIJob).",
        epilog=exit_codes_help())
    parser.add_argument("--version", action="store_true", help="print ringrun's version and exit")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    def spec_command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("spec", metavar="SPEC", help="job spec file, YAML or JSON ('-' reads standard input)")
        p.add_argument("--job", metavar="NAME", help="which job, when the file holds several")
        field_validation(p)
        return p

    spec_command("validate", "check a job spec and print a one-screen summary").set_defaults(func=cmd_validate)
    plan = spec_command("plan", "print what one replica would do: env, files, argv, endpoints to wait for")
    plan.add_argument("--role", help="replica role (launcher, worker, master, scheduler, server, ...)")
    plan.add_argument("--index", type=int, help="replica index (default 0 when the role has one replica)")
    plan.add_argument("--format", choices=("json", "env"), default="json",
                      help="json: the whole plan; env: `export K=V` lines")
    plan.add_argument("--run-dir", help="where ringrun's files go (default $RINGRUN_RUN_DIR, else /run/ringrun/<job> "
                                       "as root, $XDG_RUNTIME_DIR/ringrun/<job> or ~/.ringrun/run/<job> otherwise)")
    plan.add_argument("--ssh-port", type=PORT, help="workers' sshd port (default $RINGRUN_SSH_PORT, else 22 as "
                                                   "root and 2222 otherwise)")
    plan.set_defaults(func=cmd_plan)

    run = spec_command("run", "run the whole job on this machine, every replica a local process (--containers: a "
                              "container of its image)")
    run.add_argument("--status", metavar="FILE", help="write the job's status object here as it changes")
    run.add_argument("--set", action="append", metavar="PATH=VALUE",
                     help="edit the spec first: a dotted path (spec.runPolicy.backoffLimit=2) or ROLE.command, "
                          "ROLE.args, ROLE.replicas, ROLE.env.NAME (TensorStack: worker.cmd); VALUE is YAML")
    run.add_argument("--timeout", type=DEADLINE, metavar="S", help="stop the job after S seconds (DeadlineExceeded)")
    run.add_argument("--log-dir", metavar="DIR", help="also write each replica's stdout and stderr to files here")
    run.add_argument("--grace", type=SECONDS, metavar="S",
                     help="seconds between SIGTERM and SIGKILL when stopping replicas (default $RINGRUN_GRACE_SECONDS "
                          "or 5)")
    add_container_options(run, "a local process")
    run.set_defaults(func=cmd_run)

    launch = sub.add_parser("launch", help="mpirun on local multi-process hosts with ringrun's defaults",
                            description="mpirun with no binding, oversubscription allowed, ranks yielding when "
                                        "idle (Open MPI), root allowed, each rank's output tagged; on this machine "
                                        "alone, OMP_NUM_THREADS and MKL_NUM_THREADS = cores / ranks unless either is set; "
                                        "exit code passed on")
    launch.add_argument("-np", "-n", dest="np", type=RANKS, required=True, help="number of ranks")
    launch.add_argument("-H", metavar="HOST:SLOTS,...", help="hosts and slots")
    launch.add_argument("--hostfile", metavar="FILE")
    launch.add_argument("--mca", nargs=2, action="append", metavar=("K", "V"), help="Open MPI MCA parameter")
    launch.add_argument("--impl", choices=[impl.cli for impl in MPIImplementation], default="openmpi",
                        help="the MPI library whose mpirun runs (default openmpi)")
    launch.add_argument("-x", action="append", metavar="VAR", help="export this variable to the ranks")
    launch.add_argument("--grace", type=SECONDS, metavar="S",
                        help="seconds between SIGTERM and SIGKILL when stopping mpirun (default $RINGRUN_GRACE_SECONDS "
                             "or 5)")
    launch.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    launch.set_defaults(func=cmd_launch)

    from ringrun.bench.options import KINDS, add_options

    bench_help = "benchmarks of ringrun's ring against MPI, Horovod and gloo, side by side in one run"
    bench = sub.add_parser("bench", help=bench_help, description=bench_help)
    kinds = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, text in KINDS.items():
        p = kinds.add_parser(name, help=text, description=text)
        p.add_argument("-np", "-n", dest="np", type=RANKS, required=True, help="number of ranks")
        add_options(p, name)
        if name == "train":  # Open MPI on this machine only
            p.add_argument("--mpi", choices=("openmpi",), default="openmpi", help=argparse.SUPPRESS)
            p.add_argument("--mpi-prefix", help=argparse.SUPPRESS)
            p.add_argument("--json", metavar="FILE", help="write every step's time and the losses here")
            p.add_argument("-H", help=argparse.SUPPRESS)
            p.add_argument("--hostfile", help=argparse.SUPPRESS)
        else:
            p.add_argument("--mpi", choices=[impl.cli for impl in MPIImplementation], default="openmpi",
                           help="MPI library for ring, mpi and horovod (default openmpi)")
            p.add_argument("--mpi-prefix", metavar="DIR", help="the environment holding that MPI and ringrun (default: "
                                                              "this one, else .venv-mpich / .venv-intelmpi beside it)")
            p.add_argument("--json", metavar="FILE", help="write every raw sample and the machine description here")
            p.add_argument("--plot", metavar="FILE.png", help="plot busbw against size, one line per impl")
            p.add_argument("-H", metavar="HOST:SLOTS,...", help="MPI hosts (gloo runs on this machine only)")
            p.add_argument("--hostfile", metavar="FILE")
        p.set_defaults(func=cmd_bench)

    serve_bench = kinds.add_parser("serve", help="load on `ringrun serve`: create -> Running, concurrent creations, "
                                                 "watchers, memory", description="load on a `ringrun serve` of its "
                                   "own (loopback only): memory with finished jobs, create -> Running, creations "
                                   "from concurrent clients (errors, lost, p50/p99), concurrent watchers")
    count = bounded(int, 1, 100000, "a count from 1 to 100000")
    serve_bench.add_argument("--finished", type=count, default=100, help="finished jobs stored before memory is read")
    serve_bench.add_argument("--trials", type=count, default=10, help="create -> Running trials")
    serve_bench.add_argument("--hostile", type=bounded(float, 0, 600, "seconds from 0 to 600"), default=0,
                             metavar="S", help="then each attack of issue 28 for S seconds beside a normal client: "
                                               "its GET p50/p99 and the server's peak RSS (default 0: none)")
    serve_bench.add_argument("--jobs", type=count, default=1000, help="creations in the load phase")
    serve_bench.add_argument("--clients", type=count, default=20, help="concurrent clients in the load phase")
    serve_bench.add_argument("--hold", action="store_true", help="the load phase's jobs are created suspended: "
                                                                 "the API's cost alone, nothing runs")
    serve_bench.add_argument("--watchers", type=count, default=100, help="concurrent watches")
    serve_bench.add_argument("--events", type=count, default=20, help="changes each watcher must see")
    serve_bench.add_argument("--timeout", type=DEADLINE, default=600, help="bound of each phase (s)")
    serve_bench.add_argument("--json", metavar="FILE", help="write the results and the machine here")
    serve_bench.set_defaults(func=cmd_bench_serve)

    start_help = "one job run both ways, replicas as processes and as containers: time until every replica runs, wall time"
    start = kinds.add_parser("start", help=start_help, description=start_help + " (trials interleaved)")
    start.add_argument("spec", nargs="?", metavar="SPEC", help="the job (default: a PyTorchJob of --replicas "
                                                                "replicas of ringrun:latest, each `echo up; sleep 1`)")
    start.add_argument("--replicas", type=bounded(int, 1, 64, "a count from 1 to 64"), default=4,
                       help="replicas of the default job (default 4)")
    start.add_argument("--trials", type=count, default=5, help="runs each way (default 5)")
    start.add_argument("--set", action="append", metavar="PATH=VALUE", help="edit the spec for both ways")
    start.add_argument("--local-set", action="append", metavar="PATH=VALUE",
                       help="edit the spec for the process runs only (a program's path on this machine)")
    start.add_argument("--json", metavar="FILE", help="write every sample and the machine here")
    start.set_defaults(func=cmd_bench_start)

    entry_help = "a pod's ENTRYPOINT: become this replica (sshd worker, waiting launcher, framework role) and run it"
    entrypoint = sub.add_parser(
        "entrypoint", help=entry_help, description=entry_help,
        epilog="environment: RINGRUN_SPEC (the spec), RINGRUN_ROLE/RINGRUN_INDEX, RINGRUN_RUN_DIR (default "
               "/run/ringrun/<job> as root, else $XDG_RUNTIME_DIR/ringrun/<job> or ~/.ringrun/run/<job>; it must "
               "belong to this user and be writable by no one else), RINGRUN_SSH_PORT, RINGRUN_WAIT_TIMEOUT (default 300 s), RINGRUN_GRACE_SECONDS "
               "(default 5), RINGRUN_HOSTFILE (an operator-mounted hostfile, default /etc/mpi/hostfile). "
               "A suspended or paused job starts nothing and waits to be stopped. "
               + exit_codes_help())
    entrypoint.add_argument("--spec", help="job spec file (default $RINGRUN_SPEC)")
    entrypoint.add_argument("--job", metavar="NAME", help="which job, when the file holds several")
    field_validation(entrypoint)
    entrypoint.add_argument("--role", help="replica role (default: from env or host name)")
    entrypoint.add_argument("--index", type=int, help="replica index")
    entrypoint.add_argument("--run-dir", help="where ringrun's files go (default $RINGRUN_RUN_DIR, else "
                                              "/run/ringrun/<job> as root, $XDG_RUNTIME_DIR/ringrun/<job> or "
                                              "~/.ringrun/run/<job> otherwise)")
    entrypoint.add_argument("--ssh-port", type=PORT, help="workers' sshd port (default $RINGRUN_SSH_PORT, else 22 "
                                                         "as root and 2222 otherwise)")
    entrypoint.add_argument("--finish", type=int, metavar="CODE",
                            help="tell this pod's worker entrypoint that the job ended with CODE (the launcher runs "
                                 "this over ssh)")
    entrypoint.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]: replaces the spec's command")
    entrypoint.set_defaults(func=cmd_entrypoint)
    for add in commands:
        add(sub)
    return parser


def main(argv=None, environ=None, hostname=None, out=None, err=None, commands=()):
    """Run the CLI; returns the exit code. environ/hostname/out/err default to the process's own; `commands`: more
    subcommands (build_parser)."""
    from ringrun.runtime import RingrunError

    out = out or sys.stdout
    err = err or sys.stderr
    environ = dict(os.environ) if environ is None else environ
    if hostname is None:
        import socket

        hostname = socket.gethostname()
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.version:
        from importlib.metadata import version

        out.write(f"ringrun {version('ringrun')}\n")
        return 0
    if args.subcommand is None:
        parser.print_usage(err)
        return 2
    try:
        return args.func(args, environ, hostname, out, err)
    except RingrunError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err.write(f"ringrun {args.subcommand}: {line}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry():
    """`python -m ringrun.launcher`: every command but `serve` (the console script is ringrun.server.cli's)."""
    sys.exit(main())

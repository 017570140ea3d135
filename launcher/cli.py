"""The `ringrun` command line. Quiet on success, one clear line per problem on failure, documented exit codes.

Exit codes: 0 success; 2 invalid spec or arguments; 3 replica identity unknown; 130 interrupted.
"""

import argparse
import json
import os
import sys

EXIT_INTERRUPTED = 130


def _read_spec(path):
    """The text of the spec at `path` ('-' is standard input). Raises SpecError when it cannot be read."""
    from ringrun.runtime import SpecError

    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(), path
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise SpecError([f"{path}: is a directory, not a job spec"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot be read: {exc}"]) from None


def _load_job(args):
    from ringrun.runtime import parse_jobs, select_job

    text, source = _read_spec(args.spec)
    return select_job(parse_jobs(text, source), args.job)


def default_ssh_port(environ):
    """RINGRUN_SSH_PORT, else 22 for root and 2222 for anyone else (a non-root sshd cannot bind below 1024)."""
    value = environ.get("RINGRUN_SSH_PORT")
    if value:
        if not value.isdigit() or not 0 < int(value) < 65536:
            from ringrun.runtime import UsageError

            raise UsageError(f"RINGRUN_SSH_PORT: must be a port number, got {value!r}")
        return int(value)
    return 22 if os.geteuid() == 0 else 2222


def cmd_validate(args, environ, hostname, out):
    from ringrun.runtime.summary import summary

    out.write(summary(_load_job(args)))
    return 0


def cmd_plan(args, environ, hostname, out):
    from ringrun.runtime import Context, build_plan, resolve_identity

    job = _load_job(args)
    identity = resolve_identity(job, role=args.role, index=args.index, env=environ, hostname=hostname)
    run_dir = args.run_dir or environ.get("RINGRUN_RUN_DIR") or f"/tmp/ringrun-{job.name}"
    ssh_port = args.ssh_port or default_ssh_port(environ)
    plan = build_plan(job, identity, Context(run_dir=run_dir, ssh_port=ssh_port, environ=dict(environ)))
    if args.format == "env":
        out.write(plan.env_lines())
    else:
        out.write(json.dumps(plan.to_dict(), indent=2) + "\n")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ringrun",
        description="Runtime inside distributed-training pods (MPIJob, PyTorchJob, MXJob, TensorStack MPIJob).",
        epilog="exit codes: 0 ok, 2 invalid spec or arguments, 3 replica identity unknown, 130 interrupted")
    parser.add_argument("--version", action="store_true", help="print ringrun's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def spec_command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("spec", metavar="SPEC", help="job spec file, YAML or JSON ('-' reads standard input)")
        p.add_argument("--job", metavar="NAME", help="which job, when the file holds several")
        return p

    spec_command("validate", "check a job spec and print a one-screen summary").set_defaults(func=cmd_validate)
    plan = spec_command("plan", "print what one replica would do: env, files, argv, endpoints to wait for")
    plan.add_argument("--role", help="replica role (launcher, worker, master, scheduler, server, ...)")
    plan.add_argument("--index", type=int, help="replica index (default 0 when the role has one replica)")
    plan.add_argument("--format", choices=("json", "env"), default="json",
                      help="json: the whole plan; env: `export K=V` lines")
    plan.add_argument("--run-dir", help="where ringrun's files go (default $RINGRUN_RUN_DIR or /tmp/ringrun-<job>)")
    plan.add_argument("--ssh-port", type=int, help="workers' sshd port (default $RINGRUN_SSH_PORT, else 22 as "
                                                   "root and 2222 otherwise)")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv=None, environ=None, hostname=None, out=None, err=None):
    """Run the CLI; returns the exit code. environ/hostname/out/err default to the process's own."""
    from ringrun.runtime import RingrunError

    out = out or sys.stdout
    err = err or sys.stderr
    environ = dict(os.environ) if environ is None else environ
    if hostname is None:
        import socket

        hostname = socket.gethostname()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        out.write(f"ringrun {version('ringrun')}\n")
        return 0
    if args.command is None:
        parser.print_usage(err)
        return 2
    try:
        return args.func(args, environ, hostname, out)
    except RingrunError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err.write(f"ringrun {args.command}: {line}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry():
    """Console-script entry point."""
    sys.exit(main())

"""ringrun's typed errors and its exit codes: one `ExitCode` per kind of failure, from which `ringrun --help` and
the README's table are made (`python scripts/exit_codes.py` writes the table; a test checks the README has it)."""

import enum


class ExitCode(enum.IntEnum):
    """Every exit code ringrun gives itself (a job's own code passes through `run`, `launch` and `entrypoint`)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    IDENTITY = 3
    WAIT_TIMEOUT = 4
    SETUP = 5
    WORKER_LOST = 6
    HELD = 7
    DEADLINE = 124
    NOT_STARTED = 127
    SIGNAL = 128  # 128 + the signal's number

    @staticmethod
    def signal(number):
        return 128 + number


# (code, a few words for --help, the README's sentence)
EXIT_CODES = (
    (ExitCode.OK, "ok", "success"),
    (ExitCode.FAILED, "bench failed",
     "`bench`: an implementation gave a wrong result, or its ranks failed before reporting"),
    (ExitCode.USAGE, "invalid spec or arguments",
     "invalid spec or arguments: every problem printed as `field.path: message` with the offending value; also "
     "unknown role, index out of range, unreadable file; `serve`: a token or policy file that cannot be used"),
    (ExitCode.IDENTITY, "replica identity unknown",
     "the replica's identity could not be determined (no flag, variable or matching hostname)"),
    (ExitCode.WAIT_TIMEOUT, "endpoints not up by the deadline",
     "`entrypoint`: endpoints (workers' sshd, master, scheduler) not up by the deadline; every one named with its "
     "last error"),
    (ExitCode.SETUP, "setup failed",
     "setup failed - `serve`: a data directory, store, certificate or jobs folder that cannot be used (one line "
     "naming it); a run directory another user could write (or a link), `run`'s status file that can no longer be "
     "written (every replica stopped), no keys in sshAuthMountPath, sshdPath not an executable absolute path, a file "
     "not writable (`entrypoint`); a PyTorch/MXNet role whose Python cannot import torch/mxnet, or no torchrun, "
     "naming the extra to install (`entrypoint`, `run`)"),
    (ExitCode.WORKER_LOST, "MPI worker lost",
     "`entrypoint` launcher: a worker pod went away while mpirun ran and mpirun still exited 0 (Open MPI 5 does) or "
     "hung for 10 s"),
    (ExitCode.HELD, "job suspended or paused (nothing started)",
     "`run`: the job is suspended (`runPolicy.suspend: true`) or paused (TensorStack `runMode.pause`): nothing was "
     "started, the status says so (condition `Suspended`, reason `<Kind>Suspended`; TensorStack phase `Paused`). "
     "`entrypoint` starts nothing either and waits to be stopped"),
    (ExitCode.DEADLINE, "deadline passed",
     "`run`: the job passed activeDeadlineSeconds or `--timeout` (status reason DeadlineExceeded)"),
    (ExitCode.NOT_STARTED, "command not found",
     "`run` / `launch`: a replica's command could not be started"),
    (ExitCode.SIGNAL, "stopped by signal N",
     "stopped by signal N: 129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM (every replica stopped first)"),
)


def _shown(code):
    return "128+N" if code is ExitCode.SIGNAL else str(int(code))


def exit_codes_help():
    """The exit codes in one line, for --help."""
    return ("exit codes: " + ", ".join(f"{_shown(code)} {words}" for code, words, _ in EXIT_CODES) +
            "; run, launch and entrypoint otherwise exit with the job's own code")


def exit_codes_table():
    """The README's table of exit codes (Markdown)."""
    rows = [f"| {_shown(code)} | {sentence} |" for code, _, sentence in EXIT_CODES]
    rows.append("| any other | `run` / `launch` / `entrypoint`: the job's own exit code - the launcher's (MPI), the "
                "master's, or the first failed replica's |")
    return "| code | meaning |\n| --- | --- |\n" + "\n".join(rows) + "\n"


class RingrunError(Exception):
    """Base of every error ringrun reports without a traceback."""

    exit_code = ExitCode.FAILED


class SpecError(RingrunError):
    """A job spec (or the file holding it) is invalid.

    `problems` lists every problem found, each as `field.path: message`.
    """

    exit_code = ExitCode.USAGE
    SHOWN = 50  # at most this many problems in the message, then how many more there are

    def __init__(self, problems):
        self.problems = tuple(problems)
        shown = list(self.problems[:self.SHOWN])
        if len(self.problems) > self.SHOWN:
            shown.append(f"... and {len(self.problems) - self.SHOWN} more problems")
        super().__init__("\n".join(shown))


class UsageError(RingrunError):
    """The command line asks for something the spec cannot give (unknown role, index out of range)."""

    exit_code = ExitCode.USAGE


class IdentityError(RingrunError):
    """This process could not work out which replica (role, index) it is."""

    exit_code = ExitCode.IDENTITY


class WaitTimeout(RingrunError):
    """Endpoints a replica waits for (workers' sshd, the master, the scheduler) did not come up before the deadline.

    `missing` lists each as `host:port (last error)`."""

    exit_code = ExitCode.WAIT_TIMEOUT

    def __init__(self, missing, timeout):
        self.missing = tuple(missing)
        super().__init__(f"gave up after {timeout:g} s waiting for {len(self.missing)} endpoint(s): "
                         + "; ".join(self.missing))


class SetupError(RingrunError):
    """A replica could not be prepared: ssh keys missing from sshAuthMountPath, no usable sshd, a file not writable."""

    exit_code = ExitCode.SETUP

"""ringrun's typed errors. Each kind of failure has one exit code, documented in the README."""


class RingrunError(Exception):
    """Base of every error ringrun reports without a traceback."""

    exit_code = 1


class SpecError(RingrunError):
    """A job spec (or the file holding it) is invalid.

    `problems` lists every problem found, each as `field.path: message`.
    """

    exit_code = 2
    SHOWN = 50  # at most this many problems in the message, then how many more there are

    def __init__(self, problems):
        self.problems = tuple(problems)
        shown = list(self.problems[:self.SHOWN])
        if len(self.problems) > self.SHOWN:
            shown.append(f"... and {len(self.problems) - self.SHOWN} more problems")
        super().__init__("\n".join(shown))


class UsageError(RingrunError):
    """The command line asks for something the spec cannot give (unknown role, index out of range)."""

    exit_code = 2


class IdentityError(RingrunError):
    """This process could not work out which replica (role, index) it is."""

    exit_code = 3


class WaitTimeout(RingrunError):
    """Endpoints a replica waits for (workers' sshd, the master, the scheduler) did not come up before the deadline.

    `missing` lists each as `host:port (last error)`."""

    exit_code = 4

    def __init__(self, missing, timeout):
        self.missing = tuple(missing)
        super().__init__(f"gave up after {timeout:g} s waiting for {len(self.missing)} endpoint(s): "
                         + "; ".join(self.missing))


class SetupError(RingrunError):
    """A replica could not be prepared: ssh keys missing from sshAuthMountPath, no usable sshd, a file not writable."""

    exit_code = 5

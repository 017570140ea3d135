"""Cross Memory Attach: copy between this process's memory and another's in one step (`process_vm_readv` and
`process_vm_writev`, Linux 3.2+), the single-copy mechanism of Open MPI's smsc/cma and MPICH's CMA path.

The kernel copies from pages it pins in the other process, so no byte goes through a shared bounce buffer. Allowed
where this process may ptrace the other (the same user and no Yama restriction, or CAP_SYS_PTRACE); `allow_peers`
lifts Yama's scope 1 for this process; a seccomp profile may still refuse the calls (EPERM, ENOSYS), and a pid from
another pid namespace names another process: callers probe with `Copier.works` (a known value read back) first and
keep another path.
"""

import ctypes
import os
import sys

SUPPORTED = sys.platform.startswith("linux")
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = ctypes.c_ulong(-1).value


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Copier:
    """read(pid, here, there, nbytes) and write(pid, here, there, nbytes): addresses are integers, `here` in this
    process, `there` in process `pid`. Raises OSError when the kernel refuses or copies less than asked. One Copier
    per thread (its iovecs are reused)."""

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        self._calls = {}
        for name in ("process_vm_readv", "process_vm_writev"):
            call = getattr(libc, name)
            call.restype = ctypes.c_ssize_t
            call.argtypes = [ctypes.c_int, ctypes.POINTER(IOVec), ctypes.c_ulong, ctypes.POINTER(IOVec),
                             ctypes.c_ulong, ctypes.c_ulong]
            self._calls[name] = call
        self._local, self._remote = IOVec(), IOVec()
        self._local_ref, self._remote_ref = ctypes.byref(self._local), ctypes.byref(self._remote)
        self._prctl = libc.prctl
        self._prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def allow_peers(self):
        """Let any process of this user read and write this one's memory where Yama's ptrace scope is 1, as Open
        MPI's CMA support does (a no-op elsewhere: the call fails harmlessly without Yama). Only processes of the same
        user gain anything: without Yama they could already; a job's ranks run as the job's own user."""
        self._prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0)

    def _move(self, name, pid, here, there, nbytes):
        local, remote = self._local, self._remote
        local.base, local.len, remote.base, remote.len = here, nbytes, there, nbytes
        done = self._calls[name](pid, self._local_ref, 1, self._remote_ref, 1, 0)
        if done != nbytes:
            err = ctypes.get_errno() if done < 0 else 0
            raise OSError(err, f"{name} of {nbytes} bytes with pid {pid}: "
                               f"{os.strerror(err) if err else f'{done} copied'}")

    def read(self, pid, here, there, nbytes):
        self._move("process_vm_readv", pid, here, there, nbytes)

    def write(self, pid, here, there, nbytes):
        self._move("process_vm_writev", pid, here, there, nbytes)

    def works(self, pid, there, expect):
        """Whether the bytes at `there` in process `pid` can be read, are `expect`, and can be written back (a probe:
        False instead of an error; what it writes is what was there)."""
        scratch = ctypes.create_string_buffer(len(expect))
        try:
            self.read(pid, ctypes.addressof(scratch), there, len(expect))
            if scratch.raw != expect:
                return False
            self.write(pid, ctypes.addressof(scratch), there, len(expect))
        except OSError:
            return False
        return True

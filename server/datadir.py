"""The data directory is the server's alone: its admin token, store (specs may hold secrets), keys and logs.

Before anything is read from it (`secure`):
- every level of the path is checked as a run directory's is (launcher/rundir.py: owned by root or this user,
  writable by no one else, links owned by root or this user); a missing one is made;
- the directory itself is this user's, not a link, and mode 0700: no one else may read, enter or write it;
- every entry in it (and one level below) is this user's, not a link, and writable by no one else; it is then
  made 0600 (files) or 0700 (folders), as everything the server writes there is, whatever the umask
  (`private_file`, `private_dir`; an older version's certificates were 0644).
Anything else is refused with a SetupError (exit 5) naming the path and what is wrong.
"""

import os
import stat

from ringrun.launcher import rundir
from ringrun.runtime.errors import SetupError

WHAT = ("data directory", "--data-dir")


def _refuse(path, why):
    raise SetupError(f"data directory {path}: {why}; ringrun serve will not use it")


def secure(path):
    """Check (and make, 0700) data directory `path`; returns its absolute path. Raises SetupError."""
    path = rundir.secure(path, what=WHAT)
    st = os.lstat(path)
    if stat.S_IMODE(st.st_mode) & 0o077:
        _refuse(path, f"has mode {stat.S_IMODE(st.st_mode):04o}: other users can enter or read it (chmod 700 it)")
    _check_entries(path, depth=2)
    return path


def _check_entries(folder, depth):
    uid = os.geteuid()
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        _refuse(folder, f"cannot be read: {exc.strerror or exc}")
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            _refuse(entry.path, "is a symbolic link (the server never writes one)")
        if st.st_uid != uid:
            _refuse(entry.path, f"belongs to uid {st.st_uid}, not to this user (uid {uid})")
        if stat.S_IMODE(st.st_mode) & 0o022:
            _refuse(entry.path, f"has mode {stat.S_IMODE(st.st_mode):04o}: other users can write it")
        private = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(entry.path, stat.S_IMODE(st.st_mode) & private)
        if stat.S_ISDIR(st.st_mode) and depth > 1:
            _check_entries(entry.path, depth - 1)


def private_dir(path):
    """Make folder `path` (and missing parents below an existing one) 0700, whatever the umask."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        os.chmod(folder, 0o700)


def private_file(path):
    """Create `path` empty and 0600 when it does not exist (never through a link), so that a library that makes
    its files by the umask (SQLite: the store and its WAL) finds it private."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass

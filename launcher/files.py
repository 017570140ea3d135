"""Files ringrun writes: always whole (a reader never sees half a file), never through a planted name or link.

A file is written to a fresh temporary name in the same folder, created with O_EXCL|O_NOFOLLOW (an existing file or
a symlink at that name makes the open fail rather than be followed), then renamed over the target.
"""

import fcntl
import os
import secrets

from ringrun.runtime.errors import SetupError


def write_atomic(path, data, mode=0o600):
    """Write bytes `data` to `path` atomically; `mode` is filtered by the umask. Raises OSError."""
    folder, name = os.path.split(path)
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def write_files(files, mode=0o644, executable=()):
    """Each (path, text) of a plan written atomically (those in `executable` 0755: scripts); missing parent folders
    are created private (0700). Raises SetupError naming the path that cannot be written."""
    for path, text in files:
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            write_atomic(path, text.encode("utf-8"), mode=0o755 if path in executable else mode)
        except OSError as exc:
            raise SetupError(f"cannot write {path}: {exc.strerror or exc}") from None


def hold_lock(path, busy, mode=0o600):
    """An open file holding an exclusive lock on `path` (created `mode`, never through a link) until it is closed.
    Raises OSError when it cannot be opened, BlockingIOError with the message `busy` when another process holds it."""
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BlockingIOError(busy) from None
    return handle


def write_into(parent, folder, files, owner=None):
    """Write `files` ((name, bytes, mode), ...) into `parent`/`folder`, made 0700 when missing, each replacing the
    one there; `owner` (uid, gid) gets the folder and the files. Safe in a folder someone else may write: `parent`
    and `folder` are opened without following a link (a planted link fails with OSError), and every file is made
    anew with O_EXCL|O_NOFOLLOW through the folder's descriptor. Returns the folder's path. Raises OSError."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.open(parent, flags)
    try:
        try:
            os.mkdir(folder, 0o700, dir_fd=top)
        except FileExistsError:
            pass
        fd = os.open(folder, flags, dir_fd=top)
    finally:
        os.close(top)
    try:
        for name, data, mode in files:
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
            try:
                os.write(out, data)
                os.fchmod(out, mode)
                if owner is not None:
                    os.fchown(out, *owner)
            finally:
                os.close(out)
        os.fchmod(fd, 0o700)
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    return os.path.join(parent, folder)

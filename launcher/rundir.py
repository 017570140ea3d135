"""Run directories ringrun can trust: nobody else can have put, or later swap, anything in them.

ringrun keeps a replica's hostfile, ssh config, copied keys, authorized_keys and sshd config in its run directory.
Before it writes or reads anything there, every level of the path is checked:
- each directory on the way is owned by root or by ringrun's user, and is writable by no one else (a sticky
  directory such as /tmp is allowed on the way, except under sshd's StrictModes rule, see `strict`);
- a symbolic link on the way must be owned by root or by ringrun's user (/var/run -> /run); the run directory itself
  must not be a link;
- the run directory itself belongs to ringrun's user and is writable by no one else; a missing one is created 0700.
Anything else is refused with a SetupError (exit 5) that names the directory and why.

Defaults (`default_run_dir`): root `/run/ringrun/<job>`; others `$XDG_RUNTIME_DIR/ringrun/<job>`, else
`$HOME/.ringrun/run/<job>`, else none (one must be given) - never a predictable name in world-writable /tmp.
"""

import os
import stat

from ringrun.runtime.errors import SetupError


def default_run_dir(job_name, environ, uid):
    """Where a replica of job `job_name` keeps its files when no run directory is given (pure); None when neither
    XDG_RUNTIME_DIR nor HOME gives a non-root user a place of their own (then one must be given)."""
    if uid == 0:
        return f"/run/ringrun/{job_name}"
    for base, below in ((environ.get("XDG_RUNTIME_DIR"), "ringrun"), (environ.get("HOME"), ".ringrun/run")):
        if base and os.path.isabs(base) and base.rstrip("/"):
            return f"{base.rstrip('/')}/{below}/{job_name}"
    return None


RUN_DIR = ("run directory", "--run-dir / RINGRUN_RUN_DIR")


def _refuse(path, why, what=RUN_DIR):
    raise SetupError(f"{what[0]} {path}: {why}; ringrun will not use it (remove it, or give another with "
                     f"{what[1]})")


def _check_dir(path, st, uid, strict, last, what=RUN_DIR):
    if not stat.S_ISDIR(st.st_mode):
        _refuse(path, "is not a directory", what)
    if last and st.st_uid != uid:
        _refuse(path, f"belongs to uid {st.st_uid}, not to this user (uid {uid})", what)
    if st.st_uid not in (0, uid):
        _refuse(path, f"a directory on its path belongs to uid {st.st_uid}", what)
    writable_by_others = st.st_mode & 0o022
    if writable_by_others and (last or strict or not st.st_mode & stat.S_ISVTX):
        who = "it is" if last else "a directory on its path is"
        rule = " (sshd's StrictModes refuses keys below it)" if strict and not last else ""
        _refuse(path, f"{who} writable by other users{rule}", what)


def secure(path, uid=None, strict=False, what=RUN_DIR, made_mode=0o700):
    """Check (and create, `made_mode`) run directory `path` as the module doc says; returns its absolute path.

    strict: sshd's StrictModes rule for authorized_keys below it: no directory on the way may be writable by others,
    sticky or not (so not below /tmp); what: (what it is, the options that give another) for the message;
    made_mode: the mode of the folders it makes (0711 where other users must pass through them).
    Raises SetupError.
    """
    uid = os.geteuid() if uid is None else uid
    path = os.path.abspath(path)
    try:
        return _secure(path, uid, strict, what, made_mode)
    except OSError as exc:  # cannot be made, or a link on the way leads nowhere
        _refuse(path, f"cannot be checked or made: {exc.strerror or exc} ({exc.filename or path})", what)


def _secure(path, uid, strict, what, made_mode=0o700):
    parts = [p for p in path.split("/") if p]
    current = "/"
    _check_dir("/", os.stat("/"), uid, strict, not parts, what)
    for i, part in enumerate(parts):
        candidate = os.path.join(current, part)
        last = i == len(parts) - 1
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            try:
                os.mkdir(candidate, made_mode)
            except FileExistsError:
                pass
            st = os.lstat(candidate)
        if stat.S_ISLNK(st.st_mode):
            if last:
                _refuse(candidate, "is a symbolic link", what)
            if st.st_uid not in (0, uid):
                _refuse(candidate, f"is a symbolic link owned by uid {st.st_uid}", what)
            target = os.path.realpath(candidate)
            secure_ancestors(target, uid, strict, what)
            candidate, st = target, os.stat(target)
        _check_dir(candidate, st, uid, strict, last, what)
        current = candidate
    return path


def secure_ancestors(path, uid, strict, what=RUN_DIR):
    """Every directory from / down to `path` (a resolved path) as `secure` checks the ones on the way."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        _check_dir(current, os.stat(current), uid, strict, False, what)

"""Who a served job runs as, where, and with what environment: the boundary between a job and the server.

As root (`ringrun serve` run by root), a job never runs as root:
- each namespace's jobs run as a uid of their own, taken from `--job-uids` (default JOB_UIDS) the first time the
  namespace runs a job, with the gid of the same number and no supplementary groups; the mapping is kept in the
  store (`kubectl get` cannot show it; `docs/security.md` says how to read it) and never given to another namespace;
- a uid is taken by creating JOBS/<uid> (`mkdir`, which fails when it exists): two servers with the same
  --jobs-dir, or a folder left by an earlier one, never share a uid; uids and gids of accounts and groups this
  machine knows are never given (servers with other jobs folders need --job-uids ranges of their own). JOBS (`--jobs-dir`, default /var/lib/ringrun/jobs) is root's,
  0711; JOBS/<uid> is root:<uid> 0710, so only that namespace's processes pass through it;
- each job gets JOBS/<uid>/<job uid>/, the namespace user's, 0700: its HOME, TMPDIR and default workingDir, removed
  when the job is deleted; its run directory (hostfile) is made beside it, root:<uid> 0750;
- a job's environment is its spec's over a clean base: PATH, LANG, LC_*, TZ of the server, and HOME, USER,
  LOGNAME, TMPDIR of its own, nothing else of the server's (no tokens, no KUBECONFIG);
- a workingDir (absolute, or relative to the job's folder) must be inside the job's folder or inside a host path
  the policy grants its namespace (`hostPaths:` in --policy); otherwise the job fails before anything starts,
  naming the replica, the path and the namespace. This is a check of the spec: what the job's uid may reach once
  it runs is the file system's permissions' to say.
The data directory (tokens, store, certificates, logs) stays root's 0700: no job can read it.

Not as root, the server is one user's: every job is that user's process (as `ringrun run` is), in
JOBS/<namespace>/<job uid>/ (JOBS default DATA/jobs), with the server's environment.
"""

import grp
import os
import pwd
import shutil
import sys
from dataclasses import dataclass

from ringrun.launcher.supervise import RunAs

JOB_UIDS = (1_000_000_000, 1_000_099_999)
ROOT_JOBS_DIR = "/var/lib/ringrun/jobs"
_KEPT = ("PATH", "LANG", "LANGUAGE", "TZ")
RUN_DIR_PREFIX = "ringrun-"  # launcher/local.py's run directories (mkdtemp) beside the job folders


class JobUsersError(Exception):
    """No uid left in the range, or a jobs folder that cannot be trusted or made: the message says which."""


@dataclass(frozen=True)
class Placement:
    """Where and as whom one job runs: run_as (None: as the server), home (its own folder), run_parent (where its
    run directory is made), environ (what every replica inherits)."""

    run_as: RunAs | None
    home: str
    run_parent: str
    environ: dict


class JobUsers:
    """Namespace -> uid (as root), job folders and environments. `store` keeps the mapping (job_uid /
    take_job_uid); `as_root`: whether jobs change user at all."""

    def __init__(self, store, jobs_dir, environ, as_root, uids=JOB_UIDS):
        self.store, self.jobs_dir, self.as_root, self.uids = store, jobs_dir, as_root, uids
        self.environ = dict(environ)
        _make_root(jobs_dir, 0o711 if as_root else 0o700)

    def uid_of(self, namespace):
        """The namespace's uid, taken now when it has none. Raises JobUsersError when the range is used up."""
        uid = self.store.job_uid(namespace)
        if uid is not None:
            folder = os.path.join(self.jobs_dir, str(uid))
            if not os.path.isdir(folder):  # the jobs folder was emptied or moved: made again, still this uid's
                _make_namespace_dir(folder, uid)
            return uid
        taken = set(self.store.job_uids())
        for uid in range(self.uids[0], self.uids[1] + 1):
            if uid in taken or _known(uid):
                continue
            try:
                _make_namespace_dir(os.path.join(self.jobs_dir, str(uid)), uid, exclusive=True)
            except FileExistsError:  # another server's (or an old one's): never shared
                continue
            self.store.take_job_uid(namespace, uid)
            return uid
        raise JobUsersError(f"no uid left in --job-uids {self.uids[0]}-{self.uids[1]} for namespace {namespace!r}")

    def place(self, namespace, job_uid):
        """The Placement of job `job_uid` of `namespace`; its folder is made (owned by the job's user)."""
        if self.as_root:
            uid = self.uid_of(namespace)
            parent = os.path.join(self.jobs_dir, str(uid))
            run_as = RunAs(uid, uid)
        else:
            parent = os.path.join(self.jobs_dir, namespace)
            os.makedirs(parent, mode=0o700, exist_ok=True)
            run_as = None
        home = os.path.join(parent, job_uid)
        os.makedirs(home, mode=0o700, exist_ok=True)
        if run_as is not None:
            os.chown(home, run_as.uid, run_as.gid)
        return Placement(run_as, home, parent, self.environment(home, run_as))

    def environment(self, home, run_as):
        """What a job's replicas inherit (before their spec's env)."""
        if run_as is None:
            return {**self.environ, "HOME": home, "TMPDIR": home}
        env = {k: v for k, v in self.environ.items() if k in _KEPT or k.startswith("LC_")}
        name = f"ringrun-{run_as.uid}"
        env.update(HOME=home, TMPDIR=home, USER=name, LOGNAME=name)
        return env

    def clear_run_dirs(self):
        """Remove the run directories a server that died left in this server's namespace folders."""
        if self.as_root:
            folders = [str(uid) for uid in self.store.job_uids()]
        else:
            folders = os.listdir(self.jobs_dir)
        for folder in folders:
            parent = os.path.join(self.jobs_dir, folder)
            for name in os.listdir(parent) if os.path.isdir(parent) else ():
                if name.startswith(RUN_DIR_PREFIX):
                    shutil.rmtree(os.path.join(parent, name), ignore_errors=True)

    def remove(self, namespace, job_uid):
        """Remove a deleted job's folder (never through a link: rmtree works on file descriptors)."""
        if self.as_root:
            uid = self.store.job_uid(namespace)
            if uid is None:
                return
            namespace = str(uid)
        try:  # rmtree works on descriptors (no link is followed); a tree too deep for it is left, and said
            shutil.rmtree(os.path.join(self.jobs_dir, namespace, job_uid))
        except FileNotFoundError:
            pass
        except (OSError, RecursionError) as exc:
            sys.stderr.write(f"ringrun serve: cannot remove the folder of job {job_uid}: {exc}\n")


def _known(uid):
    """Whether `uid` is an account's or a group's id on this machine (never given to a namespace)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def _make_root(path, mode):
    """JOBS: made `mode` when missing (so are the folders above it that it makes); every level of its path checked as a run directory's (root later makes and
    chowns folders below it: no other user may swap a link in); it must be this user's, and writable by no one
    else."""
    from ringrun.launcher import rundir
    from ringrun.runtime.errors import SetupError

    try:
        rundir.secure(path, what=("--jobs-dir", "--jobs-dir"), made_mode=mode)  # the job users pass through
    except SetupError as exc:
        raise JobUsersError(str(exc)) from None
    os.chmod(path, mode)
    if mode & 0o001:  # every folder above must let the jobs' users through too
        current = os.path.dirname(path)
        while True:
            folder_mode = os.stat(current).st_mode & 0o7777
            if not folder_mode & 0o001:
                raise JobUsersError(f"--jobs-dir {path}: {current} (mode {folder_mode:04o}) does not let the jobs' "
                                    "users through: `chmod o+x` it, or choose another --jobs-dir")
            if current == "/":
                break
            current = os.path.dirname(current)


def _make_namespace_dir(path, uid, exclusive=False):
    """JOBS/<uid>: root:<uid> 0710. Raises FileExistsError when `exclusive` and it exists."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if exclusive:
            raise
    os.chown(path, 0, uid)
    os.chmod(path, 0o710)


def granted(path, home, grants):
    """Whether a job whose folder is `home` may work in `path` (absolute): inside `home`, or inside one of `grants`
    (the host paths the policy gives its namespace). `..` and links are resolved first."""
    real = os.path.realpath(path)
    for base in (home, *grants):
        base = os.path.realpath(base)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return True
    return False

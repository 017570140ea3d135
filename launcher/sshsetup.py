"""ssh material for MPI pods: the mounted keys copied into a private directory, the sshd host key, /run/sshd.

mpi-operator mounts the job's ssh Secret at sshAuthMountPath with mode 0644 (or 0600 only at /root/.ssh), which ssh
refuses for a private key and users fix by hand (mpi-operator #407, horovod #3604). ringrun always copies every file of
the mount into a private directory (0700) with mode 0600, owned by the user it runs as.
"""

import os
import pathlib
import shutil
import subprocess

from ringrun.runtime.errors import SetupError
from ringrun.runtime.ssh import CLIENT_KEYS

from .files import write_atomic

PRIVSEP_DIR = "/run/sshd"  # sshd (as root) chroots its unprivileged child here and refuses to start without it


def copy_keys(mount, key_dir):
    """Copy every regular file of `mount` (Secret mounts are symlinks into `..data`) into `key_dir`, mode 0600."""
    try:
        names = sorted(os.listdir(mount))
    except NotADirectoryError:
        raise SetupError(f"sshAuthMountPath: {mount!r} is not a directory (mount the job's ssh keys there)") from None
    except FileNotFoundError:
        raise SetupError(f"sshAuthMountPath: {mount!r} does not exist (mount the job's ssh keys there)") from None
    except OSError as exc:  # a mount this user may not read (a non-root pod, a root-only Secret)
        raise SetupError(f"sshAuthMountPath: cannot read {mount!r} as uid {os.geteuid()}: {exc.strerror}") from None
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    os.chmod(key_dir, 0o700)
    copied = []
    for name in names:
        source = os.path.join(mount, name)
        if name.startswith("..") or not os.path.isfile(source):
            continue
        target = os.path.join(key_dir, name)
        try:
            with open(source, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise SetupError(f"sshAuthMountPath: cannot read {source}: {exc.strerror}") from None
        write_atomic(target, data)
        copied.append(name)
    return copied


def prepare_client(setup):
    """A launcher's keys: the private copy must hold a private key ssh will offer."""
    copied = copy_keys(setup.mount, setup.key_dir)
    if not any(name in copied for name in CLIENT_KEYS):
        raise SetupError(f"sshAuthMountPath: {setup.mount!r} holds no private key "
                         f"({', '.join(CLIENT_KEYS)}); found: {', '.join(copied) or 'nothing'}")


def prepare_server(setup, is_root):
    """A worker's sshd: authorized_keys (else every *.pub of the mount), a host key, sshdPath, /run/sshd as root."""
    copied = copy_keys(setup.mount, setup.key_dir)
    authorized = os.path.join(setup.key_dir, "authorized_keys")
    if "authorized_keys" not in copied:
        public = [name for name in copied if name.endswith(".pub")]
        if not public:
            raise SetupError(f"sshAuthMountPath: {setup.mount!r} has no authorized_keys and no *.pub key; "
                             f"found: {', '.join(copied) or 'nothing'}")
        text = b"".join(pathlib.Path(setup.key_dir, n).read_bytes().rstrip(b"\n") + b"\n" for n in public)
        write_atomic(authorized, text)
    if not (os.path.isabs(setup.sshd) and os.access(setup.sshd, os.X_OK)):
        raise SetupError(f"sshdPath: {setup.sshd!r} is not an executable absolute path (sshd re-executes itself by "
                         "absolute path; install openssh-server)")
    if not os.path.exists(setup.host_key):
        keygen = shutil.which("ssh-keygen")
        if keygen is None:
            raise SetupError("ssh-keygen not found on PATH: cannot generate the sshd host key")
        os.makedirs(os.path.dirname(setup.host_key), exist_ok=True)
        result = subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ringrun-host", "-f", setup.host_key],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise SetupError(f"ssh-keygen failed for {setup.host_key}: {result.stderr.strip()}")
    if is_root:
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)

"""Text of the ssh client and sshd configuration files ringrun writes for MPI jobs.

ssh options travel in a config file passed as `-F FILE`: Open MPI 5 cuts forwarded ssh arguments at `=` when its
daemons spawn in a tree, and a path has no `=`.
"""

from .errors import UsageError

# Private keys the client offers, in ssh's own order; a missing one is skipped by ssh.
CLIENT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519")


def _control(text):
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def check_path(what, path):
    """A path written into an ssh or sshd config, or passed in ssh options that MPI splits at spaces: no control
    characters (a newline would add directives) and no white space. Raises UsageError naming `what`."""
    if _control(path) or any(c.isspace() for c in path):
        raise UsageError(f"{what} {path!r}: must not contain white space or control characters (it is written into "
                         "ssh configuration and passed in ssh options that MPI splits at spaces)")
    return path


def client_config(port, key_dir):
    """The launcher's ssh config: key-only from `key_dir`, no host-key prompts, retries while a worker's sshd starts.
    Raises UsageError for a path it cannot hold."""
    check_path("run directory", key_dir)
    keys = tuple(f"    IdentityFile {key_dir.rstrip('/')}/{name}" for name in CLIENT_KEYS)
    return "".join(line + "\n" for line in (
        "Host *",
        f"    Port {port}",
        *keys,
        "    IdentitiesOnly yes",
        "    BatchMode yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    ConnectionAttempts 10",
        "    LogLevel ERROR",
    ))


def _setenv_value(name, value):
    """`NAME=value`, double-quoted when sshd_config's tokenizer would split it. Raises UsageError for a control
    character (a newline would start a new directive)."""
    pair = f"{name}={value}"
    if _control(pair):
        raise UsageError(f"{name}: its value {value!r} holds a control character and cannot be given to ssh sessions")
    if any(c in pair for c in " \t\"'\\#"):
        pair = '"' + pair.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return pair


def server_config(port, host_key, authorized_keys, pid_file, set_env=()):
    """A worker's sshd config: public keys only, no passwords, StrictModes on (ringrun's private copies of the keys
    satisfy it: see launcher/rundir.py), no forwarding or tunnels of any kind.

    set_env: (name, value) pairs every ssh session gets (`SetEnv`), so mpirun's remote daemons see the container's
    PATH and LD_LIBRARY_PATH, not sshd's default PATH. Raises UsageError for a value it cannot hold.
    """
    for path in (host_key, authorized_keys, pid_file):
        check_path("run directory", path)
    lines = [
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized_keys}",
        f"PidFile {pid_file}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "PermitEmptyPasswords no",
        "PermitUserEnvironment no",
        "StrictModes yes",
        "AllowTcpForwarding no",
        "AllowStreamLocalForwarding no",
        "AllowAgentForwarding no",
        "GatewayPorts no",
        "PermitTunnel no",
        "X11Forwarding no",
        "UsePAM no",
        "PrintMotd no",
    ]
    if set_env:
        lines.append("SetEnv " + " ".join(_setenv_value(k, v) for k, v in set_env))
    return "".join(line + "\n" for line in lines)

"""Text of the ssh client and sshd configuration files ringrun writes for MPI jobs.

ssh options travel in a config file passed as `-F FILE`: Open MPI 5 cuts forwarded ssh arguments at `=` when its
daemons spawn in a tree, and a path has no `=`.
"""

# Private keys the client offers, in ssh's own order; a missing one is skipped by ssh.
CLIENT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519")


def client_config(port, key_dir):
    """The launcher's ssh config: key-only from `key_dir`, no host-key prompts, retries while a worker's sshd starts."""
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
    """`NAME=value`, double-quoted when sshd_config's tokenizer would split it."""
    pair = f"{name}={value}"
    if any(c in pair for c in " \t\"'\\#"):
        pair = '"' + pair.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return pair


def server_config(port, host_key, authorized_keys, pid_file, set_env=()):
    """A worker's sshd config: public keys only, no passwords, StrictModes off for mounted secrets.

    set_env: (name, value) pairs every ssh session gets (`SetEnv`), so mpirun's remote daemons see the container's
    PATH and LD_LIBRARY_PATH, not sshd's default PATH.
    """
    lines = [
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized_keys}",
        f"PidFile {pid_file}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "PrintMotd no",
    ]
    if set_env:
        lines.append("SetEnv " + " ".join(_setenv_value(k, v) for k, v in set_env))
    return "".join(line + "\n" for line in lines)

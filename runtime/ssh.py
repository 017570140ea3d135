"""Text of the ssh client and sshd configuration files ringrun writes for MPI jobs.

ssh options travel in a config file passed as `-F FILE`: Open MPI 5 cuts forwarded ssh arguments at `=` when its
daemons spawn in a tree, and a path has no `=`.
"""


def client_config(port, identity_file):
    """The launcher's ssh config: key-only, no host-key prompts, retries while a worker's sshd starts."""
    return "".join(line + "\n" for line in (
        "Host *",
        f"    Port {port}",
        f"    IdentityFile {identity_file}",
        "    IdentitiesOnly yes",
        "    BatchMode yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    ConnectionAttempts 10",
        "    LogLevel ERROR",
    ))


def server_config(port, host_key, authorized_keys, pid_file):
    """A worker's sshd config: public keys only, no passwords, StrictModes off for mounted secrets."""
    return "".join(line + "\n" for line in (
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
    ))

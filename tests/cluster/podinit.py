"""PID 1 of a test pod: set the pod's host name, mount its /etc/hosts (and /etc/passwd), drop to the pod's user, exec.

Started by the harness (pods.py) as `nsenter --net=NETNS unshare --uts --pid --mount --fork --kill-child -- python
podinit.py ... -- ARGV`, so this process is alone in fresh UTS, PID and mount namespaces and whatever it execs is the
pod's PID 1, as a container's ENTRYPOINT is: when it dies, the kernel kills everything else in the pod.
"""

import argparse
import os
import socket
import subprocess
import sys


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--bind", nargs=2, action="append", default=[], metavar=("FILE", "TARGET"))
    parser.add_argument("--tmp", metavar="DIR", help="mounted on /tmp; paths under /tmp in --keep stay visible")
    parser.add_argument("--keep", action="append", default=[], metavar="PATH")
    parser.add_argument("--user", metavar="UID:GID")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    socket.sethostname(args.hostname)
    for source, target in args.bind:
        subprocess.run(["mount", "--bind", source, target], check=True)
    if args.tmp:
        # keep paths under /tmp (a checkout there, its virtualenvs) visible through the pod's own /tmp
        keep = [p for p in args.keep if p.startswith("/tmp/")]
        aliases = []
        for i, path in enumerate(keep):
            alias = os.path.join(args.tmp, f".keep{i}")
            os.makedirs(alias, exist_ok=True)
            subprocess.run(["mount", "--bind", path, alias], check=True)
            aliases.append((alias, path))
        subprocess.run(["mount", "--bind", args.tmp, "/tmp"], check=True)
        for alias, path in aliases:
            os.makedirs(path, exist_ok=True)
            inside = os.path.join("/tmp", os.path.basename(alias))
            subprocess.run(["mount", "--bind", inside, path], check=True)
    env = dict(os.environ)
    env["HOSTNAME"] = args.hostname
    if args.user:
        uid, gid = (int(x) for x in args.user.split(":"))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])

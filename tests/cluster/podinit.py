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
    parser.add_argument("--user", metavar="UID:GID")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    socket.sethostname(args.hostname)
    for source, target in args.bind:
        # recursive: a bind made earlier under a later source (the checkout inside the pod's /tmp) comes along
        subprocess.run(["mount", "--rbind", source, target], check=True)
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

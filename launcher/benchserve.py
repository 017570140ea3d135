"""`ringrun bench serve`: starts a `ringrun serve` of its own (fresh data directory, a free loopback port), runs
the load of ringrun.bench.serve against it, stops it (SIGTERM, by PID) and removes the data directory."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml


BENCH_UIDS = "1000100000-1000199999"


def _rss(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(args, environ, out, err):
    from ringrun.bench import serve as load

    from .bench import machine

    data = tempfile.mkdtemp(prefix="ringrun-bench-serve-")
    # as root the jobs run as other uids: their folders where those may pass (not below the private `data`), and
    # uids of the bench's own range, never a real server's
    jobs = tempfile.mkdtemp(prefix="ringrun-bench-jobs-", dir="/var/tmp" if os.geteuid() == 0 else data)
    os.chmod(jobs, 0o711 if os.geteuid() == 0 else 0o700)
    log = open(os.path.join(data, "serve.log"), "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "ringrun.server", "serve", "--data-dir",
                               os.path.join(data, "d"), "--port", "0", "--capacity", "cpu=100000,memory=1000Ti",
                               "--jobs-dir", os.path.join(jobs, "jobs"), "--job-uids", BENCH_UIDS],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=dict(environ))
    kubeconfig = os.path.join(data, "d", "kubeconfig")
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(kubeconfig):
            if server.poll() is not None or time.monotonic() > deadline:
                err.write("ringrun bench serve: the server did not start\n")
                return 1
            time.sleep(0.05)
        with open(kubeconfig, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
        url = config["clusters"][0]["cluster"]["server"]
        token = config["users"][0]["user"]["token"]
        result = asyncio.run(load.run(url, token, os.path.join(data, "d", "ca.crt"), args,
                                      lambda: _rss(server.pid), out))
        document = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "options": {
            k: getattr(args, k) for k in ("finished", "trials", "jobs", "clients", "watchers", "events", "hold",
                                           "hostile")},
            "result": result}
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
        failed = result["load"]["errors"] or result["load"]["lost"] or result["watchers"]["missed"]
        return 1 if failed else 0
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(jobs, ignore_errors=True)

"""Jobs the server runs, observed as a client would (get, watch, pods, logs): success, failure, a deadline, a
deadline moved by a replace, a delete mid-run, a suspended job resumed, admission by requested cpu, and the
PyTorch environment of two jobs at once. Every process a job started is gone at the end."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import glob
import os
import signal
import time

from jobspecs import condition, finished, mpijob, pytorchjob
from kubernetes import client, watch
from rawhttp import request
from serverproc import alive, wait_until

NS = "jobs"
G, V = "kubeflow.org", "v2beta1"


def api(server):
    return client.CustomObjectsApi(server.client())


def get(server, name, plural="mpijobs", version=V):
    return api(server).get_namespaced_custom_object(G, version, NS, plural, name)


def wait_for(server, name, test, what, plural="mpijobs", version=V, timeout=60):
    return wait_until(lambda: (lambda o: o if test(o) else None)(get(server, name, plural, version)),
                      timeout=timeout, interval=0.1, what=f"{name}: {what}")


def pid_command(folder, name, then):
    """A launcher command that records its pid in a file, then runs `then` (shell)."""
    pid_file = folder / f"{name}.pid"
    return ["sh", "-c", f'echo $$ > "{pid_file}"; {then}'], pid_file


def read_pid(pid_file):
    return int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the pid file"))


def test_success_seen_through_watch_pods_and_logs(server, exchange):
    command, pid_file = pid_command(exchange, "ok", "echo hello from the launcher; echo to stderr >&2")
    made = api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("ok", command))
    seen = []
    stream = watch.Watch()
    for event in stream.stream(api(server).list_namespaced_custom_object, G, V, NS, "mpijobs",
                               resource_version=made["metadata"]["resourceVersion"], timeout_seconds=60):
        obj = event["object"]
        if obj["metadata"]["name"] != "ok":
            continue
        seen.append([c["type"] for c in obj.get("status", {}).get("conditions", []) if c["status"] == "True"])
        if finished(obj):
            stream.stop()
    assert ["Created", "Running"] in seen and seen[-1] == ["Created", "Succeeded"]
    obj = get(server, "ok")
    assert condition(obj, "Succeeded")["reason"] == "MPIJobSucceeded"
    assert condition(obj, "Succeeded")["message"] == f"MPIJob {NS}/ok successfully completed."
    assert obj["status"]["replicaStatuses"]["Launcher"] == {"succeeded": 1}
    assert obj["status"]["startTime"] <= obj["status"]["completionTime"]
    core = client.CoreV1Api(server.client())
    pods = core.list_namespaced_pod(NS, label_selector="training.kubeflow.org/job-name=ok")
    assert [(p.metadata.name, p.status.phase) for p in pods.items] == [("ok-launcher", "Succeeded")]
    assert pods.items[0].status.container_statuses[0].state.terminated.exit_code == 0
    log = core.read_namespaced_pod_log("ok-launcher", NS)
    assert "hello from the launcher\n" in log and "to stderr\n" in log
    assert core.read_namespaced_pod_log("ok-launcher", NS, tail_lines=1).count("\n") == 1
    assert not alive(read_pid(pid_file))


def test_failure_names_the_exit_code(server):
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("fails", ["sh", "-c", "exit 3"]))
    obj = wait_for(server, "fails", finished, "finished")
    failed = condition(obj, "Failed")
    assert failed["reason"] == "MPIJobFailed" and "exited with code 3" in failed["message"]
    pod = client.CoreV1Api(server.client()).read_namespaced_pod("fails-launcher", NS)
    assert pod.status.phase == "Failed" and pod.status.container_statuses[0].state.terminated.exit_code == 3


def test_restarts_until_the_backoff_limit_with_the_previous_log(server, exchange):
    counter = exchange / "runs"
    command = ["sh", "-c", f'echo run >> "{counter}"; echo "attempt $(wc -l < "{counter}")"; exit 1']
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("retry", command, restart="OnFailure", backoffLimit=1))
    obj = wait_for(server, "retry", finished, "finished")
    assert condition(obj, "Failed")["reason"] == "BackoffLimitExceeded"
    assert counter.read_text() == "run\nrun\n"
    core = client.CoreV1Api(server.client())
    pod = core.read_namespaced_pod("retry-launcher", NS)
    assert pod.status.container_statuses[0].restart_count == 1
    assert core.read_namespaced_pod_log("retry-launcher", NS) == "attempt 2\n"
    assert core.read_namespaced_pod_log("retry-launcher", NS, previous=True) == "attempt 1\n"


def test_deadline_and_a_deadline_moved_by_replace(server, exchange):
    command, pid_file = pid_command(exchange, "late", "exec sleep 120")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("late", command, activeDeadlineSeconds=2))
    obj = wait_for(server, "late", finished, "finished")
    assert condition(obj, "Failed")["reason"] == "DeadlineExceeded"
    assert not alive(read_pid(pid_file))

    command, pid_file = pid_command(exchange, "moved", "exec sleep 120")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("moved", command, activeDeadlineSeconds=3600))
    pid = read_pid(pid_file)
    current = wait_for(server, "moved", lambda o: condition(o, "Running"), "running")
    current["spec"]["runPolicy"]["activeDeadlineSeconds"] = 1
    replaced = api(server).replace_namespaced_custom_object(G, V, NS, "mpijobs", "moved", current)
    assert replaced["metadata"]["generation"] == 2
    obj = wait_for(server, "moved", finished, "finished after the new deadline")
    assert condition(obj, "Failed")["reason"] == "DeadlineExceeded"
    wait_until(lambda: not alive(pid), what="the replica gone")


def test_delete_mid_run_stops_every_process(server, exchange):
    command, pid_file = pid_command(exchange, "doomed", "sleep 120 & echo $! > \"$0.child\"; wait")
    command = ["sh", "-c", command[2].replace('"$0.child"', f'"{exchange}/doomed.child"')]
    made = api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("doomed", command))
    pid = read_pid(pid_file)
    child = int(wait_until(lambda: (exchange / "doomed.child").exists() and (exchange / "doomed.child")
                           .read_text().strip(), what="the child's pid"))
    assert alive(pid) and alive(child)
    status = api(server).delete_namespaced_custom_object(G, V, NS, "mpijobs", "doomed")
    assert status["status"] == "Success" and status["details"]["uid"] == made["metadata"]["uid"]
    wait_until(lambda: not alive(pid) and not alive(child), timeout=30, what="the job's processes gone")
    code, answer = request(server, "GET", f"/apis/{G}/{V}/namespaces/{NS}/mpijobs/doomed")
    assert code == 404 and answer["reason"] == "NotFound"


def test_watch_from_a_version_sees_deleted(server):
    made = api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("watched", ["true"]))
    wait_for(server, "watched", finished, "finished")
    api(server).delete_namespaced_custom_object(G, V, NS, "mpijobs", "watched")
    stream = watch.Watch()
    types = []
    for event in stream.stream(api(server).list_namespaced_custom_object, G, V, NS, "mpijobs",
                               resource_version=made["metadata"]["resourceVersion"],
                               field_selector="metadata.name=watched", timeout_seconds=5):
        types.append(event["type"])
        if event["type"] == "DELETED":
            stream.stop()
    assert types[0] == "MODIFIED" and types[-1] == "DELETED" and "ADDED" not in types


def test_suspended_job_starts_when_resumed(server):
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("held", ["true"], suspend=True))
    obj = wait_for(server, "held", lambda o: condition(o, "Suspended"), "suspended")
    assert condition(obj, "Suspended")["reason"] == "MPIJobSuspended"
    obj["spec"]["runPolicy"]["suspend"] = False
    api(server).replace_namespaced_custom_object(G, V, NS, "mpijobs", "held", obj)
    obj = wait_for(server, "held", finished, "finished after the resume")
    assert condition(obj, "Succeeded") is not None


def test_admission_waits_for_cpu_in_order(fresh_server, exchange):
    server = fresh_server("--capacity", "cpu=1,memory=4Gi")
    gate = exchange / "gate"
    first = mpijob("first", ["sh", "-c", f'while [ ! -e "{gate}" ]; do sleep 0.05; done'], requests={"cpu": "1"})
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", first)
    wait_for(server, "first", lambda o: condition(o, "Running"), "running")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("second", ["true"], requests={"cpu": "500m"}))
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("huge", ["true"], requests={"memory": "1Ti"}))
    queued = wait_for(server, "second", lambda o: condition(o, "Queued"), "queued")
    assert "waiting for 0.5 cpu" in condition(queued, "Queued")["message"]
    huge = wait_for(server, "huge", lambda o: condition(o, "Queued"), "queued")
    assert "can never start here" in condition(huge, "Queued")["message"]
    assert condition(get(server, "second"), "Running") is None
    gate.write_text("go")
    wait_for(server, "first", finished, "finished")
    assert condition(wait_for(server, "second", finished, "finished"), "Succeeded") is not None
    assert condition(get(server, "huge"), "Running") is None


def test_two_pytorchjobs_get_their_own_rendezvous(server):
    command = ["sh", "-c", 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT"']
    for name in ("pt-a", "pt-b"):
        api(server).create_namespaced_custom_object(G, "v1", NS, "pytorchjobs", pytorchjob(name, command))
    core = client.CoreV1Api(server.client())
    ports = set()
    for name in ("pt-a", "pt-b"):
        obj = wait_for(server, name, finished, "finished", plural="pytorchjobs", version="v1")
        assert condition(obj, "Succeeded")["reason"] == "PyTorchJobSucceeded"
        pods = core.list_namespaced_pod(NS, label_selector=f"training.kubeflow.org/job-name={name}")
        assert sorted(p.metadata.name for p in pods.items) == [f"{name}-master-0", f"{name}-worker-0"]
        master = core.read_namespaced_pod_log(f"{name}-master-0", NS).strip()
        worker = core.read_namespaced_pod_log(f"{name}-worker-0", NS).strip()
        assert master.startswith("rank=0 world=2 master=127.0.0.1:") and worker.startswith("rank=1 world=2")
        ports.add(master.rsplit(":", 1)[1])
        assert worker.rsplit(":", 1)[1] == master.rsplit(":", 1)[1]
    assert len(ports) == 2 and "23456" not in ports


def test_server_killed_mid_job_and_restarted(fresh_server, exchange):
    server = fresh_server()
    command, pid_file = pid_command(exchange, "crash", "exec sleep 120")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("done-before", ["echo", "kept"]))
    wait_for(server, "done-before", finished, "finished")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("crash", command))
    pid = read_pid(pid_file)
    wait_for(server, "crash", lambda o: condition(o, "Running"), "running")
    server.stop(signal_kill(), keep_jobs=True)
    wait_until(lambda: not alive(pid), timeout=30, what="the replica stopped by its keeper")
    again = fresh_server(after=server)
    obj = wait_for(again, "crash", finished, "marked failed after the restart")
    assert "the ringrun server that ran it stopped" in condition(obj, "Failed")["message"]
    kept = get(again, "done-before")
    assert condition(kept, "Succeeded") is not None
    core = client.CoreV1Api(again.client())
    assert core.read_namespaced_pod_log("done-before-launcher", NS) == "kept\n"
    assert core.read_namespaced_pod(
        "crash-launcher", NS).status.phase == "Failed"
    api(again).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("after", ["true"]))
    assert condition(wait_for(again, "after", finished, "finished"), "Succeeded") is not None
    assert not glob.glob(os.path.join(again.jobs_dir or os.path.join(again.data_dir, "jobs"), "*", "ringrun-*"))


def signal_kill():
    import signal

    return signal.SIGKILL


def test_sigterm_stops_running_jobs_and_keeps_queued_ones(fresh_server, exchange):
    server = fresh_server("--capacity", "cpu=1")
    command, pid_file = pid_command(exchange, "term", "exec sleep 120")
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("term", command, requests={"cpu": "1"}))
    pid = read_pid(pid_file)
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("later", ["true"], requests={"cpu": "1"}))
    wait_for(server, "later", lambda o: condition(o, "Queued"), "queued")
    assert server.stop() == 0
    assert not alive(pid)
    again = fresh_server("--capacity", "cpu=1", data_dir=server.data_dir)
    stopped = get(again, "term")
    assert "interrupted by signal 15" in condition(stopped, "Failed")["message"]
    assert condition(wait_for(again, "later", finished, "finished after the restart"), "Succeeded") is not None


def test_tensorstack_and_mxnet_jobs_report_their_own_status(server):
    t9k = {"apiVersion": "batch.tensorstack.dev/v1beta1", "kind": "MPIJob", "metadata": {"name": "t9k"},
           "spec": {"worker": {"replicas": 2, "cmd": ["sh", "-c", "echo t9k ran"], "template": {"spec": {
               "containers": [{"name": "mpi-worker", "image": "local"}]}}}}}
    api(server).create_namespaced_custom_object("batch.tensorstack.dev", "v1beta1", NS, "mpijobs", t9k)
    obj = wait_until(lambda: (lambda o: o if o.get("status", {}).get("phase") in ("Succeeded", "Failed") else None)(
        api(server).get_namespaced_custom_object("batch.tensorstack.dev", "v1beta1", NS, "mpijobs", "t9k")),
        timeout=60, what="the TensorStack job finished")
    assert obj["status"]["phase"] == "Succeeded", obj["status"]
    assert [c["type"] for c in obj["status"]["conditions"]][-1] == "Completed"
    role = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [
        {"name": "mxnet", "image": "local", "command": ["sh", "-c", 'echo "$DMLC_ROLE $DMLC_PS_ROOT_PORT"']}]}}}
    mx = {"apiVersion": "kubeflow.org/v1", "kind": "MXJob", "metadata": {"name": "mx"},
          "spec": {"jobMode": "MXTrain", "mxReplicaSpecs": {"Scheduler": role, "Server": role, "Worker": role}}}
    api(server).create_namespaced_custom_object(G, "v1", NS, "mxjobs", mx)
    obj = wait_for(server, "mx", finished, "finished", plural="mxjobs", version="v1")
    assert condition(obj, "Succeeded")["reason"] == "MXJobSucceeded"
    log = client.CoreV1Api(server.client()).read_namespaced_pod_log("mx-worker-0", NS).split()
    assert log[0] == "worker" and log[1] != "9091"


def test_a_followed_log_goes_on_across_a_restart(server, exchange):
    from rawhttp import request as raw

    marker = exchange / "first"
    gate = exchange / "gate"
    command = ["sh", "-c", f'if [ ! -e "{marker}" ]; then touch "{marker}"; echo "attempt 1"; '
                           f'while [ ! -e "{gate}" ]; do sleep 0.05; done; exit 1; fi; echo "attempt 2"']
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs",
                                                mpijob("follow", command, restart="OnFailure", backoffLimit=2))
    wait_until(marker.exists, what="the first attempt")
    import threading

    threading.Timer(1.0, gate.write_text, args=("go",)).start()  # ends the first attempt while the log is followed
    status, text = raw(server, "GET", f"/api/v1/namespaces/{NS}/pods/follow-launcher/log?follow=true", timeout=60)
    assert status == 200 and text == "attempt 1\nattempt 2\n", text
    assert condition(wait_for(server, "follow", finished, "finished"), "Succeeded") is not None


def test_a_flood_of_output_is_rotated_and_read_from_the_end(fresh_server):
    """A replica that writes 40 MiB (and a 5 MiB line with no end) as fast as it can: its log stays within
    --log-max-size x --log-max-files on disk, the server's memory does not follow it, and tailLines / limitBytes
    read from the end."""
    server = fresh_server("--log-max-size", "1Mi", "--log-max-files", "3")
    flood = ("import sys\nw = sys.stdout.buffer.write\nw(b'z' * (5 << 20) + b'\\n')\n"
             "for i in range(400000):\n    w(b'line %07d ' % i + b'x' * 90 + b'\\n')\nprint('the end')")
    before = rss(server.proc.pid)
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("flood", ["python3", "-c", flood]))
    obj = wait_for(server, "flood", finished, "finished", timeout=120)
    assert condition(obj, "Succeeded") is not None
    logs = os.path.join(server.data_dir, "logs", obj["metadata"]["uid"])
    sizes = {name: os.path.getsize(os.path.join(logs, name)) for name in os.listdir(logs)
             if name.startswith("launcher-0.log") and not name.endswith(".times")}
    assert sorted(sizes) == ["launcher-0.log", "launcher-0.log.1", "launcher-0.log.2"]
    assert max(sizes.values()) <= 1 << 20
    core = client.CoreV1Api(server.client())
    assert core.read_namespaced_pod_log("flood-launcher", NS, tail_lines=2) == \
        "line 0399999 " + "x" * 90 + "\nthe end\n"
    assert core.read_namespaced_pod_log("flood-launcher", NS, limit_bytes=100) != ""
    assert len(core.read_namespaced_pod_log("flood-launcher", NS, limit_bytes=100)) == 100
    assert rss(server.proc.pid) - before < 100 << 20


def test_since_seconds_reads_from_that_second(server, exchange):
    gate = exchange / "since-gate"
    command = ["sh", "-c", f'echo early; while [ ! -e "{gate}" ]; do sleep 0.1; done; echo late; sleep 30']
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("since", command))
    core = client.CoreV1Api(server.client())
    wait_until(lambda: "early" in _log_or_empty(core, "since-launcher"), what="the early line")
    time.sleep(3)
    gate.touch()
    wait_until(lambda: "late" in _log_or_empty(core, "since-launcher"), what="the late line")
    assert core.read_namespaced_pod_log("since-launcher", NS, since_seconds=2) == "late\n"
    assert core.read_namespaced_pod_log("since-launcher", NS, since_seconds=3600) == "early\nlate\n"
    api(server).delete_namespaced_custom_object(G, V, NS, "mpijobs", "since")


def _log_or_empty(core, pod):
    try:
        return core.read_namespaced_pod_log(pod, NS)
    except client.ApiException:
        return ""


def rss(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))


def parent_of(pid):
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return int(handle.read().rsplit(b")", 1)[1].split()[1])


def test_a_killed_keeper_still_ends_its_replica(server, exchange):
    """SIGKILL of a replica's keeper (the one process that would have ended its tree) still ends the replica and
    what it started, a `setsid` grandchild included, and the replica is reported killed (137)."""
    command, pid_file = pid_command(exchange, "orphaned",
                                    f'setsid sleep 300 & echo $! > "{exchange}/orphaned.child"; exec sleep 300')
    api(server).create_namespaced_custom_object(G, V, NS, "mpijobs", mpijob("orphaned", command))
    pid = read_pid(pid_file)
    child = int(wait_until(lambda: (exchange / "orphaned.child").exists() and
                           (exchange / "orphaned.child").read_text().strip(), what="the grandchild's pid"))
    keeper = parent_of(pid)
    with open(f"/proc/{keeper}/comm", encoding="ascii") as handle:
        assert handle.read().strip() == "ringrun"
    os.kill(keeper, signal.SIGKILL)
    obj = wait_for(server, "orphaned", finished, "failed")
    assert "exited with code 137" in condition(obj, "Failed")["message"]
    wait_until(lambda: not alive(pid) and not alive(child), timeout=30, what="the replica and its grandchild gone")

"""The Python clients people use, unchanged, against `ringrun serve`: kubernetes_asyncio, kr8s, lightkube and a
short kopf operator, each creating, listing, watching, patching, reading logs and deleting (the `kubernetes` client
and kubectl have modules of their own)."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
for _name in ("kubernetes_asyncio", "kr8s", "lightkube", "kopf"):
    pytest.importorskip(_name, reason=f"{_name} comes from the server-test extra, installed by `make test`")

import asyncio
import os
import subprocess
import sys
import time

from jobspecs import mpijob
from serverproc import end, wait_until

G, V = "kubeflow.org", "v2beta1"


def job(name, command=("sh", "-c", "echo hello from $0", "x")):
    return mpijob(name, list(command))


def conditions(obj):
    return [c["type"] for c in (obj.get("status") or {}).get("conditions", []) if c.get("status") == "True"]


def test_kubernetes_asyncio(server):
    from kubernetes_asyncio import client, config, watch

    async def scenario():
        await config.load_kube_config(server.kubeconfig)
        async with client.ApiClient() as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            await custom.create_namespaced_custom_object(G, V, "k8s-asyncio", "mpijobs", job("ka"))
            seen = []
            stream = watch.Watch()
            async for event in stream.stream(custom.list_namespaced_custom_object, G, V, "k8s-asyncio", "mpijobs",
                                             timeout_seconds=60):
                seen.append(event["type"])
                if "Succeeded" in conditions(event["object"]):
                    stream.stop()
            pods = await core.list_namespaced_pod("k8s-asyncio", label_selector="training.kubeflow.org/job-name=ka")
            log = await core.read_namespaced_pod_log("ka-launcher", "k8s-asyncio")
            patched = await custom.patch_namespaced_custom_object(
                G, V, "k8s-asyncio", "mpijobs", "ka", {"metadata": {"labels": {"by": "asyncio"}}},
                _content_type="application/merge-patch+json")
            await custom.delete_namespaced_custom_object(G, V, "k8s-asyncio", "mpijobs", "ka")
            return seen, [(p.metadata.name, p.status.phase) for p in pods.items], log, patched
    seen, pods, log, patched = asyncio.run(scenario())
    assert seen[0] == "ADDED" and seen[-1] == "MODIFIED"
    assert pods == [("ka-launcher", "Succeeded")] and log == "hello from x\n"
    assert patched["metadata"]["labels"] == {"by": "asyncio"}


def test_kr8s(server, monkeypatch):
    import kr8s
    from kr8s.objects import Pod, new_class

    monkeypatch.setenv("KUBECONFIG", server.kubeconfig)
    api = kr8s.api(kubeconfig=server.kubeconfig)
    MPIJob = new_class(kind="MPIJob", version=f"{G}/{V}", namespaced=True)
    made = MPIJob(job("kr"), namespace="kr8s", api=api)
    made.create()
    pod = wait_until(lambda: next(iter(api.get("pods", "kr-launcher", namespace="kr8s")), None), 60,
                     what="the launcher's pod")
    Pod.get("kr-launcher", namespace="kr8s", api=api).wait(["condition=Ready", "jsonpath='{.status.phase}'="
                                                                                "Succeeded"], timeout=60)
    # kr8s resolves a plural alone by group name: mpijobs.v2beta1.kubeflow.org names the Kubeflow ones (docs/server.md)
    for _, obj in api.watch("mpijobs.v2beta1.kubeflow.org", namespace="kr8s", field_selector="metadata.name=kr"):
        if "Succeeded" in conditions(obj.raw):
            break
    assert pod.name == "kr-launcher" and "hello from x" in "".join(pod.logs())
    made.label({"by": "kr8s"})
    assert list(api.get("mpijobs.v2beta1.kubeflow.org", "kr", namespace="kr8s"))[0].labels == {"by": "kr8s"}
    made.delete()
    wait_until(lambda: not list(api.get("mpijobs.v2beta1.kubeflow.org", namespace="kr8s")), 30, what="the job gone")


def test_lightkube(server, monkeypatch):
    from lightkube import Client, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource, load_in_cluster_generic_resources
    from lightkube.resources.core_v1 import Namespace, Pod
    from lightkube.types import PatchType

    lk = Client(config=KubeConfig.from_file(server.kubeconfig))
    load_in_cluster_generic_resources(lk)  # reads the CustomResourceDefinitions
    from lightkube.generic_resource import get_generic_resource

    MPIJob = get_generic_resource(f"{G}/{V}", "MPIJob")
    assert MPIJob is not None and MPIJob is create_namespaced_resource(G, V, "MPIJob", "mpijobs")
    lk.create(MPIJob(job("lk")), namespace="lightkube")
    for _, obj in lk.watch(MPIJob, namespace="lightkube", fields={"metadata.name": "lk"}):
        if "Succeeded" in conditions({"status": obj.status}):
            break
    assert [p.metadata.name for p in lk.list(Pod, namespace="lightkube")] == ["lk-launcher"]
    assert "".join(lk.log("lk-launcher", namespace="lightkube")) == "hello from x\n"
    patched = lk.patch(MPIJob, "lk", {"metadata": {"labels": {"by": "lightkube"}}}, namespace="lightkube",
                       patch_type=PatchType.MERGE)
    assert patched.metadata.labels == {"by": "lightkube"}
    assert "lightkube" in [n.metadata.name for n in lk.list(Namespace)]
    lk.delete(MPIJob, "lk", namespace="lightkube")


OPERATOR = '''
import kopf

@kopf.on.create("kubeflow.org", "v2beta1", "mpijobs")
def created(name, patch, logger, **_):
    patch.metadata.annotations["seen-by"] = "kopf"
    logger.info(f"created {name}")

@kopf.on.delete("kubeflow.org", "v2beta1", "mpijobs")
def deleted(name, logger, **_):
    logger.info(f"deleted {name}")
'''


def test_a_kopf_operator_with_its_finalizer(server, tmp_path):
    from kubernetes import client

    (tmp_path / "operator.py").write_text(OPERATOR)
    log = open(tmp_path / "kopf.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "-n", "kopf-ns",
                             str(tmp_path / "operator.py")], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "KUBECONFIG": server.kubeconfig}, cwd=tmp_path)
    try:
        api = client.CustomObjectsApi(server.client())
        api.create_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", job("kopfed"))
        seen = wait_until(lambda: (lambda o: o if (o["metadata"].get("annotations") or {}).get("seen-by") else None)(
            api.get_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", "kopfed")), 60, what="kopf's annotation")
        assert seen["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        # once the job has finished, kopf has nothing left to do and the object settles (kopf's last patch, its
        # last-handled-configuration, may land just after the job's last status). A dropped finalizer made kopf patch
        # it again and again, thousands of versions a minute: it never settled.
        wait_until(lambda: (lambda o: o if conditions(o)[-1:] == ["Succeeded"] else None)(
            api.get_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", "kopfed")), 60, what="the job finished")

        def settled():
            before = api.get_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", "kopfed")
            time.sleep(3)
            after = api.get_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", "kopfed")
            return after if after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"] else None
        quiet = wait_until(settled, 30, what="the finished job left alone by kopf")
        assert "kopf.zalando.org/last-handled-configuration" in quiet["metadata"]["annotations"]
        api.delete_namespaced_custom_object(G, V, "kopf-ns", "mpijobs", "kopfed")
        wait_until(lambda: not api.list_namespaced_custom_object(G, V, "kopf-ns", "mpijobs")["items"], 60,
                   what="the job gone once kopf removed its finalizer")
        wait_until(lambda: "Handler 'deleted' succeeded" in (tmp_path / "kopf.log").read_text(), 30,
                   what="kopf's delete handler")
        text = (tmp_path / "kopf.log").read_text()
        assert "Traceback" not in text and "KeyError" not in text, text
    finally:
        end(proc)
        log.close()

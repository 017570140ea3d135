"""kube-apiserver's semantics that clients lean on, checked over HTTP against `ringrun serve`: no-op writes,
finalizers and deletionTimestamp, selector transitions in watches, list pages at one snapshot (and the 410 with an
inconsistent continue token), fieldValidation Strict / Warn / Ignore, objects kept at the version they were written,
watch-list's initial-events-end bookmark, namespaces, pods and events as objects."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")

import json
import urllib.parse

from jobspecs import finished, mpijob
from rawhttp import created, exchange, request, watch_lines
from serverproc import wait_until

NS = "semantics"
JOBS = f"/apis/kubeflow.org/v2beta1/namespaces/{NS}/mpijobs"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def create(server, name, labels=None, finalizers=None, path=JOBS, **spec):
    job = mpijob(name, ["true"], suspend=True, **spec)
    if labels:
        job["metadata"]["labels"] = labels
    if finalizers:
        job["metadata"]["finalizers"] = finalizers
    return created(server, path, job)


def rv(obj):
    return int(obj["metadata"]["resourceVersion"])


def test_a_write_that_changes_nothing_makes_no_version_and_no_event(server):
    # a namespace: an object no controller writes meanwhile
    space = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "noop-space", "labels": {"a": "1"}}}
    status, made_space = request(server, "POST", "/api/v1/namespaces", space)
    assert status == 201
    status, same = request(server, "PATCH", "/api/v1/namespaces/noop-space", {"metadata": {"labels": {"a": "1"}}},
                           content_type=MERGE)
    assert status == 200 and same == made_space
    status, same = request(server, "PUT", "/api/v1/namespaces/noop-space", made_space)
    assert status == 200 and same == made_space
    made = create(server, "noop", labels={"a": "1"})
    status, same = request(server, "PATCH", f"{JOBS}/noop", {"metadata": {"labels": {"a": "1"}}}, content_type=MERGE)
    assert status == 200
    status, changed = request(server, "PATCH", f"{JOBS}/noop", {"metadata": {"labels": {"a": "2"}}},
                              content_type=MERGE)
    assert rv(changed) > rv(made)
    events = watch_lines(server, f"{JOBS}?watch=true&resourceVersion={rv(made)}&timeoutSeconds=1"
                                 "&fieldSelector=metadata.name%3Dnoop")
    assert rv(changed) in [rv(e["object"]) for e in events]
    # (the controller writes the job's status meanwhile) no event repeats the object it had
    states = [made] + [e["object"] for e in events]
    assert all(unversioned(a) != unversioned(b) for a, b in zip(states, states[1:]))


def unversioned(obj):
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def test_finalizers_hold_a_deleted_object_until_the_last_is_removed(server):
    made = create(server, "held", finalizers=["example.com/keep"])
    status, answer = request(server, "DELETE", f"{JOBS}/held")
    assert status == 200 and answer["kind"] == "MPIJob" and answer["metadata"]["deletionTimestamp"]
    status, current = request(server, "GET", f"{JOBS}/held")
    assert status == 200 and current["metadata"]["finalizers"] == ["example.com/keep"]
    assert current["metadata"]["deletionTimestamp"] == answer["metadata"]["deletionTimestamp"]
    status, again = request(server, "DELETE", f"{JOBS}/held")  # a second delete changes nothing
    assert status == 200 and again["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    status, refused = request(server, "PATCH", f"{JOBS}/held",
                              {"metadata": {"finalizers": ["example.com/keep", "example.com/more"]}},
                              content_type=MERGE)
    assert status == 422 and "no new finalizers can be added if the object is being deleted" in refused["message"]
    status, gone = request(server, "PATCH", f"{JOBS}/held", [{"op": "remove", "path": "/metadata/finalizers"}],
                           content_type=JSON_PATCH)
    assert status == 200
    assert request(server, "GET", f"{JOBS}/held")[0] == 404
    events = watch_lines(server, f"{JOBS}?watch=true&resourceVersion={rv(made)}&timeoutSeconds=1"
                                 "&fieldSelector=metadata.name%3Dheld")
    ours = [e for e in events if rv(e["object"]) in (rv(answer), rv(gone))]
    assert [e["type"] for e in ours] == ["MODIFIED", "DELETED"] and events[-1]["type"] == "DELETED"
    assert ours[0]["object"]["metadata"]["deletionTimestamp"]


def test_a_watch_with_a_selector_sees_objects_leave_and_come_back(server):
    made = create(server, "mover", labels={"team": "a"})
    _, moved = request(server, "PATCH", f"{JOBS}/mover", {"metadata": {"labels": {"team": "b"}}}, content_type=MERGE)
    _, back = request(server, "PATCH", f"{JOBS}/mover", {"metadata": {"labels": {"team": "a"}}}, content_type=MERGE)
    _, again = request(server, "PATCH", f"{JOBS}/mover", {"metadata": {"annotations": {"x": "y"}}},
                       content_type=MERGE)
    events = watch_lines(server, f"{JOBS}?watch=true&resourceVersion={rv(made)}&timeoutSeconds=1"
                                 "&labelSelector=team%3Da")
    ours = (rv(moved), rv(back), rv(again))  # (the controller writes the job's status meanwhile)
    mine = [(e["type"], rv(e["object"])) for e in events if rv(e["object"]) in ours]
    assert mine == [("DELETED", rv(moved)), ("ADDED", rv(back)), ("MODIFIED", rv(again))]


def test_list_pages_are_one_snapshot(server):
    path = f"/apis/kubeflow.org/v2beta1/namespaces/{NS}-pages/mpijobs"
    for name in ("a", "b", "c"):
        create(server, name, path=path)
    status, first = request(server, "GET", f"{path}?limit=1")
    assert [o["metadata"]["name"] for o in first["items"]] == ["a"]
    assert first["metadata"]["remainingItemCount"] == 2
    assert request(server, "DELETE", f"{path}/c")[0] == 200
    create(server, "bb", path=path)
    token = urllib.parse.quote(first["metadata"]["continue"])
    status, rest = request(server, "GET", f"{path}?limit=10&continue={token}")
    assert status == 200, rest
    # as the list was at the first page: c still there, bb not yet
    assert [o["metadata"]["name"] for o in rest["items"]] == ["b", "c"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in rest["metadata"]


def test_an_expired_continue_gets_410_with_an_inconsistent_token(fresh_server):
    server = fresh_server("--watch-history", "256")
    path = f"/apis/kubeflow.org/v2beta1/namespaces/{NS}/mpijobs"
    for name in ("a", "b"):
        create(server, name, path=path)
    _, first = request(server, "GET", f"{path}?limit=1")
    for i in range(600):  # past twice the history: the first page's version is compacted away
        status, _ = request(server, "PATCH", f"{path}/b", {"metadata": {"labels": {"n": str(i)}}},
                            content_type=MERGE)
        assert status == 200
    token = urllib.parse.quote(first["metadata"]["continue"])
    status, expired = request(server, "GET", f"{path}?limit=10&continue={token}")
    assert status == 410 and expired["reason"] == "Expired", expired
    assert "inconsistent list" in expired["message"]
    inconsistent = urllib.parse.quote(expired["metadata"]["continue"])
    status, rest = request(server, "GET", f"{path}?limit=10&continue={inconsistent}")
    assert status == 200 and [o["metadata"]["name"] for o in rest["items"]] == ["b"]
    assert rest["items"][0]["metadata"]["labels"] == {"n": "599"}


def test_field_validation_strict_warn_and_ignore(server):
    job = mpijob("fv", ["true"], suspend=True)
    job["spec"]["slotPerWorker"] = 2  # a typo of slotsPerWorker
    status, body = request(server, "POST", f"{JOBS}?fieldValidation=Strict", job)
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ('MPIJob in version "v2beta1" cannot be handled as a MPIJob: strict decoding error: '
                               'unknown field "spec.slotPerWorker"')
    status, made, headers = exchange(server, "POST", JOBS, job)  # no parameter: Warn
    assert status == 201 and "slotPerWorker" not in made["spec"]
    assert headers.get_all("Warning") == ['299 - "unknown field \\"spec.slotPerWorker\\""']
    job["metadata"]["name"] = "fv-ignored"
    status, made, headers = exchange(server, "POST", f"{JOBS}?fieldValidation=Ignore", job)
    assert status == 201 and "slotPerWorker" not in made["spec"] and headers.get_all("Warning") is None


def test_an_object_is_kept_at_the_version_it_was_written(server):
    job = mpijob("v2only", ["true"], suspend=True)
    job["spec"]["launcherCreationPolicy"] = "WaitForWorkersReady"
    job["spec"]["mpiImplementation"] = "OpenMPI"
    assert request(server, "POST", JOBS, job)[0] == 201
    v1 = f"/apis/kubeflow.org/v1/namespaces/{NS}/mpijobs/v2only"
    status, labelled = request(server, "PATCH", v1, {"metadata": {"labels": {"seen": "v1"}}}, content_type=MERGE)
    assert status == 200, labelled
    assert labelled["apiVersion"] == "kubeflow.org/v1"
    assert labelled["spec"]["launcherCreationPolicy"] == "WaitForWorkersReady"
    status, stored = request(server, "GET", f"{JOBS}/v2only")
    assert stored["apiVersion"] == "kubeflow.org/v2beta1" and stored["metadata"]["labels"] == {"seen": "v1"}
    assert stored["spec"]["mpiImplementation"] == "OpenMPI"


def test_watch_list_ends_its_initial_events_with_a_bookmark(server):
    create(server, "listed")
    query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    status, refused = request(server, "GET", f"{JOBS}?{query}")
    assert status == 422 and "sendInitialEvents requires setting allowWatchBookmarks to true" in refused["message"]
    events = watch_lines(server, f"{JOBS}?{query}&allowWatchBookmarks=true")
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "BOOKMARK" and set(kinds[:-1]) == {"ADDED"}
    assert "listed" in [e["object"]["metadata"]["name"] for e in events[:-1]]
    mark = events[-1]["object"]
    assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(mark["metadata"]["resourceVersion"]) >= max(rv(e["object"]) for e in events[:-1])
    status, refused = request(server, "GET", f"{JOBS}?sendInitialEvents=true")
    assert status == 422 and "sendInitialEvents is forbidden for list" in refused["message"]


def test_namespaces_are_objects(server):
    status, made = request(server, "POST", "/api/v1/namespaces",
                           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "made-here"}})
    assert status == 201 and made["status"]["phase"] == "Active" and made["metadata"]["creationTimestamp"]
    assert made["metadata"]["labels"] == {"kubernetes.io/metadata.name": "made-here"}
    assert request(server, "POST", "/api/v1/namespaces", made)[0] == 409
    status, bad = request(server, "POST", "/api/v1/namespaces",
                          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Not_A_Label"}})
    assert status == 422 and bad["reason"] == "Invalid"
    create(server, "in-new", path="/apis/kubeflow.org/v2beta1/namespaces/made-by-a-job/mpijobs")
    _, listed = request(server, "GET", "/api/v1/namespaces")
    names = [n["metadata"]["name"] for n in listed["items"]]
    assert {"default", "made-here", "made-by-a-job"} <= set(names)
    status, gone = request(server, "DELETE", "/api/v1/namespaces/made-by-a-job")
    assert status == 200 and gone["status"]["phase"] == "Terminating"
    assert request(server, "GET", "/api/v1/namespaces/made-by-a-job")[0] == 404
    assert request(server, "GET", "/apis/kubeflow.org/v2beta1/namespaces/made-by-a-job/mpijobs/in-new")[0] == 404


def test_pods_and_events_are_objects_that_watches_see(server):
    made = create(server, "lived")
    status, answer = request(server, "PATCH", f"{JOBS}/lived", {"spec": {"runPolicy": {"suspend": False}}},
                             content_type=MERGE)
    assert status == 200, answer
    wait_until(lambda: finished(request(server, "GET", f"{JOBS}/lived")[1]), 60, what="the job finished")
    pods_path = f"/api/v1/namespaces/{NS}/pods"
    events = watch_lines(server, f"{pods_path}?watch=true&resourceVersion={rv(made)}&timeoutSeconds=1"
                                 "&labelSelector=training.kubeflow.org%2Fjob-name%3Dlived")
    assert events and all(e["object"]["kind"] == "Pod" for e in events)
    assert [e["type"] for e in events][0] == "ADDED"
    assert events[-1]["object"]["status"]["phase"] == "Succeeded"
    versions = [rv(e["object"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    _, pod = request(server, "GET", f"{pods_path}/lived-launcher")
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0 and state["startedAt"] and state["finishedAt"]
    _, succeeded = request(server, "GET", f"{pods_path}?fieldSelector=status.phase%3DSucceeded")
    assert "lived-launcher" in [p["metadata"]["name"] for p in succeeded["items"]]
    selector = urllib.parse.quote("involvedObject.name=lived,involvedObject.kind=MPIJob")
    _, told = request(server, "GET", f"/api/v1/namespaces/{NS}/events?fieldSelector={selector}")
    reasons = [e["reason"] for e in told["items"]]
    assert {"MPIJobCreated", "MPIJobRunning", "MPIJobSucceeded", "SuccessfulCreatePod"} <= set(reasons), reasons
    assert all(e["firstTimestamp"] and e["involvedObject"]["uid"] == made["metadata"]["uid"] for e in told["items"])
    # a client's own event (kopf posts them) is taken as well
    status, posted = request(server, "POST", f"/api/v1/namespaces/{NS}/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "lived."}, "reason": "Logging",
        "message": "handled", "type": "Normal", "source": {"component": "kopf"},
        "involvedObject": {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob", "name": "lived",
                           "namespace": NS, "uid": made["metadata"]["uid"]}})
    assert status == 201 and posted["metadata"]["name"].startswith("lived."), posted
    # the same events as events.k8s.io/v1 shows them, and one written through it
    v1 = f"/apis/events.k8s.io/v1/namespaces/{NS}/events"
    _, shown = request(server, "GET", f"{v1}?fieldSelector=" + urllib.parse.quote("regarding.name=lived,reason=Logging"))
    assert [(e["apiVersion"], e["note"], e["regarding"]["uid"], e["reportingController"]) for e in shown["items"]] == \
        [("events.k8s.io/v1", "handled", made["metadata"]["uid"], "kopf")]
    status, written = request(server, "POST", v1, {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "lived.v1"}, "reason": "Noted",
        "note": "through events.k8s.io", "type": "Warning", "eventTime": "2026-12-04T12:00:00.000000Z",
        "reportingController": "example.com/ctl", "reportingInstance": "ctl-1", "action": "Check",
        "regarding": {"apiVersion": "kubeflow.org/v2beta1", "kind": "MPIJob", "name": "lived", "namespace": NS}})
    assert status == 201 and written["note"] == "through events.k8s.io", written
    _, core = request(server, "GET", f"/api/v1/namespaces/{NS}/events/lived.v1")
    assert (core["apiVersion"], core["message"], core["involvedObject"]["name"], core["reportingComponent"]) == \
        ("v1", "through events.k8s.io", "lived", "example.com/ctl")
    assert request(server, "POST", f"{pods_path}", {"apiVersion": "v1", "kind": "Pod",
                                                    "metadata": {"name": "mine"}})[0] == 405
    # the job's pods go with it
    assert request(server, "DELETE", f"{JOBS}/lived")[0] == 200
    wait_until(lambda: request(server, "GET", f"{pods_path}/lived-launcher")[0] == 404, 30,
               what="the pod removed with its job")


def test_protobuf_is_read_only_for_a_namespace(server):
    status, body = request(server, "POST", JOBS, b"k8s\x00\x0a\x00", content_type="application/vnd.kubernetes.protobuf")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, body = request(server, "POST", "/api/v1/namespaces", b"k8s\x00\x0a\x09\x0a\x02v1\x12\x03Pod",
                           content_type="application/vnd.kubernetes.protobuf")
    assert status == 400 and "only v1 Namespace" in body["message"]
    status, body = request(server, "POST", "/api/v1/namespaces", json.dumps({"kind": "Namespace"}).encode())
    assert status == 400 and body["message"] == "Object 'apiVersion' is missing in the request body"

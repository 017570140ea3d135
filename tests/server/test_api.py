"""The job API against the seeds and kube-apiserver's conventions, through the official `kubernetes` client and
plain HTTPS: shapes of the seeds' responses, replace rules, and every error code with its Status body."""

import pytest

pytest.importorskip("aiohttp", reason="the server extra (aiohttp) is installed by `make test`")
pytest.importorskip("kubernetes", reason="the server-test extra (the kubernetes client) is installed by `make test`")

import json
import re
import uuid

import pytest
from serverproc import fixture_text, wait_until
from jobspecs import mpijob
from kubernetes import client
from kubernetes.client.rest import ApiException
from rawhttp import exchange, request

NS = "kube-test"
SEEDS = [("seed-000", "kubeflow.org", "v1alpha2", "mpijobs"), ("seed-001", "kubeflow.org", "v1", "mxjobs"),
         ("seed-003", "kubeflow.org", "v1", "pytorchjobs")]
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def seed(name):
    return json.loads(fixture_text(f"{name}.json"))


@pytest.mark.parametrize("name, group, version, plural", SEEDS)
def test_seed_request_creates_what_the_seed_response_shows(server, name, group, version, plural):
    api = client.CustomObjectsApi(server.client())
    created = api.create_namespaced_custom_object(group, version, NS, plural, seed(f"{name}-request"))
    expected = seed(f"{name}-response")
    assert list(created) == list(expected) or set(created) == set(expected)
    # and managedFields, which kube-apiserver has added to every object since the seeds were written
    assert set(created["metadata"]) == set(expected["metadata"]) | {"managedFields"}
    assert [e["manager"] for e in created["metadata"]["managedFields"]] == ["OpenAPI-Generator"]
    assert created["spec"] == expected["spec"]
    assert created["status"] == {}
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["namespace"] == NS and meta["name"] == expected["metadata"]["name"]
    assert meta["selfLink"] == expected["metadata"]["selfLink"]
    assert TIME.match(meta["creationTimestamp"]) and uuid.UUID(meta["uid"]) and meta["resourceVersion"].isdigit()
    again = api.get_namespaced_custom_object(group, version, NS, plural, meta["name"])
    assert again["metadata"]["uid"] == meta["uid"] and again["spec"] == expected["spec"]


def test_a_field_in_the_seeds_form_is_accepted_with_a_warning(server):
    """The seed's MXJob writes spec.cleanPodPolicy where training-operator's CRD has spec.runPolicy.cleanPodPolicy:
    accepted, stored as written, and kube-apiserver's Warning header (which kubectl prints) names the field."""
    body = {**seed("seed-001-request"), "metadata": {"name": "warned"}}
    status, created, headers = exchange(server, "POST", f"/apis/kubeflow.org/v1/namespaces/{NS}/mxjobs", body)
    assert status == 201 and created["spec"]["cleanPodPolicy"] == "Running"
    assert headers.get_all("Warning") == [
        '299 - "spec.cleanPodPolicy: read as spec.runPolicy.cleanPodPolicy (where the MXJob CRD has it)"']
    status, _, headers = exchange(server, "POST", JOBS, mpijob("unwarned", ["true"]))
    assert status == 201 and headers.get_all("Warning") is None


def test_seed_create_with_pretty_is_indented_as_the_seed(server):
    body = seed("seed-000-request")
    body["metadata"]["name"] = "pretty-one"
    status, text = request(server, "POST", f"/apis/kubeflow.org/v1alpha2/namespaces/{NS}/mpijobs?pretty=true",
                           json.dumps(body).encode(), content_type=None)
    assert status == 201 and text["metadata"]["name"] == "pretty-one"
    import ssl
    import urllib.request

    req = urllib.request.Request(server.url + f"/apis/kubeflow.org/v1alpha2/namespaces/{NS}/mpijobs/pretty-one"
                                              "?pretty=true", headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=server.ca), timeout=30) as response:
        raw = response.read().decode()
    assert raw.startswith('{\n    "apiVersion": "kubeflow.org/v1alpha2",\n    "kind": "MPIJob",\n')


def test_seed_put_replaces_clean_pod_policy_and_labels(fresh_server):
    server = fresh_server("--capacity", "cpu=1")  # the seed's 3 cpus never fit: it stays queued
    api = client.CustomObjectsApi(server.client())
    put = seed("seed-002-request")
    original = json.loads(json.dumps(put))
    original["metadata"] = {"name": "mpi-test"}
    original["spec"]["cleanPodPolicy"] = "All"
    original.pop("status")
    api.create_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", original)
    # the controller writes its status (queued: it asks for 3 cpus, more than this machine has); then a client
    # replaces what it read, as `kubectl replace` does
    created = wait_until(lambda: (lambda o: o if o.get("status") else None)(
        api.get_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test")), what="a status")
    put["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    put["metadata"]["uid"] = created["metadata"]["uid"]
    replaced = api.replace_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test", put)
    expected = seed("seed-002-response")
    assert set(replaced["metadata"]) == set(expected["metadata"]) | {"managedFields"}
    assert replaced["metadata"]["generation"] == 2 and replaced["metadata"]["labels"] == {"app": "test"}
    assert replaced["spec"] == expected["spec"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert replaced["status"] != put["status"]  # the status is the server's, never the client's
    # a label change alone does not bump the generation
    replaced["metadata"]["labels"]["more"] = "x"
    again = api.replace_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test", replaced)
    assert again["metadata"]["generation"] == 2 and again["metadata"]["labels"]["more"] == "x"
    # the stale version now conflicts
    with pytest.raises(ApiException) as stale:
        api.replace_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test", replaced)
    body = json.loads(stale.value.body)
    assert stale.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on mpijobs.kubeflow.org "mpi-test": the object has been '
                               "modified; please apply your changes to the latest version and try again")
    # a field outside the seed's list is refused with a cause naming it
    again["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] = 3
    again["spec"]["slotsPerWorker"] = 2
    with pytest.raises(ApiException) as refused:
        api.replace_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test", again)
    body = json.loads(refused.value.body)
    assert refused.value.status == 422 and body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.mpiReplicaSpecs.Worker.replicas",
                                                               "spec.slotsPerWorker"]
    assert all(c["reason"] == "FieldValueForbidden" for c in body["details"]["causes"])
    assert api.get_namespaced_custom_object("kubeflow.org", "v1alpha2", NS, "mpijobs", "mpi-test")["spec"][
        "slotsPerWorker"] == 1


def _status(code, reason, message=None):
    def check(body):
        assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
        assert body["code"] == code and body["reason"] == reason, body
        if message is not None:
            assert body["message"] == message, body["message"]
        return body
    return check


JOBS = f"/apis/kubeflow.org/v2beta1/namespaces/{NS}/mpijobs"


def test_undecodable_and_contradicting_bodies_are_400(server):
    for body, message in [
        (b"{not json", None),
        (b"[1, 2]", "the request body must be a JSON object, got list"),
        (mpijob("x", ["true"], version="v1"), "the API version in the data (kubeflow.org/v1) does not match the "
                                              "expected API version (kubeflow.org/v2beta1)"),
        ({**mpijob("x", ["true"]), "kind": "PyTorchJob"},
         "the kind in the data (PyTorchJob) does not match the expected kind (MPIJob)"),
        ({**mpijob("x", ["true"]), "metadata": {"name": "x", "namespace": "other"}},
         "the namespace of the provided object does not match the namespace sent on the request"),
    ]:
        status, answer = request(server, "POST", JOBS, body)
        assert status == 400
        _status(400, "BadRequest", message)(answer)
    status, answer = request(server, "GET", f"{JOBS}/x")
    assert status == 404  # nothing was stored by any of them


def test_invalid_spec_is_422_with_one_cause_per_problem(server):
    body = mpijob("bad", ["true"])
    body["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] = -1
    body["spec"]["slotPerWorker"] = 2
    body["metadata"]["labels"] = {"ok": "not ok!"}
    status, answer = request(server, "POST", JOBS, body)
    assert status == 422
    _status(422, "Invalid")(answer)
    assert answer["message"].startswith('MPIJob.kubeflow.org "bad" is invalid: [')
    fields = {c["field"]: c for c in answer["details"]["causes"]}
    # the unknown field is pruned with a warning (fieldValidation Warn, the default), the rest refused
    assert set(fields) == {"spec.mpiReplicaSpecs.Worker.replicas", "metadata.labels"}
    assert "-1" in fields["spec.mpiReplicaSpecs.Worker.replicas"]["message"]
    assert answer["details"] == {**answer["details"], "name": "bad", "group": "kubeflow.org", "kind": "MPIJob"}
    assert request(server, "GET", f"{JOBS}/bad")[0] == 404


def test_not_found_already_exists_and_unknown_paths(server):
    status, answer = request(server, "GET", f"{JOBS}/nope")
    _status(404, "NotFound", 'mpijobs.kubeflow.org "nope" not found')(answer)
    assert answer["details"] == {"name": "nope", "group": "kubeflow.org", "kind": "mpijobs"}
    for path in ("/apis/kubeflow.org/v9/namespaces/x/mpijobs", "/apis/example.com/v1/things", "/nothing/here",
                 f"{JOBS}/a/b"):
        status, answer = request(server, "GET", path)
        assert status == 404, path
        _status(404, "NotFound", "the server could not find the requested resource")(answer)
    assert request(server, "POST", JOBS, mpijob("twice", ["true"]))[0] == 201
    status, answer = request(server, "POST", JOBS, mpijob("twice", ["true"]))
    _status(409, "AlreadyExists", 'mpijobs.kubeflow.org "twice" already exists')(answer)
    assert answer["details"] == {"name": "twice", "group": "kubeflow.org", "kind": "mpijobs"}
    status, answer = request(server, "POST", f"{JOBS}/twice", mpijob("twice", ["true"]))
    _status(405, "MethodNotAllowed")(answer)
    status, answer = request(server, "PUT", f"{JOBS}/absent", {**mpijob("absent", ["true"]),
                                                                "metadata": {"name": "absent",
                                                                             "resourceVersion": "1"}})
    _status(404, "NotFound", 'mpijobs.kubeflow.org "absent" not found')(answer)


def test_replace_needs_a_resource_version_and_the_url_name(server):
    assert request(server, "POST", JOBS, mpijob("rv", ["true"]))[0] == 201
    status, answer = request(server, "PUT", f"{JOBS}/rv", mpijob("rv", ["true"]))
    _status(422, "Invalid")(answer)
    assert answer["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    status, answer = request(server, "PUT", f"{JOBS}/rv", {**mpijob("other", ["true"]),
                                                            "metadata": {"name": "other", "resourceVersion": "1"}})
    _status(400, "BadRequest", "the name of the object (other) does not match the name on the URL (rv)")(answer)


def test_generate_name_and_dry_run(server):
    body = mpijob("", ["true"])
    body["metadata"] = {"generateName": "gen-"}
    status, made = request(server, "POST", JOBS, body)
    assert status == 201 and re.fullmatch(r"gen-[bcdfghjklmnpqrstvwxz2456789]{5}", made["metadata"]["name"])
    status, dry = request(server, "POST", JOBS + "?dryRun=All&fieldManager=kubectl-create&fieldValidation=Strict",
                          mpijob("dry", ["true"]))
    assert status == 201 and dry["metadata"]["name"] == "dry"
    assert request(server, "GET", f"{JOBS}/dry")[0] == 404
    status, answer = request(server, "POST", JOBS + "?dryRun=Some", mpijob("dry", ["true"]))
    _status(400, "BadRequest")(answer)


def test_list_label_selector_limit_and_continue(server):
    ns = "listing"
    path = f"/apis/kubeflow.org/v2beta1/namespaces/{ns}/mpijobs"
    for i in range(5):
        body = mpijob(f"job-{i}", ["true"])
        body["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        assert request(server, "POST", path, body)[0] == 201
    api = client.CustomObjectsApi(server.client())
    even = api.list_namespaced_custom_object("kubeflow.org", "v2beta1", ns, "mpijobs", label_selector="parity=even")
    assert even["kind"] == "MPIJobList" and [o["metadata"]["name"] for o in even["items"]] == ["job-0", "job-2",
                                                                                              "job-4"]
    names, token, pages = [], None, 0
    while pages < 10:
        page = api.list_namespaced_custom_object("kubeflow.org", "v2beta1", ns, "mpijobs", limit=2,
                                                 _continue=token)
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
        pages += 1
        if not token:
            break
    assert names == [f"job-{i}" for i in range(5)] and pages == 3
    one = api.list_namespaced_custom_object("kubeflow.org", "v2beta1", ns, "mpijobs",
                                            field_selector="metadata.name=job-3")
    assert [o["metadata"]["name"] for o in one["items"]] == ["job-3"]
    status, answer = request(server, "GET", path + "?fieldSelector=spec.x%3Dy")
    _status(400, "BadRequest", "field label not supported: spec.x")(answer)
    status, answer = request(server, "GET", path + "?continue=garbage")
    _status(400, "BadRequest")(answer)
    everywhere = api.list_cluster_custom_object("kubeflow.org", "v2beta1", "mpijobs", label_selector="parity")
    assert {o["metadata"]["namespace"] for o in everywhere["items"]} == {ns}
    # the same objects at another served version: only apiVersion differs
    old = api.list_namespaced_custom_object("kubeflow.org", "v1", ns, "mpijobs")
    assert [o["apiVersion"] for o in old["items"]] == ["kubeflow.org/v1"] * 5


def test_merge_patch_and_json_patch(server):
    api = client.CustomObjectsApi(server.client())
    api.create_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs", mpijob("patched", ["true"]))
    merged = api.patch_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs", "patched",
                                                {"metadata": {"labels": {"team": "a"}}})
    assert merged["metadata"]["labels"] == {"team": "a"} and merged["metadata"]["generation"] == 1
    status, answer = request(server, "PATCH", f"{JOBS}/patched",
                             [{"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}}],
                             content_type="application/json-patch+json")
    assert status == 200 and answer["metadata"]["annotations"] == {"note": "x"}
    status, answer = request(server, "PATCH", f"{JOBS}/patched", {"spec": {"slotsPerWorker": 4}},
                             content_type="application/merge-patch+json")
    _status(422, "Invalid")(answer)
    status, answer = request(server, "PATCH", f"{JOBS}/patched", {"metadata": {}},
                             content_type="application/strategic-merge-patch+json")
    _status(415, "UnsupportedMediaType")(answer)


def test_status_subresource_takes_only_the_status(server):
    api = client.CustomObjectsApi(server.client())
    made = api.create_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs",
                                               mpijob("with-status", ["sleep", "30"], requests={"cpu": "1000"}))
    status, answer = request(server, "PATCH", f"{JOBS}/with-status/status",
                             {"status": {"startTime": "2026-01-02T03:04:05Z", "phase": "X"},
                              "spec": {"slotsPerWorker": 9}}, content_type="application/merge-patch+json")
    # status.phase is not in the v2beta1 CRD's status schema: pruned, with a warning (fieldValidation Warn)
    assert status == 200 and answer["status"]["startTime"] == "2026-01-02T03:04:05Z"
    assert "phase" not in answer["status"] and answer["spec"] == made["spec"]
    got = api.get_namespaced_custom_object_status("kubeflow.org", "v2beta1", NS, "mpijobs", "with-status")
    assert got["status"]["startTime"] == "2026-01-02T03:04:05Z"


def test_tokens_are_required(server):
    for token in (None, "not-a-token"):
        status, answer = request(server, "GET", JOBS, token=token)
        _status(401, "Unauthorized", "Unauthorized")(answer)
    assert request(server, "GET", "/version", token=None)[0] == 200


def test_delete_returns_a_success_status(server):
    api = client.CustomObjectsApi(server.client())
    made = api.create_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs", mpijob("gone", ["true"]))
    status, answer = request(server, "DELETE", f"{JOBS}/gone?propagationPolicy=Foreground")
    assert status == 200 and answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "details": {"name": "gone", "group": "kubeflow.org", "kind": "mpijobs",
                                                    "uid": made["metadata"]["uid"]}}
    status, answer = request(server, "DELETE", f"{JOBS}/gone")
    _status(404, "NotFound")(answer)
    api.create_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs", mpijob("gone2", ["true"]))
    status, answer = request(server, "DELETE", f"{JOBS}/gone2", {"propagationPolicy": "Sometimes"})
    _status(400, "BadRequest")(answer)
    deleted = api.delete_namespaced_custom_object("kubeflow.org", "v2beta1", NS, "mpijobs", "gone2",
                                                  propagation_policy="Background")
    assert deleted["status"] == "Success"


def test_discovery_documents(server):
    status, groups = request(server, "GET", "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name["kubeflow.org"]["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in by_name["kubeflow.org"]["versions"]] == ["v1", "v2beta1", "v1alpha2"]
    assert by_name["batch.tensorstack.dev"]["preferredVersion"]["version"] == "v1beta1"
    status, listing = request(server, "GET", "/apis/kubeflow.org/v1")
    names = {r["name"] for r in listing["resources"]}
    assert {"mpijobs", "mpijobs/status", "pytorchjobs", "pytorchjobs/status", "mxjobs", "mxjobs/status"} <= names
    status, core = request(server, "GET", "/api/v1")
    assert {"pods", "pods/log", "namespaces"} <= {r["name"] for r in core["resources"]}
    status, root = request(server, "GET", "/openapi/v3")
    assert "apis/kubeflow.org/v2beta1" in root["paths"]
    status, doc = request(server, "GET", root["paths"]["apis/kubeflow.org/v2beta1"]["serverRelativeURL"])
    post = doc["paths"]["/apis/kubeflow.org/v2beta1/namespaces/{namespace}/mpijobs"]["post"]
    assert "fieldValidation" in [p["name"] for p in post["parameters"]]
    assert request(server, "GET", "/api/v1/namespaces/default")[1]["status"]["phase"] == "Active"
    assert request(server, "GET", "/api/v1/namespaces/anything")[0] == 404


def test_policy_allows_and_forbids_in_kube_apiserver_words(fresh_server, tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('alice-token,alice,1001,"team-a"\nbob-token,bob,1002\n')
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n- group: team-a\n  namespaces: [team-a]\n  verbs: [get, list, watch, create]\n")
    server = fresh_server("--token-auth-file", str(tokens), "--policy", str(policy))
    path = "/apis/kubeflow.org/v2beta1/namespaces/team-a/mpijobs"
    assert request(server, "POST", path, mpijob("mine", ["true"]), token="alice-token")[0] == 201
    assert request(server, "GET", path + "/mine", token="alice-token")[0] == 200
    status, answer = request(server, "DELETE", path + "/mine", token="alice-token")
    _status(403, "Forbidden", 'mpijobs.kubeflow.org "mine" is forbidden: User "alice" cannot delete resource '
                              '"mpijobs" in API group "kubeflow.org" in the namespace "team-a"')(answer)
    status, answer = request(server, "POST", "/apis/kubeflow.org/v2beta1/namespaces/team-b/mpijobs",
                             mpijob("theirs", ["true"]), token="alice-token")
    _status(403, "Forbidden", 'mpijobs.kubeflow.org is forbidden: User "alice" cannot create resource "mpijobs" in '
                              'API group "kubeflow.org" in the namespace "team-b"')(answer)
    status, answer = request(server, "GET", path, token="bob-token")
    _status(403, "Forbidden")(answer)
    status, answer = request(server, "PATCH", path + "/mine/status", {"status": {"phase": "Forged"}},
                             token="alice-token", content_type="application/merge-patch+json")
    _status(403, "Forbidden", 'mpijobs.kubeflow.org "mine" is forbidden: User "alice" cannot patch resource '
                              '"mpijobs/status" in API group "kubeflow.org" in the namespace "team-a"')(answer)
    status, answer = request(server, "GET", "/apis/kubeflow.org/v2beta1/mpijobs", token="alice-token")
    _status(403, "Forbidden", 'mpijobs.kubeflow.org is forbidden: User "alice" cannot list resource "mpijobs" in '
                              'API group "kubeflow.org" at the cluster scope')(answer)
    assert request(server, "DELETE", path + "/mine")[0] == 200  # the admin may


def test_watch_from_a_compacted_version_is_410_expired(fresh_server):
    server = fresh_server("--watch-history", "256", "--capacity", "cpu=0")  # nothing starts: only our writes count
    path = "/apis/kubeflow.org/v2beta1/namespaces/hist/mpijobs"
    status, made = request(server, "POST", path, mpijob("busy", ["true"], requests={"cpu": "1"}))
    assert request(server, "POST", path, mpijob("busy-2", ["true"], requests={"cpu": "1"}))[0] == 201
    first = int(made["metadata"]["resourceVersion"])
    status, page = request(server, "GET", path + "?limit=1")
    token = page["metadata"]["continue"]
    for i in range(600):
        status, _ = request(server, "PATCH", path + "/busy", {"metadata": {"labels": {"n": str(i)}}},
                            content_type="application/merge-patch+json")
        assert status == 200
    from rawhttp import watch_lines

    events = watch_lines(server, f"{path}?watch=true&resourceVersion={first}&timeoutSeconds=2")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    _status(410, "Expired")(events[0]["object"])
    assert events[0]["object"]["message"].startswith(f"too old resource version: {first} (")
    status, answer = request(server, "GET", f"{path}?limit=1&continue={token}")
    _status(410, "Expired")(answer)
    recent = watch_lines(server, f"{path}?watch=true&resourceVersion={first + 590}&timeoutSeconds=1")
    assert [e["type"] for e in recent] == ["MODIFIED"] * (len(recent)) and len(recent) >= 10


def test_a_failing_write_is_500_and_leaves_nothing_half_written(fresh_server):
    import os
    import sqlite3

    server = fresh_server()
    path = "/apis/kubeflow.org/v2beta1/namespaces/faults/mpijobs"
    db = sqlite3.connect(os.path.join(server.data_dir, "store.db"), isolation_level=None)
    try:
        # the fault strikes after the object's row is written, inside the same transaction
        db.execute("CREATE TRIGGER fault BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        status, answer = request(server, "POST", path, mpijob("half", ["true"]))
        _status(500, "InternalError")(answer)
        assert "disk on fire" in answer["message"]
        assert request(server, "GET", path + "/half")[0] == 404
        assert db.execute("SELECT COUNT(*) FROM objects WHERE name='half'").fetchone()[0] == 0
        db.execute("DROP TRIGGER fault")
    finally:
        db.close()
    assert request(server, "POST", path, mpijob("half", ["true"]))[0] == 201

"""Server-side apply's field ownership (server/api/apply.py), pure: field sets under a schema with lists of type
map and set, merging, conflicts, removal of what an applier stops applying, and updates taking fields."""

import pytest

from ringrun.server.api import apply

SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "containers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                       "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                  "image": {"type": "string"},
                                                                  "args": {"type": "array"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "replicas": {"type": "integer"}, "extra": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "status": {"type": "object"}}}
NOW = "2026-12-04T00:00:00Z"


def obj(spec, labels=None, managed=None):
    meta = {"name": "x", "namespace": "ns", "uid": "u"}
    if labels is not None:
        meta["labels"] = labels
    if managed is not None:
        meta["managedFields"] = managed
    return {"apiVersion": "g/v1", "kind": "K", "metadata": meta, "spec": spec, "status": {"s": 1}}


def test_field_sets_follow_the_list_types():
    paths = apply.fields(obj({"containers": [{"name": "a", "image": "i", "args": ["1"]}], "tags": ["t"],
                              "replicas": 2}, labels={"l": "v"}), SCHEMA)
    key = 'k:{"name":"a"}'
    assert paths == {("f:spec", "f:containers", key, "."), ("f:spec", "f:containers", key, "f:name"),
                     ("f:spec", "f:containers", key, "f:image"), ("f:spec", "f:containers", key, "f:args"),
                     ("f:spec", "f:tags", 'v:"t"'), ("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:l")}
    assert apply.from_fields_v1(apply.to_fields_v1(paths)) == paths


def test_an_apply_owns_what_it_applied_and_removes_what_it_stopped_applying():
    first, managed = apply.apply(None, obj({"replicas": 1, "extra": {"a": "1", "b": "2"}}), "me", False, SCHEMA,
                                 "g/v1", NOW)
    assert [(e["manager"], e["operation"]) for e in managed] == [("me", "Apply")]
    live = {**first, "metadata": {**first["metadata"], "managedFields": managed}}
    second, managed = apply.apply(live, obj({"replicas": 1, "extra": {"a": "1"}}), "me", False, SCHEMA, "g/v1", NOW)
    assert second["spec"] == {"replicas": 1, "extra": {"a": "1"}}
    assert managed[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}, "f:extra": {"f:a": {}}}}


def test_another_managers_field_is_a_conflict_unless_forced_and_equal_values_are_shared():
    live = obj({"replicas": 1, "containers": [{"name": "a", "image": "old"}]})
    live["metadata"]["managedFields"] = apply.track_update(None, live, "editor", SCHEMA, "g/v1", NOW)
    with pytest.raises(apply.Conflicts) as raised:
        apply.apply(live, obj({"replicas": 3, "containers": [{"name": "a", "image": "old"}]}), "me", False, SCHEMA,
                    "g/v1", NOW)
    assert [(m, apply.show_path(p)) for m, _, p in raised.value.found] == [("editor", ".spec.replicas")]
    forced, managed = apply.apply(live, obj({"replicas": 3, "containers": [{"name": "a", "image": "old"}]}), "me",
                                  True, SCHEMA, "g/v1", NOW)
    assert forced["spec"]["replicas"] == 3 and forced["status"] == {"s": 1}
    owners = {e["manager"]: e["fieldsV1"] for e in managed}
    assert "f:replicas" not in owners["editor"]["f:spec"] and "f:replicas" in owners["me"]["f:spec"]
    # the same image: both own it, no conflict; the list item merged by its key, the other item kept
    merged, _ = apply.apply({**forced, "metadata": {**forced["metadata"], "managedFields": managed}},
                            obj({"containers": [{"name": "b", "image": "new"}]}), "other", False, SCHEMA, "g/v1", NOW)
    assert merged["spec"]["containers"] == [{"name": "a", "image": "old"}, {"name": "b", "image": "new"}]


def test_an_update_takes_the_fields_it_changes_and_a_no_op_keeps_the_times():
    live = obj({"replicas": 1, "tags": ["a"]})
    live["metadata"]["managedFields"] = apply.track_update(None, live, "creator", SCHEMA, "g/v1", NOW)
    changed = obj({"replicas": 2, "tags": ["a"]}, managed=live["metadata"]["managedFields"])
    managed = apply.track_update(live, changed, "editor", SCHEMA, "g/v1", "later")
    owners = {e["manager"]: (apply.from_fields_v1(e["fieldsV1"]), e["time"]) for e in managed}
    assert owners["editor"] == ({("f:spec", "f:replicas")}, "later")
    assert owners["creator"] == ({("f:spec", "f:tags", 'v:"a"')}, "later")
    after = {**changed, "metadata": {**changed["metadata"], "managedFields": managed}}
    assert apply.track_update(after, after, "editor", SCHEMA, "g/v1", "even later") == managed

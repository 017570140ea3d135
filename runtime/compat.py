"""Where a published example and the seed's API page write a field differently, both are accepted: the object is
rewritten to the form the vendored CRD schema has, and a warning names the field. Pure; the argument is never
changed.

- Kubeflow `kubeflow.org/v1` (MXJob, PyTorchJob, MPIJob): the seed's MXJob writes `spec.cleanPodPolicy` beside the
  replica specs, as tf-operator's first v1 API did; training-operator's CRDs have the run-policy fields under
  `spec.runPolicy` (MPIJob v1 also keeps `spec.cleanPodPolicy`). A field the CRD lacks at `spec` is moved there.
- Kubeflow MXJob: `label` on a replica spec (mxnet-operator's, in training-operator's MXTune example) becomes the
  template's `tuner-server-key` annotation, which is where training-operator reads it.
- TensorStack MPIJob: the seed's API page says `runPolicy.cleanUpWorkers` is a string (all, unfinished, none); the
  API reference and the user manual write a boolean ("if worker replicas should be cleaned up after they finish").
"""

import copy
from dataclasses import dataclass, field

from .kinds.common import POLICY_VALUES as RUN_POLICY_FIELDS


@dataclass
class Normalized:
    """An object in its schema's form. `moved`: (path now, path as written) of every field that moved, so that a
    problem found at the new place is reported where the user wrote it."""

    obj: dict
    warnings: list = field(default_factory=list)  # [(field path, message)]
    errors: list = field(default_factory=list)  # [(field path, message)]
    moved: list = field(default_factory=list)  # [(path now, path written)]

    def written(self, path):
        """Where the field now at `path` (or its parent) was written."""
        for now, before in self.moved:
            if path == now or path.startswith((now + ".", now + "[")):
                return before + path[len(now):]
        return path


def normalize(obj, api_version, kind, spec_fields):
    """`obj` (a mapping) -> Normalized. `spec_fields`: the names the kind's CRD schema has under `spec` (None where
    it keeps unknown fields). `obj` is never changed; the result holds it as it is when nothing needs rewriting."""
    result = _without_nulls(obj) if _has_null(obj) else None
    spec = (result or obj).get("spec")
    if not isinstance(spec, dict):
        return Normalized(result or obj)
    warnings, errors, moved = [], [], []
    inline = [f for f in RUN_POLICY_FIELDS if f in spec and spec_fields is not None and f not in spec_fields]
    policy = spec.get("runPolicy", {})
    if api_version == "kubeflow.org/v1" and inline and isinstance(policy, dict):
        result = result or copy.deepcopy(obj)
        new_policy = result["spec"].setdefault("runPolicy", {})
        for name in inline:
            value = result["spec"].pop(name)
            if name not in policy:
                new_policy[name] = value
                moved.append((f"spec.runPolicy.{name}", f"spec.{name}"))
                warnings.append((f"spec.{name}", f"read as spec.runPolicy.{name} (where the {kind} CRD has it)"))
            elif policy[name] == value:
                warnings.append((f"spec.{name}", f"also given as spec.runPolicy.{name}, with the same value; that one "
                                                 "is read"))
            else:
                errors.append((f"spec.{name}", f"conflicts with spec.runPolicy.{name} ({value!r} vs {policy[name]!r})"))
    if kind == "MXJob":
        result = _tuner_labels(obj, result, warnings)
    if kind == "MPIJob" and api_version == "batch.tensorstack.dev/v1beta1":
        policy = spec.get("runPolicy")
        value = policy.get("cleanUpWorkers") if isinstance(policy, dict) else None
        if isinstance(value, bool):
            result = result or copy.deepcopy(obj)
            word = "all" if value else "none"
            result["spec"]["runPolicy"]["cleanUpWorkers"] = word
            warnings.append(("spec.runPolicy.cleanUpWorkers",
                             f"{str(value).lower()} read as {word!r} (the seed's API takes all, unfinished or none)"))
    return Normalized(result if result is not None else obj, warnings, errors, moved)


def _has_null(value):
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _without_nulls(value):
    """A copy without the mapping entries whose value is null: kube-apiserver prunes them before it validates a
    custom resource (none of these CRDs marks a field nullable), so `command:` with nothing after it means no
    command, as in mpi-operator's pi-intel example."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _tuner_labels(obj, result, warnings):
    """mxnet-operator's ReplicaSpec had `label` (the TVM tuner server's key); training-operator's CRD dropped it and
    reads the `tuner-server-key` annotation of the template instead (pkg/controller.v1/mxnet/mxnet.go), while its
    MXTune example still writes `label`. Moved there unless the annotation is set."""
    replicas = obj["spec"].get("mxReplicaSpecs")
    if not isinstance(replicas, dict):
        return result
    for name, replica in replicas.items():
        if not isinstance(replica, dict) or not isinstance(replica.get("label"), str):
            continue
        result = result or copy.deepcopy(obj)
        moved = result["spec"]["mxReplicaSpecs"][name]
        label = moved.pop("label")
        template = moved.get("template")
        path = f"spec.mxReplicaSpecs.{name}.label"
        meta = template.setdefault("metadata", {}) if isinstance(template, dict) else None
        annotations = meta.setdefault("annotations", {}) if isinstance(meta, dict) else None
        if not isinstance(annotations, dict):
            warnings.append((path, "ignored: the replica has no template whose annotations could hold it"))
        elif "tuner-server-key" in annotations:
            warnings.append((path, "ignored: the template's tuner-server-key annotation is set and wins"))
        else:
            annotations["tuner-server-key"] = label
            warnings.append((path, f"read as template.metadata.annotations['tuner-server-key'] = {label!r} (where "
                                   "training-operator reads it; its MXJob CRD has no `label`)"))
    return result

"""Where a published example and the seed's API page write a field differently, both are accepted: the object is
rewritten to the form the vendored CRD schema has, and a warning names the field. Pure; the argument is never
changed. Null values are dropped here, for every kind; the rewrites of one kind are its own (runtime/kinds/, listed
by its JobKind's `rewrites`):

- Kubeflow `kubeflow.org/v1` (MXJob, PyTorchJob, MPIJob): the seed's MXJob writes `spec.cleanPodPolicy` beside the
  replica specs, as tf-operator's first v1 API did; training-operator's CRDs have the run-policy fields under
  `spec.runPolicy` (MPIJob v1 also keeps `spec.cleanPodPolicy`). A field the CRD lacks at `spec` is moved there.
- Kubeflow MXJob: `label` on a replica spec (mxnet-operator's, in training-operator's MXTune example) becomes the
  template's `tuner-server-key` annotation, which is where training-operator reads it.
- TensorStack MPIJob: the seed's API page says `runPolicy.cleanUpWorkers` is a string (all, unfinished, none); the
  API reference and the user manual write a boolean ("if worker replicas should be cleaned up after they finish").
"""

from dataclasses import dataclass, field


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
    it keeps unknown fields). The rewrites are the kind's (its JobKind's `rewrites`); each gets `obj`, the copy made
    so far (or None), `spec_fields` and the Normalized whose lists it adds to, and returns the copy (or None when it
    changed nothing). `obj` is never changed; the result holds it as it is when nothing needs rewriting."""
    from .kinds import registry  # its kinds name the rewrites

    result = _without_nulls(obj) if _has_null(obj) else None
    spec = (result or obj).get("spec")
    if not isinstance(spec, dict):
        return Normalized(result or obj)
    out = Normalized(obj)
    job_kind = registry.kind_of(api_version, kind)
    for rewrite in job_kind.rewrites(api_version.rpartition("/")[2]) if job_kind else ():
        result = rewrite(obj, result, spec_fields, out)
    out.obj = result if result is not None else obj
    return out


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

"""Job spec text -> JobSpec objects. YAML or JSON; one object, a list of objects, a `kind: List`, or several YAML
documents. Every problem in every object is reported at once, in one SpecError."""

import json

from .errors import SpecError
from .fields import Field, Problems, show
from .kinds import kubeflow_mpi, mxnet, pytorch, tensorstack

# (apiVersion, kind) -> parser(doc: Field, api_version, kind) -> JobSpec | None
KINDS = {
    ("kubeflow.org/v1alpha2", "MPIJob"): kubeflow_mpi.parse,
    ("kubeflow.org/v1", "MPIJob"): kubeflow_mpi.parse,
    ("kubeflow.org/v2beta1", "MPIJob"): kubeflow_mpi.parse,
    ("kubeflow.org/v1", "PyTorchJob"): pytorch.parse,
    ("kubeflow.org/v1", "MXJob"): mxnet.parse,
    ("batch.tensorstack.dev/v1beta1", "MPIJob"): tensorstack.parse,
}


def load_documents(text, source="<spec>"):
    """Parse YAML or JSON text into a list of objects (dicts are not checked here). Raises SpecError."""
    import yaml

    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # JSON first: PyYAML rejects some valid JSON (tabs used for indentation).
        try:
            data = [json.loads(text)]
        except ValueError:
            data = None
        if data is not None:
            return _flatten(data, source)
    try:
        data = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError([f"{source}: not valid YAML or JSON{where}: {problem}"]) from None
    except (ValueError, RecursionError) as exc:
        raise SpecError([f"{source}: not valid YAML or JSON: {exc}"]) from None
    if not data:
        raise SpecError([f"{source}: holds no job spec (the file is empty)"])
    return _flatten(data, source)


def _flatten(documents, source):
    objects = []
    for document in documents:
        if isinstance(document, list):
            objects.extend(document)
        elif isinstance(document, dict) and document.get("kind") == "List" and isinstance(document.get("items"), list):
            objects.extend(document["items"])
        else:
            objects.append(document)
    if not objects:
        raise SpecError([f"{source}: holds no job spec (an empty list)"])
    return objects


def parse_object(obj, path=""):
    """One object -> (JobSpec or None, Problems)."""
    problems = Problems()
    doc = Field(obj, path, problems)
    if not isinstance(obj, dict):
        doc.error(f"a job spec must be a mapping with apiVersion, kind, metadata and spec; got {show(obj)}")
        return None, problems
    api_version = doc["apiVersion"].string(required=True)
    kind = doc["kind"].string(required=True)
    if api_version is None or kind is None:
        return None, problems
    parser = KINDS.get((api_version, kind))
    if parser is None:
        accepted = "; ".join(f"{a} {k}" for a, k in KINDS)
        doc["kind"].error(f"unsupported apiVersion/kind {api_version!r} {kind!r} (accepted: {accepted})")
        return None, problems
    doc.unknown({"apiVersion", "kind", "metadata", "spec", "status"})
    job = parser(doc, api_version, kind)
    return (job if not problems else None), problems


def parse_jobs(text, source="<spec>"):
    """Spec text -> tuple of JobSpec. Raises SpecError listing every problem of every object."""
    return parse_objects(load_documents(text, source))


def parse_objects(objects):
    """Loaded spec objects -> tuple of JobSpec. Raises SpecError listing every problem of every object."""
    jobs, lines = [], []
    for i, obj in enumerate(objects):
        job, problems = parse_object(obj, f"[{i}]" if len(objects) > 1 else "")
        lines.extend(problems.lines)
        if job is not None:
            jobs.append(job)
    names = [(j.namespace, j.name) for j in jobs]
    for ns, name in sorted({n for n in names if names.count(n) > 1}):
        lines.append(f"metadata.name: job {ns}/{name} is defined more than once")
    if lines:
        raise SpecError(lines)
    return tuple(jobs)


def select_job(jobs, name=None):
    """The job called `name`, or the only one. Raises SpecError naming the choices."""
    if name is not None:
        for job in jobs:
            if job.name == name:
                return job
        raise SpecError([f"--job: no job named {name!r} (jobs: {', '.join(j.name for j in jobs)})"])
    if len(jobs) > 1:
        raise SpecError([f"--job: the file holds {len(jobs)} jobs ({', '.join(j.name for j in jobs)}); name one"])
    return jobs[0]

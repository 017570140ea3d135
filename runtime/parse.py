"""Job spec text -> JobSpec objects. YAML or JSON; one object, a list of objects, a `kind: List`, or several YAML
documents. Every problem in every object is reported at once, in one SpecError."""

import dataclasses
import json

from . import compat, schema
from .errors import SpecError
from .fields import Field, Problems, show
from .kinds import common, registry

# (apiVersion, kind) -> its JobKind (the parser: parse(doc: Field, api_version, kind) -> JobSpec | None)
KINDS = registry.by_api_version()


# Bounds on untrusted input. 3 MiB is kube-apiserver's limit on a request body; no real job spec nests 100 deep.
MAX_SPEC_BYTES = 3 * 1024 * 1024
MAX_DEPTH = 100


def _strict_loader():
    """A SafeLoader that refuses aliases (a "billion laughs" document expands exponentially) and duplicate keys
    (silently last-wins otherwise; kubectl's strict decoding rejects them too)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not accepted in job specs",
                                                  event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                            key_node.start_mark)
                seen.add(key) if isinstance(key, (str, int, float, bool)) else None
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"duplicate key {duplicates[0]!r}")
    return dict(pairs)


def nesting(value):
    """How deep `value` nests (an iterative walk: a deep document cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def load_documents(text, source="<spec>"):
    """Parse YAML or JSON text into a list of objects (dicts are not checked here). Raises SpecError.

    Bounded: at most MAX_SPEC_BYTES, nesting at most MAX_DEPTH, no YAML aliases, no duplicate keys.
    """
    import yaml

    if len(text) > MAX_SPEC_BYTES:
        raise SpecError([f"{source}: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB; no job spec is that big"])
    stripped = text.lstrip()
    data = None
    if stripped.startswith(("{", "[")):
        # JSON first: PyYAML rejects some valid JSON (tabs used for indentation).
        try:
            data = [json.loads(text, object_pairs_hook=_no_duplicates)]
        except RecursionError:
            raise SpecError([f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
        except ValueError as exc:
            if str(exc).startswith("duplicate key"):
                raise SpecError([f"{source}: not valid JSON: {exc}"]) from None
    if data is None:
        try:
            data = [d for d in yaml.load_all(text, Loader=_strict_loader()) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SpecError([f"{source}: not valid YAML or JSON{where}: {problem}"]) from None
        except RecursionError:
            raise SpecError([f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
        except ValueError as exc:
            raise SpecError([f"{source}: not valid YAML or JSON: {exc}"]) from None
    if any(nesting(d) > MAX_DEPTH for d in data):
        raise SpecError([f"{source}: nested deeper than {MAX_DEPTH} levels"])
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


FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def parse_object(obj, path="", field_validation="Strict", runtimes=None):
    """One object -> (JobSpec or None, Problems). The object is first checked against its kind's CRD schema
    (runtime/schema.py, after the rewrites of runtime/compat.py), then read by the kind's parser; every problem of
    both is reported, once. The JobSpec's `warnings` name each field that was rewritten.

    field_validation: what an unknown field is, as kube-apiserver's parameter of that name says for a structural
    CRD: Strict (the default here) a problem; Warn dropped with a warning; Ignore dropped silently."""
    pruned = ()
    if field_validation != "Strict":
        obj, pruned = prune_unknown(obj)
    problems = Problems()
    doc = Field(obj, path, problems)
    if not isinstance(obj, dict):
        doc.error(f"a job spec must be a mapping with apiVersion, kind, metadata and spec; got {show(obj)}")
        return None, problems
    api_version = doc["apiVersion"].string(required=True)
    kind = doc["kind"].string(required=True)
    if api_version is None or kind is None:
        return None, problems
    job_kind = KINDS.get((api_version, kind))
    if job_kind is None:
        accepted = "; ".join(f"{a} {k}" for a, k in KINDS)
        doc["kind"].error(f"unsupported apiVersion/kind {api_version!r} {kind!r} (accepted: {accepted})")
        return None, problems
    normalized = compat.normalize(obj, api_version, kind, schema.spec_fields(api_version, kind))
    structural = schema.problems(normalized.obj, api_version, kind)
    own = Problems()
    fields = Field(normalized.obj, "", own)
    job = (job_kind.parse(fields, api_version, kind, runtimes) if job_kind.uses_runtimes
           else job_kind.parse(fields, api_version, kind))
    if job is not None:
        common.check_host_names(fields, job, job_kind.pod_name)
    # Where the schema already refused a field, ringrun's own check of it (or of what is under it) says nothing new.
    refused = [p for p, _ in structural]
    for where, message in structural + normalized.errors:
        problems.add(_at(path, normalized.written(where)), message)
    for where, message in own.items:
        if not any(where == r or where.startswith((r + ".", r + "[")) for r in refused):
            problems.add(_at(path, normalized.written(where)), message)
    if problems:
        return None, problems
    if not job.main_container:  # the parser left the kind's default
        job = dataclasses.replace(job, main_container=job_kind.main_container)
    warnings = tuple(f"{_at(path, p)}: {m}" for p, m in normalized.warnings)
    if field_validation == "Warn":
        warnings += tuple(f"{_at(path, p)}: unknown field, dropped (field validation Warn)" for p in pruned)
    return dataclasses.replace(job, warnings=warnings), problems


def _at(base, path):
    """`path` inside the object found at `base` (its place in a list of objects, or "")."""
    return f"{base}.{path}" if base else path


def parse_jobs(text, source="<spec>", field_validation="Strict", runtimes=None):
    """Spec text -> tuple of JobSpec. Raises SpecError listing every problem of every object."""
    return parse_objects(load_documents(text, source), field_validation, runtimes)


def prune_unknown(obj):
    """(obj without the fields its kind's CRD schema would prune, [their paths]), as kube-apiserver prunes a custom
    resource under fieldValidation Warn or Ignore; a field that runtime/compat.py reads in another place is kept.
    An object of no served kind comes back as it is."""
    if not isinstance(obj, dict) or (obj.get("apiVersion"), obj.get("kind")) not in schema.SCHEMA_FILES:
        return obj, []
    api_version, kind = obj["apiVersion"], obj["kind"]
    normalized = compat.normalize(obj, api_version, kind, schema.spec_fields(api_version, kind))
    _, unknown = schema.prune(normalized.obj, api_version, kind)
    if not unknown:  # every field known, or read in another place by compat: the object as it is
        return obj, []
    still = {normalized.written(path) for path in unknown}
    allowed = {path for path in schema.prune(obj, api_version, kind)[1] if path not in still}
    return schema.prune(obj, api_version, kind, keep=frozenset(allowed))


def parse_objects(objects, field_validation="Strict", runtimes=None):
    """Loaded spec objects -> tuple of JobSpec. Raises SpecError listing every problem of every object.

    Trainer's runtimes among `objects` (TrainingRuntime, ClusterTrainingRuntime) are not jobs: a TrainJob finds
    the one it names among them first, then through `runtimes` (see `parse_object`)."""
    kept, runtimes, lines = _runtimes_of(objects, runtimes)
    jobs = []
    for i, obj in enumerate(objects):
        if i in kept and len(kept) < len(objects):  # a runtime, not a job (a file of runtimes alone: refused)
            continue
        job, problems = parse_object(obj, f"[{i}]" if len(objects) > 1 else "", field_validation, runtimes)
        lines.extend(problems.lines)
        if job is not None:
            jobs.append(job)
    names = [(j.namespace, j.name) for j in jobs]
    for ns, name in sorted({n for n in names if names.count(n) > 1}):
        lines.append(f"metadata.name: job {ns}/{name} is defined more than once")
    if lines:
        raise SpecError(lines)
    return tuple(jobs)


def kept_problems(stored, obj, old=None):
    """[(path, message)] of an object of a kept kind (`stored`, a registry.StoredKind): its CRD schema's (after the
    compat rewrites), then, when the schema passes, its kind's check of it with the schema's defaults; `old`: the
    stored object of an update."""
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    structural = schema.problems(compat.normalize(body, obj["apiVersion"], stored.kind, None).obj, obj["apiVersion"],
                                 stored.kind)
    return structural or stored.check(schema.with_defaults(obj, obj["apiVersion"], stored.kind), old)


def _runtimes_of(objects, fallback):
    """({index of each of Trainer's runtimes among `objects`}, a runtimes lookup finding those first, then through
    `fallback`, the runtimes' problems: their CRD schema's and their kind's check, as the server checks them)."""
    fallback = fallback or (lambda kind, namespace, name: None)  # a TrainJob in a file is never checked alone
    found, indices, lines = {}, set(), []
    for i, obj in enumerate(objects):
        stored = registry.stored_kind_of(obj["apiVersion"], obj.get("kind")) if isinstance(obj, dict) and \
            isinstance(obj.get("apiVersion"), str) else None
        if stored is None:
            continue
        indices.add(i)
        lines += [f"{_at(f'[{i}]' if len(objects) > 1 else '', path)}: {message}"
                  for path, message in kept_problems(stored, obj)]
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        namespace = "" if obj.get("kind") == "ClusterTrainingRuntime" else meta.get("namespace") or "default"
        if isinstance(namespace, str) and isinstance(meta.get("name"), str):
            found[(obj.get("kind"), namespace, meta["name"])] = obj

    def runtimes(kind, namespace, name):
        if not all(isinstance(v, str) for v in (kind, namespace, name)):
            return None
        runtime = found.get((kind, "" if kind == "ClusterTrainingRuntime" else namespace, name))
        return fallback(kind, namespace, name) if runtime is None else runtime
    return indices, runtimes, lines


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

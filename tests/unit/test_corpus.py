"""The operators' own published job specs (tests/fixtures/corpus, vendored with their provenance) validate and plan
every replica. The count is printed at the end of the pytest run."""

import json

import pytest

from conftest import FIXTURES
from ringrun.runtime import Context, build_plan, parse_jobs, resolve_identity

CORPUS = FIXTURES / "corpus"
INDEX = json.loads((CORPUS / "index.json").read_text())
FILES = [entry["file"] for entry in INDEX["files"]]
PLANNED = set()


def test_the_index_lists_every_file_and_each_is_there():
    on_disk = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.yaml"))
    assert sorted(FILES) == on_disk
    programs = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".py", ".cc"))
    assert programs == sorted(entry["file"] for entry in INDEX["support"])
    assert len(FILES) >= 39
    kinds = {(o["apiVersion"], o["kind"]) for e in INDEX["files"] for o in e["objects"]}
    assert kinds == {("kubeflow.org/v1alpha2", "MPIJob"), ("kubeflow.org/v1", "MPIJob"),
                     ("kubeflow.org/v2beta1", "MPIJob"), ("kubeflow.org/v1", "PyTorchJob"),
                     ("kubeflow.org/v1", "MXJob"), ("batch.tensorstack.dev/v1beta1", "MPIJob")}


@pytest.mark.parametrize("name", FILES)
def test_published_example_validates_and_plans_every_replica(name):
    entry = next(e for e in INDEX["files"] if e["file"] == name)
    jobs = parse_jobs((CORPUS / name).read_text(), name)
    assert [(j.api_version, j.kind, j.name) for j in jobs] == \
        [(o["apiVersion"], o["kind"], o["name"]) for o in entry["objects"]]
    planned = 0
    for job in jobs:
        for replica in job.replicas:
            for index in range(replica.replicas):
                identity = resolve_identity(job, role=replica.role, index=index, env={})
                plan = build_plan(job, identity, Context(run_dir="/run/ringrun/corpus", environ={}))
                assert (plan.role, plan.index, plan.kind) == (replica.role, index, job.kind)
                # no command in the spec: the pod runs its image's own (`ringrun entrypoint -- CMD`)
                container = replica.containers[0]
                if plan.mode == "normal" and job.framework != "mpi" and (container.command or container.args):
                    assert plan.argv
                planned += 1
    assert planned == sum(r.replicas for j in jobs for r in j.replicas)
    PLANNED.add(name)


def test_the_seed_and_the_manual_disagree_and_both_are_accepted():
    """TensorStack's user manual writes runPolicy.cleanUpWorkers as a boolean, the seed as a string."""
    name = "t9k+user-docs/5e5ad83/docs/module/workflow/workflow/workflowtemplate-1.yaml"
    (job,) = parse_jobs((CORPUS / name).read_text())
    assert job.run_policy.clean_pod_policy == "All"  # cleanUpWorkers all
    assert job.warnings == ("spec.runPolicy.cleanUpWorkers: true read as 'all' (the seed's API takes all, "
                            "unfinished or none)",)
    assert job.mpi.slots_per_worker == 3  # worker.processesPerWorker

"""Write runtime/schemas/*.json: the job CRDs' openAPIV3Schema, taken from the operators' repositories at pinned tags.

    python scripts/vendor_schemas.py --mpi-operator DIR --training-operator DIR --trainer DIR

Each DIR is a git repository (a bare mirror is enough) holding the tags named in SOURCES. The schemas are stored as
they are in the CRDs, less their `description` texts (about four fifths of the bytes, never used for validation),
with the source repository, tag, commit and path beside them. TensorStack publishes no CRD: its schema is written
here from its API reference and the seed (see tensorstack_schema), around the PodTemplateSpec schema of the
training-operator CRD it is vendored with.
"""

import argparse
import copy
import json
import pathlib
import subprocess

import yaml

OUT = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "schemas"

# file name -> (repository key, GitHub name, tag, CRD path, served version)
SOURCES = {
    "kubeflow.org-v1alpha2-mpijob": ("mpi", "kubeflow/mpi-operator", "v0.3.0", "deploy/v2beta1/mpi-operator.yaml",
                                     "v1alpha2"),
    "kubeflow.org-v1-mpijob": ("training", "kubeflow/training-operator", "v1.9.0",
                               "manifests/base/crds/kubeflow.org_mpijobs.yaml", "v1"),
    # The snapshot's newest commit is release v0.8.2 ("Prepare v0.8.2"); the tag itself is not in the mirror.
    "kubeflow.org-v2beta1-mpijob": ("mpi", "kubeflow/mpi-operator", "caa3c47", "manifests/base/kubeflow.org_mpijobs.yaml",
                                    "v2beta1"),
    "kubeflow.org-v1-pytorchjob": ("training", "kubeflow/training-operator", "v1.9.0",
                                   "manifests/base/crds/kubeflow.org_pytorchjobs.yaml", "v1"),
    # MXJob left training-operator after v1.8 (trainer#1996): v1.8.1 is the last release that ships it.
    "kubeflow.org-v1-mxjob": ("training", "kubeflow/training-operator", "v1.8.1",
                              "manifests/base/crds/kubeflow.org_mxjobs.yaml", "v1"),
    # Kubeflow Trainer v2 at v2.3.0: the release kubeflow==0.5.0 (kubeflow-trainer-api>=2.3.0,<2.4) is made for
    "trainer.kubeflow.org-v1alpha1-trainjob": ("trainer", "kubeflow/trainer", "v2.3.0",
                                               "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml", "v1alpha1"),
    "trainer.kubeflow.org-v1alpha1-trainingruntime": (
        "trainer", "kubeflow/trainer", "v2.3.0", "manifests/base/crds/trainer.kubeflow.org_trainingruntimes.yaml",
        "v1alpha1"),
    "trainer.kubeflow.org-v1alpha1-clustertrainingruntime": (
        "trainer", "kubeflow/trainer", "v2.3.0",
        "manifests/base/crds/trainer.kubeflow.org_clustertrainingruntimes.yaml", "v1alpha1"),
}
TAG_NAMES = {"caa3c47": "v0.8.2"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def strip_descriptions(node):
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def crd_schema(repo, tag, path, version):
    for document in yaml.safe_load_all(git(repo, "show", f"{tag}:{path}")):
        if not document or document.get("kind") != "CustomResourceDefinition":
            continue
        for served in document["spec"].get("versions", []):
            if served["name"] == version:
                return served["schema"]["openAPIV3Schema"]
    raise SystemExit(f"{path}@{tag}: no CRD serving {version}")


def pod_template_schema(pytorch_schema):
    replica = pytorch_schema["properties"]["spec"]["properties"]["pytorchReplicaSpecs"]["additionalProperties"]
    return copy.deepcopy(replica["properties"]["template"])


def tensorstack_schema(template):
    """batch.tensorstack.dev/v1beta1 MPIJob, field by field from t9k/user-docs 5e5ad835
    docs/reference/api/crd/mpijob.md and the seed's API page; fields only the user manual's example uses
    (docs/module/workflow/workflow/workflowtemplate.md: worker.processesPerWorker, worker.processRecovery) are
    included so that example is accepted. cleanUpWorkers: the reference says boolean, the seed a string
    (all|unfinished|none): both are accepted (the parser normalizes a boolean, with a warning)."""
    strings = {"type": "array", "items": {"type": "string"}}
    replica_mode = {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string"}, "skipInitContainer": {"type": "boolean"}, "command": strings}}
    resume = copy.deepcopy(replica_mode)
    resume["properties"]["args"] = strings
    spec = {"type": "object", "required": ["worker"], "properties": {
        "worker": {"type": "object", "required": ["cmd"], "properties": {
            "replicas": {"type": "integer", "format": "int32"},
            "processesPerWorker": {"type": "integer", "format": "int32"},
            "processRecovery": {"type": "object", "properties": {
                "enable": {"type": "boolean"}, "limit": {"type": "integer", "format": "int32"}}},
            "extraMPIArgs": strings,
            "cmd": strings,
            "template": template}},
        "mca": {"type": "object", "additionalProperties": {"type": "string"}},
        "ssh": {"type": "object", "properties": {"sshAuthMountPath": {"type": "string"},
                                                 "sshdPath": {"type": "string"}}},
        "runPolicy": {"type": "object", "properties": {
            "cleanUpWorkers": {"anyOf": [{"type": "boolean"}, {"type": "string",
                                                               "enum": ["all", "unfinished", "none"]}]}}},
        "runMode": {"type": "object", "properties": {
            "debug": {"type": "object", "properties": {"enable": {"type": "boolean"},
                                                       "replicaSpecs": {"type": "array", "items": replica_mode}}},
            "pause": {"type": "object", "properties": {"enable": {"type": "boolean"},
                                                       "resumeSpecs": {"type": "array", "items": resume}}}}},
        "mpiHome": {"type": "string"},
        "scheduler": {"type": "object", "properties": {"t9kScheduler": {
            "type": "object", "required": ["queue"], "properties": {
                "queue": {"type": "string"}, "priority": {"type": "integer", "format": "int32"}}}}},
    }}
    return {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": spec, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mpi-operator", required=True, type=pathlib.Path)
    parser.add_argument("--training-operator", required=True, type=pathlib.Path)
    parser.add_argument("--trainer", required=True, type=pathlib.Path)
    args = parser.parse_args()
    repos = {"mpi": args.mpi_operator, "training": args.training_operator, "trainer": args.trainer}
    OUT.mkdir(exist_ok=True)
    schemas = {}
    for name, (key, github, tag, path, version) in SOURCES.items():
        commit = git(repos[key], "rev-parse", f"{tag}^{{commit}}").strip()
        schemas[name] = crd_schema(repos[key], tag, path, version)
        source = {"repo": github, "tag": TAG_NAMES.get(tag, tag), "commit": commit, "path": path,
                  "version": version}
        write(name, source, schemas[name])
    template = pod_template_schema(schemas["kubeflow.org-v1-pytorchjob"])
    source = {"repo": "t9k/user-docs", "tag": None, "commit": "5e5ad835e585d528b4babb78b879e1a53e796744",
              "path": "docs/reference/api/crd/mpijob.md (+ the seed's API page; PodTemplateSpec from "
                      + SOURCES["kubeflow.org-v1-pytorchjob"][3] + " at training-operator v1.9.0)",
              "version": "v1beta1"}
    write("batch.tensorstack.dev-v1beta1-mpijob", source, tensorstack_schema(template))


def write(name, source, schema):
    document = {"source": source, "openAPIV3Schema": strip_descriptions(schema)}
    (OUT / f"{name}.json").write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{name}.json: {source['repo']} {source['tag']} {source['path']}")


if __name__ == "__main__":
    main()

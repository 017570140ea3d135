"""docs/conventions.md's environment tables are tests: each job in a table's YAML block is planned replica by replica,
and every column must equal that replica's planned environment exactly. Every row cites a tag or says why ringrun
differs."""

import re

import pytest
import yaml

from conftest import ROOT
from ringrun.runtime import Context, Identity, build_plan
from ringrun.runtime.parse import parse_objects

DOC = (ROOT / "docs" / "conventions.md").read_text()
RUN_DIR = "/run/ringrun/job"
TAG = re.compile(r"\bv\d+\.\d+\.\d+\b")


def tables():
    """[(job object, header cells, rows of cells)] of every `<!-- env-table -->` in the document."""
    found = []
    for part in DOC.split("<!-- env-table -->")[1:]:
        block = re.search(r"```yaml\n(.*?)```", part, re.S).group(1)
        lines = part[part.index("```", part.index("```yaml") + 3) + 3:].strip().splitlines()
        rows = []
        for line in lines:
            if not line.startswith("|"):
                break
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        found.append((yaml.safe_load(block), rows[0], [r for r in rows[2:]]))
    return found


TABLES = tables()


def test_the_document_has_a_table_per_kind():
    kinds = sorted({(obj["kind"], obj["apiVersion"]) for obj, _, _ in TABLES})
    assert kinds == [("MPIJob", "batch.tensorstack.dev/v1beta1"), ("MPIJob", "kubeflow.org/v2beta1"),
                     ("MXJob", "kubeflow.org/v1"), ("PyTorchJob", "kubeflow.org/v1")]
    assert len(TABLES) == 7


def _value(cell):
    if cell == "—":
        return None
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1]


@pytest.mark.parametrize("number", range(len(TABLES)))
def test_each_column_is_the_planned_environment_exactly(number):
    obj, header, rows = TABLES[number]
    (job,) = parse_objects([obj])
    assert header[0] == "variable" and header[-1] == "source"
    for column, replica in enumerate(header[1:-1], start=1):
        role, _, index = replica.partition("-")
        plan = build_plan(job, Identity(role, int(index or 0), "doc"), Context(run_dir=RUN_DIR, ssh_port=22))
        table = {_value(row[0]): _value(row[column]) for row in rows}
        assert {k: v for k, v in table.items() if v is not None} == dict(plan.env), replica


@pytest.mark.parametrize("number", range(len(TABLES)))
def test_every_row_cites_a_tag_or_says_why_ringrun_differs(number):
    _, header, rows = TABLES[number]
    for row in rows:
        assert len(row) == len(header), row
        source = row[-1]
        assert TAG.search(source) or source.startswith("ringrun"), row[0]


def test_every_row_of_every_sourced_table_cites_a_tag():
    """Not only the environment: every table of the page with a `source` column."""
    checked = 0
    for table in re.findall(r"((?:^\|.*\|\n)+)", DOC, re.M):
        rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in table.splitlines()]
        if rows[0][-1] != "source":
            continue
        for row in rows[2:]:
            source = row[-1]
            assert TAG.search(source) or source.startswith("ringrun") or "seed" in source or "5e5ad83" in source, row
            checked += 1
    assert checked >= 60

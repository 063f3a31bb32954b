"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel, as a reader would run it.

nbclient starts an IPython kernel from this environment, executes the code cells in order and fails on the first
cell that raises, naming it. Notebooks are stored without outputs (checked here too, so diffs stay readable).
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {"quickstart", "weekly_review", "cost_breakdown", "maturity_assessment", "labeling_analysis"}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not stored, f"{path.name}: cells {stored} were saved with outputs; clear them before committing"
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        raise AssertionError(f"{path.name} failed:\n{exc}") from None
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count for c in ran), f"{path.name}: not every code cell ran"


def test_the_documented_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED, f"missing: {sorted(EXPECTED - {p.stem for p in NOTEBOOKS})}"

"""Execute every jupytext notebook under research/ top to bottom; any cell error fails the suite."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (REPO / "research").glob("*.py") if p.read_text().startswith("# ---\n# jupyter:"))
TIME_LIMIT_SECS = 240  # the slowest notebook runs in ~1 min on 2 cores; its kernel start is included


def test_research_has_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["funding_carry.py"]


@pytest.mark.slow
@pytest.mark.timeout(TIME_LIMIT_SECS + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, shared_data: Path) -> None:
    notebook = jupytext.read(path)
    # The kernel is this interpreter (ipykernel's native "python3" spec), so it sees the venv's packages.
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=TIME_LIMIT_SECS,
        resources={"metadata": {"path": str(REPO)}},  # the working directory: the repo root is importable
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []

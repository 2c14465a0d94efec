"""Execute every jupytext notebook under research/ top to bottom, as Jupyter would; any cell error fails."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (REPO / "research").glob("*.py") if p.read_text().startswith("# ---\n# jupyter:"))
TIME_LIMIT_SECS = 240  # the slowest notebook runs in ~1 min on 2 cores; its kernel start is included


def test_research_has_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["funding_carry.py", "liquidations.py", "universe_notebook.py"]


@pytest.mark.slow
@pytest.mark.timeout(TIME_LIMIT_SECS + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, shared_data: Path) -> None:
    notebook = jupytext.read(path)
    # As JupyterLab starts it: this venv's "python3" kernel with the notebook's folder as working directory
    # and no PYTHONPATH, so the project is importable only because `make setup` installed it.
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=TIME_LIMIT_SECS,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"})
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []

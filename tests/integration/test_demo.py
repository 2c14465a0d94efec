"""``python -m engine.demo`` (``make backtest``): the carry strategies trade on the synthetic store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import demo


def test_demo_runs_both_carry_strategies_with_fills_and_prints_their_tearsheets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = demo.main(["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog"), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    tearsheets = [Path(line.split("tearsheet: ", 1)[1]) for line in printed.splitlines() if "tearsheet: " in line]
    assert len(tearsheets) == len(demo.DEFAULT_CONFIGS)
    stats = {}
    for report in tearsheets:
        assert report.is_file()
        run = json.loads((report.parent / "stats.json").read_text())
        stats[run["name"]] = run
    assert set(stats) == {
        "demo-synthetic-carry-spot-perp",
        "demo-synthetic-carry-cross-venue",
        "demo-synthetic-funding-short",
    }
    assert all(run["fills"] > 0 for run in stats.values())

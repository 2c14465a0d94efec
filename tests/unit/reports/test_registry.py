"""The run registry: list, show, diff, rebuild (a deleted registry is rebuilt equal from the folders)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from reports import registry
from tests.unit.reports.seed import T0, seed_runs, write_run


def test_register_run_adds_to_an_existing_registry_and_a_missing_one_is_built_on_query(tmp_path: Path) -> None:
    first = write_run(tmp_path, "abc", pnl_total="12.345")
    assert registry.register_run(first) == tmp_path / "registry.duckdb"
    assert not registry.registry_file(tmp_path).exists()  # a plain CLI run leaves only its folder
    rows = registry.list_runs(tmp_path)  # built from the folders on first use
    assert [(r["run_id"], r["status"], r["pnl_total"]) for r in rows] == [("abc", "ok", Decimal("12.345"))]
    registry.register_run(write_run(tmp_path, "def"))
    assert {r["run_id"] for r in registry.list_runs(tmp_path)} == {"abc", "def"}


def test_paper_session_registers_with_the_root_of_its_cumulative_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "first")
    registry.rebuild(runs)
    cumulative = write_run(runs / "paper", "h1", environment="paper")
    session = write_run(runs / "paper" / "h1", "session-1", environment="paper")
    assert registry.register_run(session) == runs / "registry.duckdb"
    assert registry.register_run(cumulative) == runs / "registry.duckdb"
    assert {r["run_id"] for r in registry.list_runs(runs)} == {"first", "paper/h1", "paper/h1/session-1"}
    assert [r["run_id"] for r in registry.list_runs(runs, environment="paper")] == ["paper/h1", "paper/h1/session-1"]


def test_list_is_newest_first_and_filters(tmp_path: Path) -> None:
    write_run(tmp_path, "old", finished=T0)
    write_run(tmp_path, "new", finished=T0 + timedelta(hours=1), status="failed")
    registry.rebuild(tmp_path)
    assert [r["run_id"] for r in registry.list_runs(tmp_path)] == ["new", "old"]
    assert [r["run_id"] for r in registry.list_runs(tmp_path, status="failed")] == ["new"]


def test_failed_run_reads_no_statistics(tmp_path: Path) -> None:
    write_run(tmp_path, "bad", status="failed")
    registry.rebuild(tmp_path)
    row = registry.show(tmp_path, "bad")
    assert row["pnl_total"] is None
    assert row["error"] == "EngineRunError (exit 8): boom"


def test_show_by_prefix_of_config_hash_and_ambiguity(tmp_path: Path) -> None:
    write_run(tmp_path, "run-a", params={"notional": "1"})
    write_run(tmp_path, "run-b", params={"notional": "2"})
    registry.rebuild(tmp_path)
    row = registry.show(tmp_path, "run-a")
    assert row["config"]["strategy"]["params"]["notional"] == "1"
    assert registry.show(tmp_path, row["config_hash"][:6])["run_id"] == "run-a"
    with pytest.raises(registry.UnknownRunError, match="2 do"):
        registry.show(tmp_path, "run-")
    with pytest.raises(registry.UnknownRunError, match="no run matches 'zzz'"):
        registry.show(tmp_path, "zzz")


def test_diff_names_config_code_data_and_stat_changes(tmp_path: Path) -> None:
    write_run(tmp_path, "a", params={"notional": "1"}, files={"venues.json": "x", "data/bars/X/1.parquet": "old"})
    write_run(
        tmp_path,
        "b",
        params={"notional": "2"},
        describe="v2",
        pnl_total="90.5",
        files={"venues.json": "x", "data/bars/X/1.parquet": "new", "data/bars/Y/1.parquet": "y"},
    )
    registry.rebuild(tmp_path)
    change = registry.diff(tmp_path, "a", "b")
    assert change["config"] == {"strategy.params.notional": {"a": "1", "b": "2"}}
    assert change["code"]["describe"] == {"a": "v1", "b": "v2"}
    assert change["data"] == {
        "same": False,
        "added": ["data/bars/Y/1.parquet"],
        "removed": [],
        "changed": ["data/bars/X/1.parquet"],
    }
    assert change["stats"]["pnl_total"]["change"] == "-10.000000000000000000"
    assert not change["same_inputs"]


def test_rebuild_equals_the_registry_built_run_by_run(tmp_path: Path) -> None:
    registry.rebuild(tmp_path)  # an empty registry: the runs below register one by one
    folders = seed_runs(tmp_path, 40)
    for folder in folders:
        registry.register_run(folder)
    original = registry.all_rows(tmp_path)
    registry.registry_file(tmp_path).unlink()
    assert registry.rebuild(tmp_path) == 40
    assert registry.all_rows(tmp_path) == original


def test_cli_list_show_diff_rebuild_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path, "a")
    write_run(tmp_path, "b", pnl_total="1")
    assert registry.main(["--root", str(tmp_path), "rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": 2}
    assert registry.main(["--root", str(tmp_path), "list", "--json"]) == 0
    assert {r["run_id"] for r in json.loads(capsys.readouterr().out)} == {"a", "b"}
    assert registry.main(["--root", str(tmp_path), "show", "a"]) == 0
    assert "pnl_total: 100.50" in capsys.readouterr().out
    assert registry.main(["--root", str(tmp_path), "diff", "a", "b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["pnl_total"]["b"] == "1.000000000000000000"


def test_cli_without_registry_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert registry.main(["--root", str(tmp_path), "list"]) == 3
    assert "there are none" in capsys.readouterr().err


def test_ledger_sql_reads_every_run_parquet_in_place(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        run_dir = write_run(tmp_path, folder)
        pl.DataFrame({"x": [1, 2]}).write_parquet(run_dir / "equity.parquet")
    registry.rebuild(tmp_path)
    sql = f"SELECT run_id, sum(x) AS total FROM ({registry.ledger_sql(tmp_path, 'equity')}) GROUP BY run_id ORDER BY 1"  # noqa: S608 - our own SQL
    assert duckdb.sql(sql).fetchall() == [("a", 3), ("b", 3)]

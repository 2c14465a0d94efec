"""``python -m engine.backtest``: exit codes, messages, artefacts and byte-identical re-runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.exit_codes import ExitCode
from engine.backtest.__main__ import main
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LEDGERS = ("orders", "fills", "positions", "account", "funding", "equity")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ("binance", "BTC-USDT-PERP")
    closes = [f"{42000 + 7 * (i % 5) - 3 * (i % 3)}.0" for i in range(48)]
    return build_catalog(
        tmp_path_factory.mktemp("cli"),
        bars={key: hourly_bars(T0, closes)},
        marks={key: hourly_bars(T0, closes)},
        funding={
            key: ("8h", [(T0.replace(day=1 + h // 24, hour=h % 24), f"0.000{h // 8}") for h in (8, 16, 24, 32, 40)])
        },
    )


def _config(tmp_path: Path, catalog: Path, *, extra: str = "", strategy: str = "") -> Path:
    strategy = strategy or (
        '[strategy]\npath = "strategies.demo:FundingShort"\n[strategy.params]\n'
        'instrument_ids = ["binance:BTC-USDT-PERP"]\nnotional = "10000"\nenter_rate = "0.0001"\nexit_rate = "0.00005"\n'
    )
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
name = "cli"
start = 2024-01-01T01:00:00Z
end = 2024-01-03T00:00:00Z
{extra}
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
leverage = 2
{strategy}
"""
    )
    return path


def test_run_writes_artefacts_and_prints_summary(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(_config(tmp_path, catalog)), "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())  # beside registry.duckdb
    assert f"artefacts: {run_dir}" in out
    for name in (*LEDGERS, "config"):
        assert (run_dir / f"{name}.{'json' if name == 'config' else 'parquet'}").exists()
    stats = json.loads((run_dir / "stats.json").read_text())
    assert Decimal(stats["pnl_total"]) == sum(Decimal(stats[k]) for k in ("pnl_price", "pnl_funding", "pnl_fees"))
    assert stats["fills"] > 0
    assert stats["funding_settlements"] > 0
    html = (run_dir / "report.html").read_text()
    assert "plotly" in html
    assert "<script src=" not in html  # the plotly bundle is inlined: the page opens offline
    funding = pl.read_parquet(run_dir / "funding.parquet")
    assert funding.columns == [
        "ts",
        "venue",
        "instrument_id",
        "position_id",
        "position_size",
        "mark_price",
        "rate",
        "amount",
        "currency",
    ]


def test_rerun_gives_byte_identical_stats_and_ledgers(tmp_path: Path, catalog: Path) -> None:
    strategy = (
        '[strategy]\npath = "strategies.demo:EmaCross"\n[strategy.params]\n'
        'instrument_id = "binance:BTC-USDT-PERP"\nbar_spec = "1-HOUR-LAST-EXTERNAL"\n'
        'fast_period = 2\nslow_period = 3\ntrade_size = "0.01"\n'
    )
    config = _config(tmp_path, catalog, strategy=strategy)
    first, second = tmp_path / "a", tmp_path / "b"
    assert main([str(config), "--out", str(first)]) == 0
    assert main([str(config), "--out", str(second)]) == 0
    (run_a,), (run_b,) = ([p for p in folder.iterdir() if p.is_dir()] for folder in (first, second))
    assert run_a.name == run_b.name
    # Closed NETTING cycles are snapshots whose ids Nautilus makes random: the ledger must not.
    positions = pl.read_parquet(run_a / "positions.parquet")
    assert positions["is_snapshot"].sum() >= 2
    for name in ("stats.json", "config.json", *(f"{n}.parquet" for n in LEDGERS)):
        assert (run_a / name).read_bytes() == (run_b / name).read_bytes(), name


def test_two_configs_run_in_one_call(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _config(tmp_path, catalog)
    second = tmp_path / "second.toml"
    second.write_text(first.read_text().replace('name = "cli"', 'name = "cli-2"'))
    assert main([str(first), str(second), "--out", str(tmp_path / "runs")]) == 0
    assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir()]) == 2
    assert "cli-2" in capsys.readouterr().out


def test_bad_config_exits_2(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_config(tmp_path, catalog, extra="colour = 1"))]) == 2
    assert "unknown field `colour`" in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.toml")]) == 2
    assert "expected a readable config file" in capsys.readouterr().err


def test_range_outside_the_data_exits_3_naming_instrument_and_range(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(_config(tmp_path, catalog)), "--start", "2023-12-01T00:00:00Z", "--out", str(tmp_path / "runs")])
    assert code == 3
    err = capsys.readouterr().err
    assert "binance:BTC-USDT-PERP (BTCUSDT-PERP.BINANCE)" in err
    assert "from 2023-12-01T00:00:00+00:00 to 2024-01-03T00:00:00+00:00" in err
    assert "covers only 2024-01-01T01:00:00+00:00 to 2024-01-02T23:00:00+00:00" in err


def test_missing_catalog_exits_3(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_config(tmp_path, catalog)), "--catalog", str(tmp_path / "nowhere")]) == 3
    assert "expected a Nautilus catalog" in capsys.readouterr().err


def test_strategy_failure_exits_run_failed(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = (
        '[strategy]\npath = "tests.kit.engine:Failing"\n[strategy.params]\ninstrument_id = "BTCUSDT-PERP.BINANCE"\n'
    )
    assert (
        main([str(_config(tmp_path, catalog, strategy=strategy)), "--out", str(tmp_path / "runs")])
        == ExitCode.RUN_FAILED
    )
    assert "on_bar raised RuntimeError: strategy bug" in capsys.readouterr().err
    # Only the manifest of the failure (for the run registry): no artefacts.
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert [p.name for p in run_dir.iterdir()] == ["run.json"]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "failed"
    assert "strategy bug" in manifest["error"]


def test_tearsheet_sharpe_equals_the_headline_sharpe(tmp_path: Path, catalog: Path) -> None:
    # One definition: stats.json's Sharpe (engine.results.stats) and the tearsheet's (empyrical on the
    # same daily series, the first day against the starting capital) must agree.
    from reports.tearsheet import daily_equity, daily_returns, return_stats

    assert main([str(_config(tmp_path, catalog)), "--out", str(tmp_path / "runs")]) == 0
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    stats = json.loads((run_dir / "stats.json").read_text())
    capital = sum((Decimal(v) for v in stats["starting_balances"].values()), Decimal(0))
    returns = daily_returns(daily_equity(pl.read_parquet(run_dir / "equity.parquet"), capital), capital)
    assert stats["sharpe"] is not None
    assert round(return_stats(returns)["sharpe"] or 0.0, 6) == pytest.approx(stats["sharpe"], abs=1e-6)

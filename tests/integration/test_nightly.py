"""Nights on a synthetic store: a new day of ETH bars re-runs exactly the ETH run; nothing changed re-runs nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from datasets.store import Store
from datasets.synthetic import SyntheticSpec, _synthetic_source, synthetic_frames, write_synthetic_store
from reports import nightly, registry

DAYS = 10
RUN_CONFIG = """
name = "{name}"
start = 2024-01-02T00:00:00Z
end = {end}

[data]
catalog = "unused"

[[venues]]
name = "binance"
instruments = ["{symbol}"]
starting_balances = ["100000 USDT"]
leverage = 2

[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:{symbol}"]
notional = "20000"
enter_rate = "0.00003"
exit_rate = "0"
"""


def write_config(folder: Path, name: str, symbol: str, end: str = "2024-01-09T00:00:00Z") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(RUN_CONFIG.format(name=name, symbol=symbol, end=end))
    return path


def add_a_day_of_eth_bars(store: Store) -> None:
    frames = synthetic_frames(SyntheticSpec(hours=24 * (DAYS + 1)))
    last_stored = SyntheticSpec().start + timedelta(hours=24 * DAYS - 1)
    new = frames["ohlcv"].filter(pl.col("symbol").str.starts_with("ETH") & (pl.col("ts") > last_stored))
    assert new.height > 0
    store.write("ohlcv", new, _synthetic_source("synthetic://test?eth-day"))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Store, dict[str, Path]]:
    monkeypatch.setenv("CARRYLAB_CODE_VERSION", "test-v1")  # the shared work tree's diff changes under us
    store = Store(tmp_path / "store")
    write_synthetic_store(store, SyntheticSpec(hours=24 * DAYS))
    configs = {
        "btc": write_config(tmp_path, "btc-short", "BTC-USDT-PERP"),
        "eth": write_config(tmp_path, "eth-short", "ETH-USDT-PERP"),
    }
    return tmp_path, store, configs


def nightly_config(tmp_path: Path, configs: list[Path]) -> Path:
    backtests = "".join(f'\n[[backtests]]\nconfig = "{c}"\n' for c in configs)
    path = tmp_path / "nightly.toml"
    path.write_text(
        f'store = "{tmp_path / "store"}"\ncatalog = "{tmp_path / "catalog"}"\nruns_dir = "{tmp_path / "runs"}"\n'
        f'reports_dir = "{tmp_path / "runs" / "nightly"}"\npaper_dirs = []\nparallel = 2\nupdate = false\n{backtests}'
    )
    return path


def night(config: Path, day: int) -> tuple[int, dict[str, object]]:
    code = nightly.main(["--config", str(config), "--date", f"2024-06-{day:02d}"])
    folder = Path(nightly.load_nightly_config(config).reports_dir) / f"2024-06-{day:02d}"
    return code, json.loads((folder / "night.json").read_text())


def test_two_nights_with_new_eth_bars_then_an_unchanged_night(setup: tuple[Path, Store, dict[str, Path]]) -> None:
    tmp_path, store, configs = setup
    config = nightly_config(tmp_path, [configs["btc"], configs["eth"]])
    runs = tmp_path / "runs"

    code, first = night(config, 1)
    assert code == 0
    assert [(r["config"], r["action"]) for r in first["runs"]] == [
        (str(configs["btc"]), "ran"),
        (str(configs["eth"]), "ran"),
    ]

    add_a_day_of_eth_bars(store)
    code, second = night(config, 2)
    assert code == 0
    by_config = {Path(r["config"]).stem: r for r in second["runs"]}
    assert by_config["btc-short"]["action"] == "reused"
    assert by_config["eth-short"]["action"] == "ran"
    assert {name for name, r in by_config.items() if r["data_changed"]} == {"eth-short"}
    change = registry.diff(runs, first["runs"][1]["run_id"], by_config["eth-short"]["run_id"])
    assert change["config"] == {}
    assert change["code"] == {}
    touched = change["data"]["added"] + change["data"]["removed"] + change["data"]["changed"]
    assert touched  # the file names carry the range: a longer series is a new file
    assert all("ETHUSDT-PERP.BINANCE" in p for p in touched)
    page = (runs / "nightly" / "2024-06-02" / "report.html").read_text()
    assert "Change since the previous night" in page
    assert "changed (" in page

    code, third = night(config, 3)
    assert code == 0
    assert [r["action"] for r in third["runs"]] == ["reused", "reused"]

    rows = registry.all_rows(runs)
    registry.registry_file(runs).unlink()
    registry.rebuild(runs)
    assert registry.all_rows(runs) == rows


def test_a_failing_run_exits_8_and_marks_the_report_partial(
    setup: tuple[Path, Store, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, _, configs = setup
    broken = write_config(tmp_path, "eth-beyond-data", "ETH-USDT-PERP", end="2024-03-01T00:00:00Z")
    config = nightly_config(tmp_path, [configs["btc"], broken])
    code, record = night(config, 4)
    assert code == nightly.EXIT_FAILED_RUN
    assert record["status"] == "partial"
    failed = [r for r in record["runs"] if r["status"] == "failed"]
    assert [r["name"] for r in failed] == ["eth-beyond-data"]
    assert "MissingDataError" in failed[0]["error"]
    assert "eth-beyond-data" in capsys.readouterr().err
    page = (tmp_path / "runs" / "nightly" / "2024-06-04" / "report.html").read_text()
    assert "PARTIAL" in page
    assert "eth-beyond-data" in page
    assert [r["status"] for r in registry.list_runs(tmp_path / "runs", status="failed")] == ["failed"]


def test_a_second_night_cannot_start_while_one_holds_the_lock(tmp_path: Path) -> None:
    with nightly.night_lock(tmp_path), pytest.raises(nightly.NightLockedError, match="is held"):
        nightly.run_night(nightly.NightlyConfig(reports_dir=str(tmp_path)), day=date(2024, 6, 1))

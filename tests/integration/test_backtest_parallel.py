"""``python -m engine.backtest A.toml B.toml --workers 2``, ``--ray``, a ``[[pairs]]`` config: serial runs' bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import ray  # a project dependency: a missing install fails here, never skips

from datasets.exit_codes import ExitCode
from engine.backtest.__main__ import main
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
# Every file of a run that holds results (run.json also records when the run started).
RESULT_FILES = ("stats.json", "config.json", "orders", "fills", "positions", "account", "funding", "equity")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Synthetic: 48 hourly closes wobbling around 42,000 (BTC) and 2,200 (ETH); BTC funding rising 0.0001
    # per settlement, ETH's up and down.
    btc, eth = ("binance", "BTC-USDT-PERP"), ("binance", "ETH-USDT-PERP")
    closes = {
        btc: [f"{42000 + 7 * (i % 5) - 3 * (i % 3)}.0" for i in range(48)],
        eth: [f"{2200 + (i % 7) - 2 * (i % 4)}.0" for i in range(48)],
    }
    settlements = [T0.replace(day=1 + h // 24, hour=h % 24) for h in (8, 16, 24, 32, 40)]
    rates = {btc: [f"0.000{h // 8}" for h in (8, 16, 24, 32, 40)], eth: ["0.0003", "0.0001", "0", "0.0004", "0.0002"]}
    return build_catalog(
        tmp_path_factory.mktemp("parallel"),
        bars={key: hourly_bars(T0, rows) for key, rows in closes.items()},
        marks={key: hourly_bars(T0, rows) for key, rows in closes.items()},
        funding={key: ("8h", list(zip(settlements, rates[key], strict=True))) for key in closes},
    )


def _configs(tmp_path: Path, catalog: Path) -> list[str]:
    # Two independent runs: FundingShort entering at different thresholds (so their ledgers differ).
    paths = []
    for name, enter in (("first", "0.0001"), ("second", "0.0002")):
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f"""
name = "{name}"
start = 2024-01-01T01:00:00Z
end = 2024-01-03T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
leverage = 2
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
notional = "10000"
enter_rate = "{enter}"
exit_rate = "0.00005"
"""
        )
        paths.append(str(path))
    return paths


def _results(out: Path) -> dict[str, bytes]:
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 2
    return {
        f"{run.name}/{name}": (run / (name if "." in name else f"{name}.parquet")).read_bytes()
        for run in runs
        for name in RESULT_FILES
    }


def test_two_workers_write_the_bytes_of_serial_runs(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = _configs(tmp_path, catalog)
    assert main([*configs, "--out", str(tmp_path / "serial"), "--workers", "1"]) == 0
    serial_out = capsys.readouterr().out
    assert main([*configs, "--out", str(tmp_path / "parallel"), "--workers", "2"]) == 0
    parallel_out = capsys.readouterr().out
    serial, parallel = _results(tmp_path / "serial"), _results(tmp_path / "parallel")
    assert serial.keys() == parallel.keys()
    for name, content in serial.items():
        assert parallel[name] == content, name
    # The two runs differ (else the comparison could not tell them apart), and print in config order.
    stats = sorted(v for k, v in serial.items() if k.endswith("stats.json"))
    assert stats[0] != stats[1]
    for out in (serial_out, parallel_out):
        assert out.index("first  [") < out.index("second  [")


def test_a_failing_config_does_not_stop_the_others_and_sets_the_exit_code(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "first" starts a month before the catalog's data: it fails with exit 3 inside its worker.
    configs = _configs(tmp_path, catalog)
    Path(configs[0]).write_text(Path(configs[0]).read_text().replace("2024-01-01T01:00:00Z", "2023-12-01T00:00:00Z"))
    code = main([*configs, "--out", str(tmp_path / "runs"), "--workers", "2"])
    assert code == ExitCode.BAD_INPUT
    captured = capsys.readouterr()
    assert "the catalog covers only" in captured.err
    assert "second  [" in captured.out


def _run_config(catalog: Path, *, name: str, instruments: str, params: str, pairs: str = "") -> str:
    return f"""
name = "{name}"
start = 2024-01-01T01:00:00Z
end = 2024-01-03T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = {instruments}
starting_balances = ["10000 USDT"]
leverage = 2
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
notional = "10000"
exit_rate = "0.00005"
{params}
{pairs}"""


def test_pairs_in_parallel_write_the_bytes_of_serial_runs_and_of_their_configs_by_hand(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One config listing two independent runs: BTC entering at 0.0001, ETH at 0.0002.
    pairs = tmp_path / "pairs.toml"
    pairs.write_text(
        _run_config(
            catalog,
            name="pairs",
            instruments='["BTC-USDT-PERP", "ETH-USDT-PERP"]',
            params='enter_rate = "0.0001"',
            pairs="""
[[pairs]]
name = "btc"
params = { instrument_ids = ["binance:BTC-USDT-PERP"] }
[[pairs]]
name = "eth"
params = { instrument_ids = ["binance:ETH-USDT-PERP"], enter_rate = "0.0002" }
""",
        )
    )
    by_hand = []
    for name, symbol, enter in (("btc", "BTC-USDT-PERP", "0.0001"), ("eth", "ETH-USDT-PERP", "0.0002")):
        path = tmp_path / f"{name}.toml"
        params = f'instrument_ids = ["binance:{symbol}"]\nenter_rate = "{enter}"'
        path.write_text(_run_config(catalog, name=f"pairs-{name}", instruments=f'["{symbol}"]', params=params))
        by_hand.append(str(path))
    assert main([str(pairs), "--out", str(tmp_path / "parallel"), "--workers", "2"]) == 0
    parallel_out = capsys.readouterr().out
    assert main([str(pairs), "--out", str(tmp_path / "serial"), "--workers", "1"]) == 0
    assert main([*by_hand, "--out", str(tmp_path / "by_hand"), "--workers", "1"]) == 0
    parallel = _results(tmp_path / "parallel")
    assert parallel == _results(tmp_path / "serial")
    assert parallel == _results(tmp_path / "by_hand")
    # Each run traded only its own perp on the funding (settlements 08:00, 16:00, 00:00, 08:00, 16:00; exit at
    # <= 0.00005): BTC (0.0001 .. 0.0005, enter at >= 0.0001) shorts at the first and holds: 1 fill. ETH
    # (0.0003, 0.0001, 0, 0.0004, 0.0002; enter at >= 0.0002) shorts, holds, exits at 0, shorts again: 3 fills.
    stats = {k.split("/")[0]: json.loads(v) for k, v in parallel.items() if k.endswith("stats.json")}
    assert sorted((s["name"], s["fills"]) for s in stats.values()) == [("pairs-btc", 1), ("pairs-eth", 3)]
    assert parallel_out.index("pairs-btc  [") < parallel_out.index("pairs-eth  [")


@pytest.fixture
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_tasks_write_the_bytes_of_serial_runs(tmp_path: Path, catalog: Path, local_ray: None) -> None:
    configs = _configs(tmp_path, catalog)
    assert main([*configs, "--out", str(tmp_path / "serial"), "--workers", "1"]) == 0
    assert main([*configs, "--out", str(tmp_path / "ray"), "--ray", "auto"]) == 0
    assert _results(tmp_path / "ray") == _results(tmp_path / "serial")

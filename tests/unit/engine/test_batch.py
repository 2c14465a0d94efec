"""``[[pairs]]``: a config listing independent runs expands into the configs one would write by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from datasets.exit_codes import ExitCode
from engine.backtest.__main__ import main
from engine.batch import load_runs
from engine.errors import ConfigError
from engine.loading import config_hash, load_config

# Spot-perp carry on two Binance pairs and one Bybit pair; no data is read (a config check needs none).
BASE = """
name = "carry"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "catalog"
[[venues]]
name = "binance"
instruments = ["BTC-USDT", "BTC-USDT-PERP", "ETH-USDT", "ETH-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 3
funding_interval = "8h"
[[venues]]
name = "bybit"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["50000 USDT"]
[risk.max_notional_per_order]
"binance:BTC-USDT" = 250000
"binance:ETH-USDT-PERP" = 90000
"bybit:BTC-USDT-PERP" = 70000
[live.connections.binance]
environment = "paper"
[live.connections.bybit]
environment = "paper"
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
notional = "40000"
entry_apr = "0.15"
[strategy.params.risk]
max_total_exposure_usd = 160000
max_instrument_exposure_usd = 80000
"""
PAIRS = """
[[pairs]]
name = "btc"
params = { spot_id = "binance:BTC-USDT", perp_id = "binance:BTC-USDT-PERP" }
[[pairs]]
name = "eth"
params = { spot_id = "binance:ETH-USDT", perp_id = "binance:ETH-USDT-PERP", notional = "20000" }
[[pairs]]
name = "bybit-btc"
[pairs.params]
spot_id = "bybit:BTC-USDT"
perp_id = "bybit:BTC-USDT-PERP"
risk = { max_instrument_exposure_usd = 60000 }
"""
# What one writes by hand for the third entry: only Bybit, its limit and connection, the params merged
# (the entry's risk table over the base's, key by key).
BYBIT_BY_HAND = """
name = "carry-bybit-btc"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "catalog"
[[venues]]
name = "bybit"
instruments = ["BTC-USDT", "BTC-USDT-PERP"]
starting_balances = ["50000 USDT"]
[risk.max_notional_per_order]
"bybit:BTC-USDT-PERP" = 70000
[live.connections.bybit]
environment = "paper"
[strategy]
path = "strategies.spot_perp_carry:SpotPerpCarry"
[strategy.params]
spot_id = "bybit:BTC-USDT"
perp_id = "bybit:BTC-USDT-PERP"
notional = "40000"
entry_apr = "0.15"
[strategy.params.risk]
max_total_exposure_usd = 160000
max_instrument_exposure_usd = 60000
"""


def _write(tmp_path: Path, text: str, name: str = "pairs.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_each_entry_is_the_base_with_its_params_and_only_its_instruments(tmp_path: Path) -> None:
    btc, eth, bybit = load_runs(_write(tmp_path, BASE + PAIRS))
    assert [run.name for run in (btc, eth, bybit)] == ["carry-btc", "carry-eth", "carry-bybit-btc"]
    # Bybit is left with no instrument of the BTC run: dropped, with its limit and connection.
    assert [(v.name, v.instruments) for v in btc.venues] == [("binance", ["BTC-USDT", "BTC-USDT-PERP"])]
    assert btc.risk.max_notional_per_order == {"binance:BTC-USDT": Decimal(250000)}
    assert btc.live is not None
    assert list(btc.live.connections) == ["binance"]
    assert btc.strategy.params["notional"] == "40000"  # shared from the base
    assert [(v.name, v.instruments) for v in eth.venues] == [("binance", ["ETH-USDT", "ETH-USDT-PERP"])]
    assert eth.risk.max_notional_per_order == {"binance:ETH-USDT-PERP": Decimal(90000)}
    assert eth.strategy.params["notional"] == "20000"  # the entry's value replaces the base's
    assert [(v.name, v.instruments) for v in bybit.venues] == [("bybit", ["BTC-USDT", "BTC-USDT-PERP"])]
    # A table merges key by key: the entry's exposure cap, the base's total cap.
    assert bybit.strategy.params["risk"] == {"max_total_exposure_usd": 160000, "max_instrument_exposure_usd": 60000}
    # Each run keeps its venue's full starting balance: its own account, no margin shared with the others.
    assert btc.venues[0].starting_balances == eth.venues[0].starting_balances == ["100000 USDT"]
    assert len({config_hash(run) for run in (btc, eth, bybit)}) == 3


def test_an_expanded_run_is_the_config_written_by_hand(tmp_path: Path) -> None:
    *_, bybit = load_runs(_write(tmp_path, BASE + PAIRS))
    by_hand = load_config(_write(tmp_path, BYBIT_BY_HAND, "by_hand.toml"))
    assert bybit == by_hand
    assert config_hash(bybit) == config_hash(by_hand)


def test_a_config_without_pairs_is_one_run_and_load_config_refuses_pairs(tmp_path: Path) -> None:
    single = _write(tmp_path, BYBIT_BY_HAND, "single.toml")
    assert load_runs(single) == [load_config(single)]
    with pytest.raises(ConfigError, match=r"pairs\.toml: lists \[\[pairs\]\] .* python -m engine\.backtest"):
        load_config(_write(tmp_path, BASE + PAIRS))


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            '[[pairs]]\nname = "btc"\nnotional = "1"\nparams = { spot_id = "binance:BTC-USDT" }\n',
            r"pairs\.toml: pairs\[0\] \('btc'\): Object contains unknown field `notional`",
        ),
        (
            PAIRS + '[[pairs]]\nname = "eth"\nparams = { spot_id = "binance:BTC-USDT", perp_id = "bybit:BTC-USDT" }\n',
            r"pairs\.toml: pairs\[3\] \('eth'\): name: expected each entry's name once, was 'eth' again; rename it",
        ),
        (
            '[[pairs]]\nname = "sol"\nparams = { spot_id = "binance:SOL-USDT", perp_id = "binance:BTC-USDT-PERP" }\n',
            r"pairs\.toml: pairs\[0\] \('sol'\): params\.spot_id: expected an instrument a venue lists .*"
            r"was 'binance:SOL-USDT'; add 'SOL-USDT' to venue 'binance''s instruments",
        ),
        (
            '[[pairs]]\nname = "btc"\nparams = { instrument_ids = ["binance:BTC-USDT-PERP"] }\n',
            r"pairs\.toml: pairs\[0\] \('btc'\): params\.instrument_ids: expected a parameter of "
            r"strategies\.spot_perp_carry:SpotPerpCarryConfig \(its keyword arguments\), was 'instrument_ids'; fix",
        ),
        (
            '[[pairs]]\nname = "low"\nparams = { entry_apr = "0.05" }\n',
            r"pairs\.toml: pairs\[0\] \('low'\): params: expected the merged strategy params to name the run's "
            r"instruments .* they name none",
        ),
        (
            '[[pairs]]\nname = "b tc"\nparams = { spot_id = "binance:BTC-USDT" }\n',
            r"pairs\.toml: pairs\[0\] \('b tc'\): name: expected letters, digits, '_', '\.' or '-'",
        ),
        ('[[pairs]]\nname = "btc"\nparams = {}\n', r"pairs\[0\] \('btc'\): params: expected the strategy params"),
        # Every run is checked as load_config checks one: here the strategy rejects the merged params.
        (
            '[[pairs]]\nname = "btc"\nparams = { spot_id = "binance:BTC-USDT" }\n',
            r"pairs\.toml: pairs\[0\] \('btc'\): strategy\.params: .*SpotPerpCarryConfig rejected the params",
        ),
    ],
    ids=["unknown-key", "duplicate-name", "unlisted-instrument", "not-a-param", "no-instrument", "bad-name",
         "empty-params", "run-check"],
)  # fmt: skip
def test_a_bad_entry_is_a_config_error_naming_file_entry_and_field(tmp_path: Path, pairs: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_runs(_write(tmp_path, BASE + pairs))


def test_an_empty_list_is_a_config_error(tmp_path: Path) -> None:
    # A top-level key goes before the first table (after it, TOML puts it in that table).
    with pytest.raises(ConfigError, match=r"pairs\.toml: pairs: expected one or more \[\[pairs\]\] tables, was \[\]"):
        load_runs(_write(tmp_path, "pairs = []\n" + BASE))


def test_a_limit_naming_no_configured_instrument_fails_once_for_the_base(tmp_path: Path) -> None:
    # It would be restricted away from every run, so the base must name a listed instrument.
    text = BASE.replace('"binance:BTC-USDT" = 250000', '"binance:SOL-USDT" = 250000')
    with pytest.raises(ConfigError, match=r"pairs\.toml: risk\.max_notional_per_order\['binance:SOL-USDT'\]: expected"):
        load_runs(_write(tmp_path, text + PAIRS))


def test_list_prints_every_run_and_runs_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    assert main([str(_write(tmp_path, BASE + PAIRS)), "--list", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    hashes = [config_hash(run) for run in load_runs(tmp_path / "pairs.toml")]
    assert lines == [
        f"carry-btc  [{hashes[0]}]  binance:BTC-USDT binance:BTC-USDT-PERP",
        f"carry-eth  [{hashes[1]}]  binance:ETH-USDT binance:ETH-USDT-PERP",
        f"carry-bybit-btc  [{hashes[2]}]  bybit:BTC-USDT bybit:BTC-USDT-PERP",
    ]
    assert not out.exists()


def test_one_run_given_twice_is_refused_before_any_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The expanded Bybit run and its hand-written config share a hash: both would write one directory.
    paths = [str(_write(tmp_path, BASE + PAIRS)), str(_write(tmp_path, BYBIT_BY_HAND, "by_hand.toml"))]
    assert main([*paths, "--out", str(tmp_path / "runs")]) == ExitCode.USAGE
    assert "runs 'carry-bybit-btc' and 'carry-bybit-btc' are the same run (config hash" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_example_config_expands_into_the_spot_perp_demo_and_its_eth_twin(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[3]
    btc, eth = load_runs(repo / "configs/demo_carry_pairs.toml")
    # Its BTC run is configs/demo_carry_spot_perp.toml under another name: the same config, field for field.
    demo = (repo / "configs/demo_carry_spot_perp.toml").read_text()
    renamed = demo.replace('name = "demo-synthetic-carry-spot-perp"', 'name = "demo-synthetic-carry-pairs-btc"')
    assert btc == load_config(_write(tmp_path, renamed, "demo.toml"))
    assert [(v.name, v.instruments) for v in eth.venues] == [("binance", ["ETH-USDT", "ETH-USDT-PERP"])]
    assert eth.strategy.params["spot_id"] == "binance:ETH-USDT"

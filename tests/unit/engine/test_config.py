"""Run configs: parsing, validation with field paths, strategy import checks, hashing, overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.loading import config_hash, load_config, parse_config, with_overrides

GOOD = """
name = "t"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000 USDT"]
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_good_config_parses_and_resolves_instrument_references(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.venues[0].leverage == Decimal(1)
    assert config.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert len(config_hash(config)) == 12


def test_unknown_key_fails_with_its_path() -> None:
    text = GOOD.replace('starting_balances = ["1000 USDT"]', 'starting_balances = ["1000 USDT"]\nlevrage = 3')
    with pytest.raises(ConfigError, match=r"unknown field `levrage` - at `\$\.venues\[0\]`"):
        parse_config(text.encode())


def test_negative_balance_fails() -> None:
    with pytest.raises(ConfigError, match=r"expected a positive amount, was '-5 USDT' - at `\$\.venues\[0\]`"):
        parse_config(GOOD.replace('"1000 USDT"', '"-5 USDT"').encode())


def test_end_before_start_fails() -> None:
    with pytest.raises(ConfigError, match=r"end: expected after start 2024-01-01T00:00:00\+00:00, was 2023"):
        parse_config(GOOD.replace("end = 2024-02-01T00:00:00Z", "end = 2023-12-01T00:00:00Z").encode())


def test_unknown_venue_fails_listing_known_venues() -> None:
    with pytest.raises(ConfigError, match=r"name: expected one of binance, bybit, okx, hyperliquid, kraken, was 'ftx'"):
        parse_config(GOOD.replace('name = "binance"', 'name = "ftx"').encode())


def test_strategy_that_does_not_import_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("strategies.demo:FundingShort", "strategies.nope:FundingShort"))
    with pytest.raises(ConfigError, match=r"strategy.path: expected an importable module, was 'strategies.nope'"):
        load_config(path)


def test_strategy_missing_class_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("strategies.demo:FundingShort", "strategies.demo:Nope"))
    with pytest.raises(ConfigError, match=r"expected strategies.demo to define 'Nope'"):
        load_config(path)


def test_strategy_param_typo_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + 'notionl = "5"\n')
    with pytest.raises(ConfigError, match=r"rejected the params .*unexpected keyword argument 'notionl'"):
        load_config(path)


def test_reference_to_undeclared_instrument_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('["binance:BTC-USDT-PERP"]', '["binance:ETH-USDT-PERP"]'))
    with pytest.raises(
        ConfigError, match=r"expected one of binance's instruments \['BTC-USDT-PERP'\], was 'ETH-USDT-PERP'"
    ):
        load_config(path)


def test_naive_datetime_fails() -> None:
    with pytest.raises(ConfigError, match=r"with a timezone component - at `\$\.start`"):
        parse_config(GOOD.replace("start = 2024-01-01T00:00:00Z", "start = 2024-01-01T00:00:00").encode())


def test_malformed_toml_fails() -> None:
    with pytest.raises(ConfigError, match=r"expected valid TOML"):
        parse_config(b"name = ")


def test_overrides_change_the_hash_and_are_checked(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    moved = with_overrides(config, catalog="elsewhere", start=datetime(2024, 1, 15, tzinfo=UTC))
    assert moved.data.catalog == "elsewhere"
    assert moved.start == datetime(2024, 1, 15, tzinfo=UTC)
    assert config_hash(moved) != config_hash(config)
    with pytest.raises(ConfigError, match=r"end: expected after start"):
        with_overrides(config, end=datetime(2023, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match=r"--start: expected a UTC offset"):
        with_overrides(config, start=datetime(2024, 1, 1))  # noqa: DTZ001 - the naive value is the point


def test_max_drawdown_is_the_largest_exact_fall_from_a_peak() -> None:
    import polars as pl

    from engine.results.stats import max_drawdown

    equity = pl.Series(
        [Decimal(100), Decimal("120.5"), Decimal("90.25"), Decimal(130), Decimal(110)], dtype=pl.Decimal(38, 18)
    )
    fall, fraction = max_drawdown(equity)
    assert fall == Decimal("30.25")
    assert fraction == pytest.approx(30.25 / 120.5, abs=1e-12)


def test_typo_in_max_notional_per_order_fails_at_load(tmp_path: Path) -> None:
    # Before, the key was resolved only when the engine was built, after the catalog had been read.
    text = GOOD + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PREP" = 50000\n'
    with pytest.raises(
        ConfigError, match=r"risk\.max_notional_per_order\['binance:BTC-USDT-PREP'\]: expected one of binance's"
    ):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("value", ["1e30", "17014118346047"])
def test_max_notional_per_order_beyond_what_nautilus_holds_fails_at_load(tmp_path: Path, value: str) -> None:
    # 1e30 crashed the backtest in Nautilus (decimal overflow); 17014118346047 made it deny every order.
    text = GOOD + f'[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = {value}\n'
    with pytest.raises(
        ConfigError, match=r"max_notional_per_order\['binance:BTC-USDT-PERP'\]: expected > 0 and at most 17014118346046"
    ):
        load_config(_write(tmp_path, text))


def test_max_notional_per_order_bound_is_the_largest_money_nautilus_holds(tmp_path: Path) -> None:
    from nautilus_trader.model import Money
    from nautilus_trader.risk import RiskEngineConfig

    from engine.config import MAX_NOTIONAL_PER_ORDER

    text = GOOD + f'[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = {MAX_NOTIONAL_PER_ORDER}\n'
    assert load_config(_write(tmp_path, text)).risk.max_notional_per_order  # the bound itself is accepted
    RiskEngineConfig(max_notional_per_order={"BTCUSDT-PERP.BINANCE": str(MAX_NOTIONAL_PER_ORDER)})
    for currency in ("USDT", "USD", "BTC"):
        assert Money.from_str(f"{MAX_NOTIONAL_PER_ORDER} {currency}").as_decimal() == MAX_NOTIONAL_PER_ORDER
        with pytest.raises(ValueError, match="exceeded bounds"):
            Money.from_str(f"{MAX_NOTIONAL_PER_ORDER + 1} {currency}")


def test_balance_currency_nautilus_does_not_know_fails_at_load(tmp_path: Path) -> None:
    text = GOOD.replace('"1000 USDT"', '"1000 ZZQQ"')
    with pytest.raises(ConfigError, match=r"venues\[binance\]\.starting_balances: expected a currency Nautilus knows"):
        load_config(_write(tmp_path, text))


def test_strategy_bar_spec_defaults_to_the_run_configs(tmp_path: Path) -> None:
    from engine.loading import load_strategy

    text = GOOD.replace("[strategy]\n", '[data]\nbar_spec = "5-MINUTE-LAST-EXTERNAL"\n[strategy]\n')
    plan = load_strategy(load_config(_write(tmp_path, text)))
    assert plan.config.bar_spec == "5-MINUTE-LAST-EXTERNAL"
    explicit = text + 'bar_spec = "1-HOUR-LAST-EXTERNAL"\n'
    assert load_strategy(load_config(_write(tmp_path, explicit))).config.bar_spec == "1-HOUR-LAST-EXTERNAL"

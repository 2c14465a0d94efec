"""A node that seeds its funding books from the catalog refuses a seed older than ``[live] max_funding_seed_age_secs``.

The catalog is a tiny **synthetic** one (made-up flat bars and settlements, not market data) exported from a
store by ``tests.kit.engine.build_catalog``: Binance BTC perp funding on its 8-hour clock, 2024-01-01 00:00,
08:00 and 16:00 UTC; the Hyperliquid leg has no funding there (left unseeded, never refused).
``load_strategy`` takes "now" (``seed_funding_before_ns``), so the ages below are read off the clock; the
command line runs on the wall clock, against which the 2024 catalog is always stale.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.exit_codes import ExitCode
from engine.errors import ConfigError, SafetyError
from engine.live.__main__ import main
from engine.loading import load_config, load_strategy, parse_config
from tests.kit.engine import build_catalog, hourly_bars

BINANCE = "BTCUSDT-PERP.BINANCE"
DAY = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND_NS = 1_000_000_000


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * SECOND_NS


def _config(tmp_path: Path, *, live: str = "", params: str = "") -> Path:
    catalog = tmp_path / "catalog"
    if not catalog.exists():
        closes = ["42000.0"] * 24
        catalog = build_catalog(
            tmp_path,
            bars={
                ("binance", "BTC-USDT-PERP"): hourly_bars(DAY, closes),
                ("hyperliquid", "BTC-USDC-PERP"): hourly_bars(DAY, closes),
            },
            funding={
                ("binance", "BTC-USDT-PERP"): (
                    "8h",
                    [(DAY + h * HOUR, r) for h, r in ((0, "0.0001"), (8, "0.0002"), (16, "0.0003"))],
                )
            },
        )
    config = tmp_path / "run.toml"
    config.write_text(f"""
name = "seed-age"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[data]
catalog = "{catalog}"
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
[[venues]]
name = "hyperliquid"
instruments = ["BTC-USDC-PERP"]
starting_balances = ["100000 USDC"]
[strategy]
path = "strategies.cross_venue_carry:CrossVenueCarry"
[strategy.params]
first_id = "binance:BTC-USDT-PERP"
second_id = "hyperliquid:BTC-USDC-PERP"
lookback_settlements = 2
{params}
[live]
state_dir = "{tmp_path / "state"}"
{live}
""")
    return config


def test_a_seed_as_old_as_the_default_24_hours_seeds_the_books(tmp_path: Path) -> None:
    # Now 2024-01-02 16:00: the newest settlement (01-01 16:00) is exactly 24 h old, the limit: accepted.
    plan = load_strategy(load_config(_config(tmp_path)), seed_funding_before_ns=ns("2024-01-02T16:00"))
    assert plan.config.funding_seed == {BINANCE: [(Decimal("0.0002"), 28_800), (Decimal("0.0003"), 28_800)]}


def test_a_seed_one_second_past_the_limit_is_refused_naming_instrument_age_limit_and_fix(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    with pytest.raises(
        SafetyError,
        match=(
            r"^BTCUSDT-PERP\.BINANCE: expected a funding seed at most \[live\] max_funding_seed_age_secs = 86400 s "
            r"old, was 1 day, 0:00:01 old \(the newest settlement in the catalog .*catalog is 2024-01-01 16:00 UTC\)"
            r".*python -m datasets update, then python -m datasets export-catalog --catalog .*catalog\), raise "
            r"\[live\] max_funding_seed_age_secs, or start unseeded with strategy\.params\.funding_seed = \{\}"
        ),
    ):
        load_strategy(config, seed_funding_before_ns=ns("2024-01-02T16:00:01"))
    # A backtest or replay (no seeding) never reads the seed, so never refuses it.
    assert load_strategy(config).config.funding_seed == {}


def test_a_raised_limit_or_an_explicit_empty_seed_starts(tmp_path: Path) -> None:
    # Two days: 01-01 16:00 is 47 h old at 01-03 15:00.
    raised = load_config(_config(tmp_path, live="max_funding_seed_age_secs = 172800"))
    plan = load_strategy(raised, seed_funding_before_ns=ns("2024-01-03T15:00"))
    assert plan.config.funding_seed[BINANCE][-1] == (Decimal("0.0003"), 28_800)
    unseeded = load_config(_config(tmp_path / "unseeded", params="funding_seed = {}"))
    assert load_strategy(unseeded, seed_funding_before_ns=ns("2025-01-01T00:00")).config.funding_seed == {}


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_limit_that_is_not_positive_is_a_config_error_naming_the_field(tmp_path: Path, value: str) -> None:
    text = _config(tmp_path, live=f"max_funding_seed_age_secs = {value}").read_bytes()
    with pytest.raises(ConfigError, match=r"max_funding_seed_age_secs: expected > 0 seconds, was .*live"):
        parse_config(text)


def test_a_paper_node_on_venue_data_with_a_stale_catalog_exits_6_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--mode", "paper", str(_config(tmp_path)), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == ExitCode.SAFETY, err
    assert "error (SafetyError): BTCUSDT-PERP.BINANCE: expected a funding seed at most" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()

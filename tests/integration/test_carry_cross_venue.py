"""Cross-venue perp-perp carry on real data: Binance BTC (8 h funding, USDT) against Hyperliquid (1 h, USDC)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import load_config, run_backtest, with_overrides
from tests.kit.live import cross_venue_catalog

REPO = Path(__file__).resolve().parents[2]
BINANCE, HYPERLIQUID = "BTCUSDT-PERP.BINANCE", "BTC-USD-PERP.HYPERLIQUID"
# Q4 2024: funding was high on both venues and the spread between them moved.
WINDOW = (datetime(2024, 10, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def catalog(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cross_venue_catalog(
        tmp_path_factory.mktemp("cross"),
        shared_data,
        start=datetime(2024, 9, 1, tzinfo=UTC),
        end=datetime(2025, 2, 1, tzinfo=UTC),
    )


@pytest.mark.slow
def test_cross_venue_carry_hedges_across_venues_and_settles_on_each_clock(catalog: Path) -> None:
    config = with_overrides(
        load_config(REPO / "configs" / "carry_binance_hyperliquid_btc.toml"),
        catalog=str(catalog),
        start=WINDOW[0],
        end=WINDOW[1],
    )
    result = run_backtest(config, out_dir=None)
    stats = result.stats
    assert stats["fills"] >= 2
    assert stats["orders_denied"] == 0
    # Hedged: after every batch of fills the two legs hold opposite base quantities.
    signed = pl.when(pl.col("side") == "BUY").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    net = (
        result.fills.with_columns(signed=signed)
        .group_by("ts")
        .agg(pl.col("signed").sum())
        .sort("ts")
        .with_columns(pl.col("signed").cum_sum().alias("net"))
    )
    assert set(net["net"].to_list()) == {Decimal(0)}
    # Each leg settles on its own venue's clock: Binance at 00/08/16 UTC only, Hyperliquid every hour.
    hours = result.funding.group_by("instrument_id").agg(pl.col("ts").dt.hour().unique().alias("hours"))
    by_instrument = {row["instrument_id"]: set(row["hours"]) for row in hours.iter_rows(named=True)}
    assert by_instrument[BINANCE] <= {0, 8, 16}
    assert len(by_instrument[HYPERLIQUID]) > 3
    # Carrying the spread: funding received net of funding paid is positive over the quarter.
    assert Decimal(stats["pnl_funding"]) > 0
    assert len(stats["by_currency"]) == 2  # USDT on Binance, Hyperliquid's quote currency on Hyperliquid

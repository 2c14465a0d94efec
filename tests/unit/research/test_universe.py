"""Universe ranking: hand-computed annualisation, cross-venue spreads, candidate picks and config retargeting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.loading import load_config
from research.universe import annualised_funding, cross_venue_spreads, pick_candidates, rank_perps, spot_perp_config
from strategies.signals import annualize

REPO = Path(__file__).resolve().parents[3]
DAY = datetime(2025, 3, 1, tzinfo=UTC)


def _rows(venue: str, symbol: str, rate: float, interval: str, count: int, step_hours: int) -> list[dict[str, object]]:
    return [
        {
            "venue": venue,
            "symbol": symbol,
            "ts": DAY + timedelta(hours=i * step_hours),
            "rate": rate,
            "interval": interval,
        }
        for i in range(count)
    ]


def _funding() -> pl.DataFrame:
    rows = [
        # Three 8h settlements a day for four days: 12 settlements of 0.0001.
        *_rows("binance", "XRP-USDT-PERP", 0.0001, "8h", 12, 8),
        # 96 hourly settlements of 0.00002 over the same four days.
        *_rows("hyperliquid", "XRP-USDC-PERP", 0.00002, "1h", 96, 1),
        # A losing perp, and one too short to rank (3 settlements).
        *_rows("bybit", "DOGE-USDT-PERP", -0.00005, "8h", 12, 8),
        *_rows("okx", "DOGE-USDT-PERP", 0.001, "8h", 3, 8),
    ]
    return annualised_funding(pl.DataFrame(rows))


def test_annualisation_is_rate_times_settlements_per_year() -> None:
    frame = _funding()
    apr = dict(zip(frame["venue"], frame["apr"], strict=False))
    # 8 h: 3 settlements a day x 365 = 1,095 a year; 1 h: 8,760 a year.
    assert apr["binance"] == pytest.approx(0.0001 * 1_095, rel=1e-12)
    assert apr["hyperliquid"] == pytest.approx(0.00002 * 8_760, rel=1e-12)
    assert apr["binance"] == pytest.approx(float(annualize(Decimal("0.0001"), 8 * 3_600)), rel=1e-12)


def test_rank_orders_perps_by_mean_apr_and_drops_short_series() -> None:
    ranking = rank_perps(_funding(), min_settlements=10)
    # hyperliquid 0.1752 > binance 0.1095 > bybit -0.05475 (-0.00005 x 1,095); okx has only 3 settlements.
    assert ranking.select("rank", "venue", "settlements").rows() == [
        (1, "hyperliquid", 96),
        (2, "binance", 12),
        (3, "bybit", 12),
    ]
    assert ranking["mean_apr"].to_list() == pytest.approx([0.1752, 0.1095, -0.05475], rel=1e-12)
    assert ranking["positive_share"].to_list() == [1.0, 1.0, 0.0]
    xrp = ranking.filter(pl.col("coin") == "XRP").row(0, named=True)
    # Both XRP venues settle on all four days: short Hyperliquid, long Binance, 0.1752 - 0.1095 = 0.0657.
    assert (xrp["spread_short_venue"], xrp["spread_long_venue"]) == ("hyperliquid", "binance")
    assert xrp["best_spread_apr"] == pytest.approx(0.0657, rel=1e-12)


def test_spreads_compare_only_days_both_venues_settled() -> None:
    spreads = cross_venue_spreads(_funding())  # okx's 3 DOGE settlements fall on the first day only
    doge = spreads.filter((pl.col("coin") == "DOGE") & (pl.col("short_venue") == "okx")).row(0, named=True)
    # One common day: 0.001 x 1,095 - (-0.00005 x 1,095) = 1.09500 + 0.05475 = 1.14975.
    assert doge["days"] == 1
    assert doge["spread_apr"] == pytest.approx(1.14975, rel=1e-12)


def test_candidates_are_the_best_positive_tradable_perps() -> None:
    ranking = rank_perps(_funding())
    tradable = {("binance", "XRP-USDT-PERP"), ("bybit", "DOGE-USDT-PERP")}
    picks = pick_candidates(ranking, tradable=tradable, top=3)
    assert picks.select("venue", "symbol").rows() == [("binance", "XRP-USDT-PERP")]  # bybit DOGE loses


def test_spot_perp_config_retargets_the_template_coin() -> None:
    template = load_config(REPO / "configs/carry_binance_btc_spot_perp.toml")
    start, end = datetime(2024, 9, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    config = spot_perp_config(template, coin="ETH", catalog="/tmp/c", start=start, end=end)
    params = config.strategy.params
    assert (params["spot_id"], params["perp_id"]) == ("binance:ETH-USDT", "binance:ETH-USDT-PERP")
    assert config.venues[0].instruments == ["ETH-USDT", "ETH-USDT-PERP"]
    assert set(config.risk.max_notional_per_order) == {"binance:ETH-USDT", "binance:ETH-USDT-PERP"}
    assert (config.start, config.end, config.data.catalog) == (start, end, "/tmp/c")
    assert params["entry_apr"] == template.strategy.params["entry_apr"]

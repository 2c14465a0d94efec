"""Liquidations vs price moves: the hourly panel reader and summaries, exchange flows, the shock grid and the
synthetic event generator (small hand-made frames, and the real panel in ../shared/data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from research.liquidator import event_economics
from research.liquidator_markets import (
    PanelError,
    crash_window,
    flows_vs_moves,
    liquidation_flows,
    load_hourly_panel,
    volume_by_return,
)
from research.liquidator_shock import ShockError, liquidatable_under_shocks
from research.liquidator_synthetic import NOTE, SyntheticLiquidations, synthetic_liquidation_extras

HEADER = "hour,price,log_return,vol_abs,vol_sq,total_debt_repaid_usd_hour,sol_volume_usd_hour\n"
T0 = datetime(2025, 10, 10, tzinfo=UTC)


def panel_file(tmp_path: Path, rows: list[str]) -> Path:
    # A tiny panel in the layout of DeFi-Kai's panel_sol.csv (made up here, not market data).
    path = tmp_path / "panel.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    return path


def tiny_panel(tmp_path: Path) -> pl.DataFrame:
    return load_hourly_panel(
        panel_file(
            tmp_path,
            [
                "2025-10-10 1:00,100,0.0,0,0,10,1",
                "2025-10-10 2:00,90,-0.105,0,0,70,1",
                "2025-10-10 3:00,80,-0.118,0,0,0,1",
                "2025-10-10 9:00,95,0.02,0,0,20,1",
            ],
        )
    )


def test_load_hourly_panel_reads_single_digit_hours_as_utc(tmp_path: Path) -> None:
    panel = tiny_panel(tmp_path)
    assert panel["ts"].to_list()[:2] == [T0.replace(hour=1), T0.replace(hour=2)]
    assert panel["liquidations_usd"].to_list() == [10.0, 70.0, 0.0, 20.0]


def test_load_hourly_panel_names_the_bad_line_and_field(tmp_path: Path) -> None:
    path = panel_file(tmp_path, ["2025-10-10 1:00,100,0.0,0,0,10,1", "2025-10-10 2:00,abc,0.0,0,0,10,1"])
    with pytest.raises(PanelError, match=r"panel.csv: line 3, field 'price' does not parse"):
        load_hourly_panel(path)


def test_load_hourly_panel_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("hour,price\n2025-10-10 1:00,1\n")
    with pytest.raises(PanelError, match=r"other.csv: expected the columns .* missing \['log_return'"):
        load_hourly_panel(path)


def test_crash_window_of_a_tiny_panel(tmp_path: Path) -> None:
    window = crash_window(tiny_panel(tmp_path), hours_before=1, hours_after=1)
    # peak $70 at 02:00; the window 01:00-03:00 holds 10 + 70 + 0 = $80 of $100; price 100 -> low 80: -20 %.
    assert (window.peak_ts, window.peak_usd) == (T0.replace(hour=2), 70.0)
    assert window.window_share == pytest.approx(0.8, abs=1e-15)
    assert window.price_change_pct == pytest.approx(-20.0, abs=1e-12)


def test_volume_by_return_buckets_the_hours(tmp_path: Path) -> None:
    table = volume_by_return(tiny_panel(tmp_path), edges_pct=(-10.0, 0.0))
    # returns 0, -10.5, -11.8, +2 %: two hours below -10 % with $70, none in [-10, 0), two at or above 0 with $30.
    rows = {r["bucket"]: (r["hours"], r["liquidations_usd"]) for r in table.to_dicts()}
    assert rows == {"< -10%": (2, 70.0), ">= 0%": (2, 30.0)}


def test_real_panel_peaks_at_the_2025_10_10_crash(shared_data: Path) -> None:
    panel = load_hourly_panel(shared_data / "solana" / "solana_liquidations_hourly_defikai" / "panel_sol.csv")
    window = crash_window(panel)
    # DATA.md states the peak: $14.45M in one hour; the crash was the evening (UTC) of 2025-10-10.
    assert window.peak_ts.date() == T0.date()
    assert round(window.peak_usd / 1e4) / 100 == 14.45
    assert window.peak_return < 0


def test_liquidation_flows_and_moves_per_window() -> None:
    liquidations = pl.DataFrame(
        {
            "ts": [T0, T0 + timedelta(seconds=30), T0 + timedelta(minutes=6)],
            "side": ["long", "short", "long"],
            "notional_usd": [100.0, 50.0, 25.0],
        }
    )
    flows = liquidation_flows(liquidations, every="1m")
    # minute 0: longs 100, shorts 50 -> imbalance (100 - 50) / 150 = 1/3; minute 6: longs 25 only.
    assert flows["imbalance"].to_list() == pytest.approx([1 / 3, 1.0], abs=1e-15)
    bars = pl.DataFrame({"ts": [T0, T0 + timedelta(minutes=5)], "open": [100.0, 99.0], "close": [99.0, 99.99]})
    moves = flows_vs_moves(flows, bars, every="5m")
    assert moves["long_usd"].to_list() == [100.0, 25.0]
    assert moves["return_pct"].to_list() == pytest.approx([-1.0, 1.0], abs=1e-12)


def _state(
    protocol: str, account: str, kind: str, mint: str, value: float, weight: float, c: float, b: float
) -> dict[str, object]:
    return {
        "protocol": protocol, "account": account, "position_kind": kind, "mint": mint,
        "value_usd": value, "weight": weight, "collateral_usd": c, "borrows_usd": b,
    }  # fmt: skip


def test_shock_grid_finds_who_is_next() -> None:
    states = pl.DataFrame(
        [
            # X: $1,000 SOL at 80 % -> 800 against $600 USDC: liquidatable once 800 (1 + s) < 600, s < -25 %.
            _state("kamino", "X", "deposit", "SOL", 1_000, 0.8, 800, 600),
            _state("kamino", "X", "borrow", "USDC", 600, 1.0, 800, 600),
            # Y: USDC collateral, SOL debt: a fall in SOL only helps it.
            _state("kamino", "Y", "deposit", "USDC", 1_000, 0.9, 900, 800),
            _state("kamino", "Y", "borrow", "SOL", 800, 1.0, 900, 800),
            # Z: already below 1 (80 < 90): liquidatable at every shock, never newly.
            _state("marginfi", "Z", "deposit", "SOL", 100, 0.8, 80, 90),
            _state("marginfi", "Z", "borrow", "USDC", 90, 1.0, 80, 90),
        ]
    )
    table = liquidatable_under_shocks(states, mints={"SOL"}, shocks_pct=(-25.0, -30.0))
    rows = {(r["protocol"], r["shock_pct"]): r for r in table.to_dicts()}
    assert rows["kamino", -25.0]["liquidatable"] == 0  # 600 < 600 is false
    hit = rows["kamino", -30.0]
    # at -30 %: 560 < 600; X's SOL is worth 1,000 x 0.7 = $700 against its $600 debt.
    assert (hit["liquidatable"], hit["newly_liquidatable"]) == (1, 1)
    assert hit["newly_collateral_usd"] == pytest.approx(700.0, abs=1e-9)
    assert hit["newly_borrows_usd"] == pytest.approx(600.0, abs=1e-9)
    assert (rows["marginfi", -30.0]["liquidatable"], rows["marginfi", -30.0]["newly_liquidatable"]) == (1, 0)


def _frame_without(column: str) -> pl.DataFrame:
    return pl.DataFrame([_state("kamino", "X", "deposit", "SOL", 1, 1, 1, 1)]).drop(column)


def test_shock_grid_names_missing_columns() -> None:
    with pytest.raises(ShockError, match=r"account states lack \['weight'\]"):
        liquidatable_under_shocks(_frame_without("weight"), mints={"SOL"})


def test_synthetic_events_split_each_real_hour_exactly(tmp_path: Path) -> None:
    panel = tiny_panel(tmp_path)
    spec = SyntheticLiquidations(mean_event_usd=20.0)
    events = synthetic_liquidation_extras(panel, spec)
    # $10 -> 1 event, $70 -> 4 (ceil 3.5), $20 -> 1: 6 events; seeded, so a second draw is identical.
    assert events.height == 6
    assert events.equals(synthetic_liquidation_extras(panel, spec))
    assert set(events["amount_notes"]) == {NOTE}
    assert NOTE.startswith("SYNTHETIC")
    prices = pl.concat(
        [
            panel.select(symbol=pl.lit("SOL"), ts="ts", price_usd="price_usd"),
            panel.select(symbol=pl.lit("USDC"), ts="ts", price_usd=pl.lit(1.0)),
        ]
    )
    valued = event_economics(events, prices).group_by(pl.col("ts").dt.truncate("1h")).agg(pl.col("repaid_usd").sum())
    # each hour's events repay the hour's volume; raw amounts are floored to the unit (1e-6 USDC, 1e-9 SOL).
    assert dict(valued.sort("ts").iter_rows()) == pytest.approx(
        {T0.replace(hour=1): 10.0, T0.replace(hour=2): 70.0, T0.replace(hour=9): 20.0}, abs=1e-5
    )

"""Tearsheet statistics against values computed by hand on tiny ledgers."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from reports import tearsheet as ts
from reports.backtest import render_report

D = pl.Decimal(38, 18)
NS = pl.Datetime("ns", "UTC")
T0 = datetime(2024, 1, 30, tzinfo=UTC)


def equity_frame(values: list[str], *, start: datetime = T0) -> pl.DataFrame:
    """PnL totals (capital 100) at one close a day."""
    stamps = [start + timedelta(days=i) for i in range(len(values))]
    pnl = [Decimal(v) - 100 for v in values]
    return pl.DataFrame(
        {
            "ts": stamps,
            "currency": ["USDT"] * len(values),
            **{k: pnl for k in ("pnl_price", "pnl_funding", "pnl_fees", "pnl_total")},
        },
        schema_overrides={"ts": NS, **dict.fromkeys(("pnl_price", "pnl_funding", "pnl_fees", "pnl_total"), D)},
    )


def test_fmt_rounds_decimal_text_for_reading() -> None:
    assert ts.fmt(Decimal("790.120698380000000000")) == "790.12"
    assert ts.fmt(Decimal("-2230.625455")) == "-2,230.63"
    assert ts.fmt(0.123456, percent=True) == "12.35%"
    assert ts.fmt(Decimal("-0.001")) == "0.00"
    assert ts.fmt(None) == ts.fmt(float("nan")) == "–"


def test_return_statistics_match_hand_computation() -> None:
    days = ts.daily_equity(equity_frame(["110", "99", "108.9"]), Decimal(100))
    returns = ts.daily_returns(days, Decimal(100))
    assert returns.tolist() == pytest.approx([0.1, -0.1, 0.1], abs=1e-12)
    stats = ts.return_stats(returns)
    mean, deviation = statistics.mean([0.1, -0.1, 0.1]), statistics.stdev([0.1, -0.1, 0.1])
    assert stats["sharpe"] == pytest.approx(mean / deviation * math.sqrt(365), rel=1e-9)
    assert stats["annual_volatility"] == pytest.approx(deviation * math.sqrt(365), rel=1e-9)
    assert stats["total_return"] == pytest.approx(1.1 * 0.9 * 1.1 - 1, rel=1e-9)
    assert stats["max_drawdown"] == pytest.approx(-0.1, rel=1e-9)


def test_monthly_returns_compound_within_each_month() -> None:
    # Jan 30: 110 (+10%), Jan 31: 99 (-10%), Feb 1: 108.9 (+10%), Feb 2: 108.9 (0%)
    days = ts.daily_equity(equity_frame(["110", "99", "108.9", "108.9"]), Decimal(100))
    table = ts.monthly_returns(ts.daily_returns(days, Decimal(100)))
    assert table[2024]["Jan"] == pytest.approx(1.1 * 0.9 - 1, rel=1e-9)
    assert table[2024]["Feb"] == pytest.approx(0.1, rel=1e-9)
    assert table[2024]["Year"] == pytest.approx(0.089, rel=1e-9)


def test_drawdown_periods_have_depth_length_and_recovery() -> None:
    days = ts.daily_equity(equity_frame(["100", "110", "99", "105", "111", "100"]), Decimal(100))
    periods = ts.drawdown_periods(days)
    first = T0.date()
    assert periods == [
        ts.DrawdownPeriod(first + timedelta(1), first + timedelta(2), first + timedelta(4), pytest.approx(-0.1), 3),
        ts.DrawdownPeriod(first + timedelta(4), first + timedelta(5), None, pytest.approx(100 / 111 - 1), 1),
    ]


def test_rolling_windows_need_enough_days() -> None:
    returns = ts.daily_returns(ts.daily_equity(equity_frame(["101", "102"]), Decimal(100)), Decimal(100))
    assert ts.rolling(returns).empty
    long = ts.daily_returns(
        ts.daily_equity(equity_frame([str(100 + (i % 3)) for i in range(40)]), Decimal(100)), Decimal(100)
    )
    frame = ts.rolling(long)
    window = long.iloc[-30:]
    assert frame["volatility"].iloc[-1] == pytest.approx(window.std() * math.sqrt(365), rel=1e-9)


def positions_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "position_id": ["a-cycle-1", "a-cycle-2", "b"],
            "instrument_id": ["X", "X", "Y"],
            "ts_opened": [T0, T0 + timedelta(hours=10), T0],
            "ts_closed": [T0 + timedelta(hours=2), T0 + timedelta(hours=14), None],
            "realized_pnl": [Decimal(10), Decimal(-5), Decimal(0)],
            "currency": ["USDT"] * 3,
        },
        schema_overrides={"ts_opened": NS, "ts_closed": NS, "realized_pnl": D},
    )


def fills_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=1), T0 + timedelta(hours=3)],
            "instrument_id": ["X", "X"],
            "side": ["BUY", "SELL"],
            "quantity": [Decimal(2), Decimal(1)],
            "price": [Decimal(101), Decimal(99)],
            "commission": [Decimal("0.2"), Decimal("0.1")],
        },
        schema_overrides={"ts": NS, "quantity": D, "price": D, "commission": D},
    )


def bars_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"instrument_id": ["X"] * 4, "ts": [T0 + timedelta(hours=h) for h in range(4)], "close": [Decimal(100)] * 4},
        schema_overrides={"ts": NS, "close": D},
    )


def test_trade_statistics_by_hand() -> None:
    trades = ts.trade_stats(positions_frame(), fills_frame(), Decimal(1000))
    assert trades["round_trips"] == 2
    assert trades["win_rate"] == 0.5
    assert trades["average_win"] == Decimal(10)
    assert trades["average_loss"] == Decimal(-5)
    assert trades["mean_holding"] == timedelta(hours=3)
    assert trades["traded_notional"] == Decimal(301)  # 2 * 101 + 1 * 99
    assert trades["turnover"] == pytest.approx(0.301)


def test_costs_fees_and_slippage_against_the_last_close() -> None:
    row = ts.costs(fills_frame(), bars_frame()).row(0, named=True)
    assert row["fills"] == 2
    assert row["fees"] == Decimal("0.3")
    assert row["slippage"] == Decimal(3)  # buy 2 at 101 over 100, sell 1 at 99 under 100


def test_exposure_and_leverage_mark_positions_at_the_close() -> None:
    equity = equity_frame(["100"] * 1, start=T0)
    frame = ts.exposure(fills_frame(), bars_frame(), equity, Decimal(100))
    by_hour = {row["ts"].hour: row for row in frame.iter_rows(named=True)}
    assert by_hour[0]["gross"] == 0
    assert by_hour[2]["gross"] == 200  # long 2 at 100
    assert by_hour[3]["net"] == 100  # long 1 after selling 1
    assert by_hour[2]["leverage"] == pytest.approx(2.0)


def test_funding_apr_is_the_notional_weighted_rate_annualised() -> None:
    funding = pl.DataFrame(
        {
            "ts": [T0, T0 + timedelta(hours=8)],
            "instrument_id": ["X", "X"],
            "position_size": [Decimal(-10), Decimal(-10)],
            "mark_price": [Decimal(100), Decimal(100)],
            "amount": [Decimal("0.1"), Decimal("0.1")],
        },
        schema_overrides={"ts": NS, "position_size": D, "mark_price": D, "amount": D},
    )
    row = ts.funding_apr(funding).row(0, named=True)
    assert row["settlements"] == 2
    assert row["apr"] == pytest.approx(0.2 / 2000 * 365 * 3, rel=1e-12)  # 1 bp per 8 h = 10.95 %/year


def test_expected_apr_comes_from_the_strategy_params_or_a_note() -> None:
    assert ts.expected_apr({"strategy": {"params": {"entry_apr": "0.10", "notional": "1"}}}) == {"entry_apr": "0.10"}
    sheet = ts.build_tearsheet(
        equity=equity_frame(["101", "102"]),
        fills=fills_frame(),
        positions=positions_frame(),
        funding=pl.DataFrame(
            schema={"ts": NS, "instrument_id": pl.String, "position_size": D, "mark_price": D, "amount": D}
        ),
        bars=bars_frame(),
        starting_capital=Decimal(100),
    )
    assert any("no expected APR" in note for note in sheet.notes)
    assert sheet.drawdowns == []
    assert date(2024, 1, 30) in [d.date() for d in sheet.returns.index]


def test_report_tables_are_rounded_decimal_text(tmp_path: Path) -> None:
    equity = equity_frame(["100.123456789", "101.5"])
    funding = pl.DataFrame(
        {
            "ts": [T0],
            "venue": ["binance"],
            "instrument_id": ["X"],
            "position_size": [Decimal(-1)],
            "mark_price": [Decimal(100)],
            "amount": [Decimal("790.120698380000000000")],
        },
        schema_overrides={"ts": NS, "position_size": D, "mark_price": D, "amount": D},
    )
    stats = {
        "starting_balances": {"USDT": "100"},
        "by_currency": {"USDT": {"pnl_total": "1.123456789"}},
        "pnl_total": "1.123456789",
    }
    page = render_report(
        tmp_path / "r.html",
        stats=stats,
        equity=equity,
        fills=fills_frame(),
        bars=bars_frame(),
        funding=funding,
        positions=positions_frame(),
    ).read_text()
    assert "790.12" in page
    assert "790.1206983" not in page
    assert "pnl_total 1.12" in page
    for section in ("Monthly returns", "Drawdown periods", "Trade statistics", "realised APR", "Fees and slippage"):
        assert section in page

"""The HTML report renders offline from plain frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl

from reports.backtest import render_report, thin

D = pl.Decimal(38, 18)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_thin_keeps_the_last_row_and_bounds_the_size() -> None:
    frame = pl.DataFrame({"x": range(10_001)})
    thinned = thin(frame, 100)
    assert thinned.height <= 102
    assert thinned["x"][-1] == 10_000


def test_report_is_one_self_contained_page(tmp_path: Path) -> None:
    ts = [T0 + timedelta(hours=i) for i in range(3)]
    equity = pl.DataFrame(
        {
            "ts": ts,
            "currency": ["USDT"] * 3,
            **{
                k: [Decimal(0), Decimal("1.5"), Decimal(-2)]
                for k in ("pnl_price", "pnl_funding", "pnl_fees", "pnl_total")
            },
        },
        schema_overrides={k: D for k in ("pnl_price", "pnl_funding", "pnl_fees", "pnl_total")},
    )
    fills = pl.DataFrame(
        {
            "ts": ts[:2],
            "instrument_id": ["X.BINANCE"] * 2,
            "side": ["BUY", "SELL"],
            "quantity": [Decimal(1)] * 2,
            "price": [Decimal(100), Decimal(101)],
        },
        schema_overrides={"quantity": D, "price": D},
    )
    bars = pl.DataFrame(
        {"instrument_id": ["X.BINANCE"] * 3, "ts": ts, "close": [Decimal(100), Decimal(101), Decimal(102)]},
        schema_overrides={"close": D},
    )
    funding = pl.DataFrame(
        {"venue": ["binance"], "instrument_id": ["X.BINANCE"], "amount": [Decimal("0.5")]},
        schema_overrides={"amount": D},
    )
    stats = {
        "name": "t",
        "config_hash": "abc",
        "by_currency": {"USDT": {"pnl_total": "-2"}},
        "pnl_total": "-2",
        "starting_balances": {"USDT": "1000"},
        "fill_model": "market orders at close",
    }
    path = render_report(tmp_path / "r.html", stats=stats, equity=equity, fills=fills, bars=bars, funding=funding)
    page = path.read_text()
    assert page.count("<script src=") == 0
    assert page.count("Plotly.newPlot") == 5  # equity, attribution, rolling, exposure, one instrument
    assert "market orders at close" in page

"""Golden accounting: tiny hand-made stores -> catalog -> engine, every figure checked exactly by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.backtest import RunResult, parse_config, run_backtest
from tests.kit.engine import build_catalog, hourly_bars

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BTC_BINANCE = "BTCUSDT-PERP.BINANCE"
BTC_HYPERLIQUID = "BTC-USD-PERP.HYPERLIQUID"


def _at(hour: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC).replace(hour=hour) if hour < 24 else datetime(2024, 1, 2, tzinfo=UTC)


def _closes(first: int, step: int, count: int = 24) -> list[str]:
    return [f"{first + step * i}.0" for i in range(count)]


def _run(tmp_path: Path, catalog: Path, body: str, *, start: str = "2024-01-01T01:00:00Z") -> RunResult:
    text = f"""
name = "golden"
start = {start}
end = 2024-01-02T00:00:00Z
[data]
catalog = "{catalog}"
{body}
"""
    return run_backtest(parse_config(text.encode()), out_dir=tmp_path / "runs")


def _orders(*orders: tuple[int, str, str, str]) -> str:
    rows = ", ".join(f'["{_at(h).isoformat()}", "{i}", "{side}", "{q}"]' for h, i, side, q in orders)
    return f'[strategy]\npath = "tests.kit.engine:Scripted"\n[strategy.params]\norders = [{rows}]\n'


BINANCE = """
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["100000 USDT"]
leverage = 5
"""


@pytest.fixture
def binance_catalog(tmp_path: Path) -> Path:
    # Trade closes 42000.0 + 10/h (bar closing at h: 42000 + 10*(h-1)); marks 5 above; 8h funding.
    key = ("binance", "BTC-USDT-PERP")
    return build_catalog(
        tmp_path,
        bars={key: hourly_bars(T0, _closes(42000, 10))},
        marks={key: hourly_bars(T0, _closes(42005, 10))},
        funding={key: ("8h", [(_at(8), "0.0001"), (_at(16), "0.0002"), (_at(24), "-0.0001")])},
    )


def test_short_held_across_settlements_pays_sum_of_minus_qty_mark_rate(tmp_path: Path, binance_catalog: Path) -> None:
    # Short 1 BTC on the bar closing 02:00 (close 42010.0), buy back on the bar closing 23:00 (42220.0).
    body = BINANCE + _orders((2, BTC_BINANCE, "SELL", "1.000"), (23, BTC_BINANCE, "BUY", "1.000"))
    result = _run(tmp_path, binance_catalog, body)
    # Marks at 08:00 and 16:00: 42005 + 10*7 = 42075.0, 42005 + 10*15 = 42155.0.
    funding = -Decimal(-1) * Decimal("42075.0") * Decimal("0.0001") - Decimal(-1) * Decimal("42155.0") * Decimal(
        "0.0002"
    )
    assert funding == Decimal("12.6385")
    fees = -(Decimal("42010.0") + Decimal("42220.0")) * Decimal("0.0005")
    price = Decimal("42010.0") - Decimal("42220.0")
    stats = result.stats
    assert Decimal(stats["pnl_funding"]) == funding
    assert Decimal(stats["pnl_fees"]) == fees == Decimal("-42.115")
    assert Decimal(stats["pnl_price"]) == price
    assert Decimal(stats["pnl_total"]) == price + funding + fees == Decimal("-239.4765")
    assert result.funding["amount"].to_list() == [Decimal("4.2075"), Decimal("8.431")]
    assert result.funding["position_size"].to_list() == [Decimal(-1), Decimal(-1)]
    assert result.funding["mark_price"].to_list() == [Decimal("42075.0"), Decimal("42155.0")]
    assert result.funding["rate"].to_list() == [Decimal("0.0001"), Decimal("0.0002")]
    assert (stats["orders"], stats["fills"], stats["positions"], stats["funding_settlements"]) == (2, 2, 1, 2)
    assert stats["reconciliation"]["USDT"]["difference"] == "0"


def test_round_trip_fees_and_slippage_are_exact(tmp_path: Path, binance_catalog: Path) -> None:
    # 10 bps slippage, taker 0.0004 override: buy 2 on the 02:00 bar (42010.0), sell 2 on the 05:00 bar (42040.0).
    body = (
        BINANCE.replace("leverage = 5", "leverage = 5\ntaker_fee = 0.0004")
        + "[fill]\nslippage_bps = 10\n"
        + _orders((2, BTC_BINANCE, "BUY", "2.000"), (5, BTC_BINANCE, "SELL", "2.000"))
    )
    result = _run(tmp_path, binance_catalog, body)
    buy = Decimal("42052.1")  # 42010.0 * 1.001 = 42052.01, rounded up to the 0.1 tick
    sell = Decimal("41997.9")  # 42040.0 * 0.999 = 41997.96, rounded down
    assert result.fills["price"].to_list() == [buy, sell]
    fees = -(buy + sell) * 2 * Decimal("0.0004")
    assert Decimal(result.stats["pnl_fees"]) == fees == Decimal("-67.24")
    assert Decimal(result.stats["pnl_price"]) == (sell - buy) * 2 == Decimal("-108.4")
    assert Decimal(result.stats["pnl_funding"]) == 0
    assert Decimal(result.stats["pnl_total"]) == Decimal("-175.64")


def test_position_opened_at_or_after_a_settlement_pays_nothing_for_it(tmp_path: Path, binance_catalog: Path) -> None:
    # Opened on the bar closing exactly at 08:00: not held at the 08:00 instant. Closed on the 16:00 bar: held.
    body = BINANCE + _orders((8, BTC_BINANCE, "SELL", "1.000"), (16, BTC_BINANCE, "BUY", "1.000"))
    result = _run(tmp_path, binance_catalog, body)
    assert result.funding["ts"].to_list() == [_at(16)]
    assert Decimal(result.stats["pnl_funding"]) == Decimal("42155.0") * Decimal("0.0002") == Decimal("8.431")


def test_position_opened_after_the_last_settlement_pays_nothing(tmp_path: Path, binance_catalog: Path) -> None:
    body = BINANCE + _orders((17, BTC_BINANCE, "SELL", "1.000"), (23, BTC_BINANCE, "BUY", "1.000"))
    result = _run(tmp_path, binance_catalog, body)
    assert result.funding.height == 0
    assert result.stats["pnl_funding"] == "0"


def test_hourly_and_eight_hourly_venues_settle_in_one_run(tmp_path: Path) -> None:
    binance, hyperliquid = ("binance", "BTC-USDT-PERP"), ("hyperliquid", "BTC-USDC-PERP")
    flat = ["42000.0"] * 24
    catalog = build_catalog(
        tmp_path,
        bars={binance: hourly_bars(T0, flat), hyperliquid: hourly_bars(T0, flat)},
        marks={binance: hourly_bars(T0, flat), hyperliquid: hourly_bars(T0, flat)},
        funding={
            binance: ("8h", [(_at(8), "0.0001"), (_at(16), "0.0001")]),
            hyperliquid: ("1h", [(_at(h), f"0.0000{h - 2}") for h in range(3, 6)]),
        },
    )
    body = (
        BINANCE
        + '[[venues]]\nname = "hyperliquid"\ninstruments = ["BTC-USDC-PERP"]\nstarting_balances = ["100000 USDC"]\n'
        + "leverage = 5\n"
        + _orders(
            (2, BTC_BINANCE, "SELL", "1.000"),
            (10, BTC_BINANCE, "BUY", "1.000"),
            (2, BTC_HYPERLIQUID, "SELL", "1.00000"),
            (5, BTC_HYPERLIQUID, "BUY", "1.00000"),
        )
    )
    result = _run(tmp_path, catalog, body)
    by_instrument: dict[str, Decimal] = {}
    for row in result.funding.iter_rows(named=True):
        by_instrument[row["instrument_id"]] = by_instrument.get(row["instrument_id"], Decimal(0)) + row["amount"]
    # Binance: one 8h settlement at 08:00 (42000 * 0.0001). Hyperliquid: 03:00, 04:00, 05:00 at 1, 2, 3 * 1e-5.
    assert by_instrument[BTC_BINANCE] == Decimal("4.2")
    assert by_instrument[BTC_HYPERLIQUID] == Decimal("0.42") + Decimal("0.84") + Decimal("1.26")
    assert result.stats["by_currency"]["USDC"]["pnl_funding"] == "2.52"
    assert result.stats["by_currency"]["USDT"]["pnl_funding"] == "4.2"
    assert Decimal(result.stats["pnl_funding"]) == Decimal("6.72")
    for values in result.stats["by_currency"].values():
        assert Decimal(values["pnl_total"]) == sum(Decimal(values[k]) for k in ("pnl_price", "pnl_funding", "pnl_fees"))

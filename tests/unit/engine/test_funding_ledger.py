"""The funding ledger restates each settlement with its inputs and refuses one the engine got wrong.

Hand-made inputs in the shapes ``engine.backtest.runner._collect`` passes: the engine's FUNDING
adjustments (``records.funding_events``), the fills ledger, and the run's marks, bars and funding
updates (``engine.run_data`` schemas). A short of 2 contracts (multiplier 1) opened at hour 1 settles at
hour 8 with mark 100 and rate 0.0001: ``-(-2) * 1 * 100 * 0.0001 = 0.02`` received.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import AccountingError
from engine.results.ledger import funding_ledger
from engine.results.schemas import FILLS_SCHEMA, frame_of_rows
from engine.run_data import BARS_SCHEMA, FUNDING_UPDATES_SCHEMA, MARKS_SCHEMA, RunData

HOUR = 3_600_000_000_000
PERP = "BTCUSDT-PERP.BINANCE"
FILLS = frame_of_rows(
    [
        {
            "ts": HOUR,
            "instrument_id": PERP,
            "position_id": "P-1",
            "side": "SELL",
            "quantity": Decimal("2"),
            "price": Decimal("99"),
            "commission": Decimal("0.1"),
            "commission_currency": "USDT",
        }
    ],
    FILLS_SCHEMA,
)


def _data(*, rate: str | None = "0.0001") -> RunData:
    marks = frame_of_rows([{"instrument_id": PERP, "ts": 8 * HOUR, "mark_price": Decimal("100")}], MARKS_SCHEMA)
    bars = frame_of_rows([{"instrument_id": PERP, "ts": 7 * HOUR, "close": Decimal("98")}], BARS_SCHEMA)
    update = {"instrument_id": PERP, "ts_init": 0, "next_funding": 8 * HOUR, "interval_minutes": 480}
    updates = [{**update, "rate": Decimal(rate)}] if rate is not None else []
    data = RunData(bars=bars, marks=marks, funding=frame_of_rows(updates, FUNDING_UPDATES_SCHEMA))
    data.venue_of[PERP] = "binance"
    return data


def _settlement(amount: str) -> list[dict[str, object]]:
    return [
        {"ts": 8 * HOUR, "instrument_id": PERP, "position_id": "P-1", "amount": Decimal(amount), "currency": "USDT"}
    ]


def test_a_settlement_is_restated_with_the_size_mark_and_rate_that_give_its_amount() -> None:
    ledger = funding_ledger(_settlement("0.02"), FILLS, _data())
    assert ledger.select("venue", "position_size", "mark_price", "rate", "amount").rows() == [
        ("binance", Decimal("-2"), Decimal("100"), Decimal("0.0001"), Decimal("0.02"))
    ]


def test_an_amount_off_by_more_than_its_last_decimal_is_refused_with_the_formula() -> None:
    # 0.02 in cents is right to within 0.01; 0.04 is two units off.
    assert funding_ledger(_settlement("0.03"), FILLS, _data()).height == 1
    with pytest.raises(
        AccountingError,
        match=r"P-1 at 1970-01-01T08:00:00\+00:00 .* = -\(-2\)\*1\*100\*0\.0001 = 0\.02, the engine settled 0\.04 USDT",
    ):
        funding_ledger(_settlement("0.04"), FILLS, _data())


def test_a_settlement_without_an_announced_rate_is_refused_naming_its_time() -> None:
    with pytest.raises(AccountingError, match=r"announcing 1970-01-01T08:00:00\+00:00 for BTCUSDT-PERP.*rate None"):
        funding_ledger(_settlement("0.02"), FILLS, _data(rate=None))

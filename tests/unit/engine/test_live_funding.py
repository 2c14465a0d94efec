"""Paper funding book: the backtest's settlement rule, on a pure object."""

from __future__ import annotations

from decimal import Decimal

from engine.live.funding import InstrumentTerms, PaperFunding

ID = "BTCUSDT-PERP.BINANCE"
HOUR = 3_600_000_000_000


def _book() -> PaperFunding:
    return PaperFunding({ID: InstrumentTerms(ID, "binance", Decimal(1), "USDT", 8)})


def test_settlement_is_minus_size_times_mark_times_the_announced_rate() -> None:
    book = _book()
    book.on_funding(ID, rate=Decimal("0.0001"), next_funding_ns=8 * HOUR)
    book.on_funding(ID, rate=Decimal("0.00033601"), next_funding_ns=8 * HOUR)  # the latest announcement wins
    book.on_mark(ID, ts=8 * HOUR, price=Decimal("42810.74"))  # a mark stamped at T counts
    assert book.due(8 * HOUR - 1) == []
    assert book.due(8 * HOUR) == [(ID, 8 * HOUR)]
    settlement = book.settle(ID, 8 * HOUR, position_size=Decimal("-0.470"), position_id="P-1")
    assert settlement is not None
    assert settlement.amount == Decimal("6.76087327")  # the backtest engine's figure for this settlement
    assert book.total("USDT") == settlement.amount
    assert settlement.to_json()["amount"] == "6.76087327"


def test_without_a_mark_the_close_of_a_bar_that_closed_before_t_is_used() -> None:
    book = _book()
    book.on_funding(ID, rate=Decimal("0.001"), next_funding_ns=8 * HOUR)
    book.on_close(ID, ts=7 * HOUR, price=Decimal("100"))
    book.on_close(ID, ts=8 * HOUR, price=Decimal("999"))  # closes at T is delivered after the settlement
    assert book.price_at(ID, 8 * HOUR) == Decimal("100")
    settlement = book.settle(ID, 8 * HOUR, position_size=Decimal("2"), position_id="P")
    assert settlement is not None
    assert settlement.amount == Decimal("-0.2")


def test_flat_positions_settle_nothing_and_consume_the_announcement() -> None:
    book = _book()
    book.on_funding(ID, rate=Decimal("0.001"), next_funding_ns=8 * HOUR)
    assert book.settle(ID, 8 * HOUR, position_size=Decimal(0), position_id="") is None
    assert book.next_due() is None
    book.on_funding(ID, rate=Decimal("0.001"), next_funding_ns=8 * HOUR)  # a late repeat is ignored
    assert book.next_due() is None


def test_unknown_instruments_are_ignored() -> None:
    book = _book()
    book.on_funding("ETHUSDT-PERP.BINANCE", rate=Decimal("0.001"), next_funding_ns=HOUR)
    assert book.next_due() is None

"""Paper funding: settle perpetual funding the way the venue (and the backtest engine) does.

The 2.0.0rc6 sandbox does not settle funding, so a paper node keeps this book. It matches the
backtest's native settlement exactly (``engine.results.ledger.funding_ledger`` checks the same
formula, ``strategies.funding.funding_payment``): at ``T = next_funding_ns`` of a ``FundingRateUpdate``,
using the rate of the last update announcing ``T``, a position of signed size ``q`` pays
``-q * multiplier * mark * rate``, where ``mark`` is the latest ``MarkPriceUpdate`` at or before ``T``,
else the close of the last bar that closed before ``T``. Amounts are rounded half-even to the
settlement currency's precision, as Nautilus ``Money`` is.

The book is pure: callers feed it data and positions and ask what is due (``due``) at a moment.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from strategies.funding import funding_payment


@dataclass(frozen=True, slots=True)
class InstrumentTerms:
    """What the book needs to know about one perp."""

    instrument_id: str
    venue: str
    multiplier: Decimal
    currency: str
    currency_precision: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """One funding payment: positive amounts are received, negative paid."""

    ts: int
    venue: str
    instrument_id: str
    position_id: str
    position_size: Decimal
    mark_price: Decimal
    rate: Decimal
    amount: Decimal
    currency: str

    def to_json(self) -> dict[str, Any]:
        """Return the settlement with decimals as text (for the logs)."""
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}


HISTORY = 16


class PaperFunding:
    """Announced rates, last prices and settlements of the perps a node trades.

    Parameters
    ----------
    terms : dict[str, InstrumentTerms]
        Perps by instrument id; updates for other instruments are ignored.
    """

    def __init__(self, terms: dict[str, InstrumentTerms]) -> None:
        self.terms = terms
        self.announced: dict[str, dict[int, Decimal]] = {i: {} for i in terms}
        # A few recent prices each: on venue data a later mark or bar can arrive before the settlement timer.
        self.marks: dict[str, deque[tuple[int, Decimal]]] = {i: deque(maxlen=HISTORY) for i in terms}
        self.closes: dict[str, deque[tuple[int, Decimal]]] = {i: deque(maxlen=HISTORY) for i in terms}
        self.settled_until: dict[str, int] = dict.fromkeys(terms, 0)
        self.settlements: list[Settlement] = []

    def on_funding(self, instrument_id: str, *, rate: Decimal, next_funding_ns: int | None) -> None:
        """Record an update announcing ``rate`` for the settlement at ``next_funding_ns`` (latest wins)."""
        if instrument_id in self.terms and next_funding_ns is not None:
            if next_funding_ns > self.settled_until[instrument_id]:
                self.announced[instrument_id][next_funding_ns] = rate

    def on_mark(self, instrument_id: str, *, ts: int, price: Decimal) -> None:
        """Record a mark price stamped ``ts``."""
        if instrument_id in self.terms:
            self.marks[instrument_id].append((ts, price))

    def on_close(self, instrument_id: str, *, ts: int, price: Decimal) -> None:
        """Record the close of a bar that closed at ``ts``."""
        if instrument_id in self.terms:
            self.closes[instrument_id].append((ts, price))

    def next_due(self) -> int | None:
        """Return the earliest announced settlement time not yet settled, or None."""
        pending = [min(times) for times in self.announced.values() if times]
        return min(pending) if pending else None

    def due(self, now_ns: int) -> list[tuple[str, int]]:
        """Return ``(instrument_id, T)`` of every announced settlement with ``T <= now_ns``, oldest first."""
        found = [(t, i) for i, times in self.announced.items() for t in times if t <= now_ns]
        return [(i, t) for t, i in sorted(found)]

    def settle(self, instrument_id: str, ts: int, *, position_size: Decimal, position_id: str) -> Settlement | None:
        """Settle ``instrument_id`` at ``ts`` for a position of signed ``position_size``; None when flat.

        The settlement is recorded and the announcement consumed either way.
        """
        rate = self.announced[instrument_id].pop(ts)
        self.settled_until[instrument_id] = max(self.settled_until[instrument_id], ts)
        if position_size == 0:
            return None
        price = self.price_at(instrument_id, ts)
        if price is None:
            return None
        terms = self.terms[instrument_id]
        unit = Decimal(1).scaleb(-terms.currency_precision)
        amount = funding_payment(position_size, terms.multiplier, price, rate).quantize(unit, rounding=ROUND_HALF_EVEN)
        settlement = Settlement(
            ts=ts,
            venue=terms.venue,
            instrument_id=instrument_id,
            position_id=position_id,
            position_size=position_size,
            mark_price=price,
            rate=rate,
            amount=amount,
            currency=terms.currency,
        )
        self.settlements.append(settlement)
        return settlement

    def price_at(self, instrument_id: str, ts: int) -> Decimal | None:
        """Return the mark at or before ``ts``, else the close of the last bar that closed before ``ts``."""
        for mark_ts, mark in reversed(self.marks[instrument_id]):
            if mark_ts <= ts:
                return mark
        for close_ts, close in reversed(self.closes[instrument_id]):
            if close_ts < ts:
                return close
        return None

    def total(self, currency: str) -> Decimal:
        """Return the sum of every settlement in ``currency``."""
        return sum((s.amount for s in self.settlements if s.currency == currency), Decimal(0))

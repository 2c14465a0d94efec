"""Funding of perpetual swaps: the one formula every ledger, book and twin calls, and a strategy's funding book.

A position of signed size ``q`` (base units for linear contracts: contracts x multiplier) pays at a
settlement ``-q * multiplier * mark * rate``: longs pay positive rates, shorts receive them.

``FundingBook`` is what a strategy knows of one perp's funding: the rates that settled and the one
announced for the next settlement; ``FundingBook.expected_apr`` is the expected funding every carry
strategy, and the vectorbt twin (``research.carry_vbt``), decides on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.model import FundingRateUpdate

from strategies.signals import annualize, expected_rate

# Settled rates a book keeps: far more than any lookback the parameter spaces allow.
SETTLED_KEPT = 1000


def funding_payment[T](position_size: T, multiplier: Any, mark_price: Any, rate: Any) -> T:
    """Return what a position of signed ``position_size`` contracts receives at one settlement.

    ``-position_size * multiplier * mark_price * rate``: works on ``Decimal`` (the ledger of record),
    float and numpy arrays (research vectors) alike; positive means received, negative paid.
    """
    result: T = -position_size * multiplier * mark_price * rate  # type: ignore[operator]
    return result


class FundingBook:
    """Funding updates of one perp: the rates that settled and the one announced for the next settlement."""

    def __init__(self) -> None:
        self.announced: dict[int, tuple[Decimal, int]] = {}
        self.settled: list[Decimal] = []
        self.interval_secs: int | None = None

    def add(self, update: FundingRateUpdate) -> None:
        """Record an update (its ``next_funding_ns`` and ``interval`` say when it settles)."""
        if update.next_funding_ns is None:
            return
        self.announce(update.next_funding_ns, update.rate, (update.interval or 0) * 60)

    def announce(self, settles_at_ns: int, rate: Decimal, interval_secs: int) -> None:
        """Record the ``rate`` announced to settle at ``settles_at_ns`` after an interval of ``interval_secs``."""
        self.announced[settles_at_ns] = (rate, interval_secs)

    def advance(self, now_ns: int) -> None:
        """Move every announced rate whose settlement instant has passed to ``settled``."""
        for settles_at in sorted(t for t in self.announced if t <= now_ns):
            rate, interval = self.announced.pop(settles_at)
            self.settled.append(rate)
            if interval > 0:
                self.interval_secs = interval
        del self.settled[:-SETTLED_KEPT]

    def predicted(self) -> tuple[Decimal, int] | None:
        """Return the rate and interval announced for the next settlement, if one is."""
        if not self.announced:
            return None
        return self.announced[min(self.announced)]

    def expected_apr(self, *, lookback: int, predicted_weight: Decimal) -> Decimal | None:
        """Return the expected funding as an APR on the perp's own clock, or None while warming up.

        ``strategies.signals.expected_rate`` of the last ``lookback`` settled rates and the announced
        one, annualised on the interval of the last settlement (before any, the announced one's).

        Raises
        ------
        ValueError
            If ``lookback < 1`` or ``predicted_weight`` is outside ``[0, 1]``.
        """
        next_one = self.predicted()
        rate = expected_rate(
            self.settled,
            next_one[0] if next_one else None,
            lookback=lookback,
            predicted_weight=predicted_weight,
        )
        interval = self.interval_secs or (next_one[1] if next_one else 0)
        if rate is None or interval <= 0:
            return None
        return annualize(rate, interval)

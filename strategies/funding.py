"""Funding of perpetual swaps: the one formula every ledger, book and twin calls, and a strategy's funding book.

A position of signed size ``q`` (base units for linear contracts: contracts x multiplier) pays at a
settlement ``-q * multiplier * mark * rate``: longs pay positive rates, shorts receive them.

``FundingBook`` is what a strategy knows of one perp's funding: the rates that settled and the one
announced for the next settlement; ``FundingBook.expected_apr`` is the expected funding every carry
strategy, and the vectorbt twin (``research.carry_vbt``), decides on.

A book may know its venue's funding clock (``clock_secs``: settlements on every multiple of it from
00:00 UTC) and complete updates with it: an update without an interval (Binance and Bybit streams on
Nautilus 2.0.0rc6) settles on the clock's interval, one without a settlement instant (Hyperliquid's
``activeAssetCtx``) at the clock's next boundary after its ``ts_event``. Catalog updates carry both
fields, so a backtest never reads the clock. A live node may ``seed`` the book with the rates that
settled before it started, so a carry decides without waiting ``lookback_settlements`` settlements.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nautilus_trader.model import FundingRateUpdate

from strategies.signals import NS_PER_SECOND, annualize, expected_rate

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
    """Funding updates of one perp: the rates that settled and the one announced for the next settlement.

    A carry asks for ``expected_apr`` on every bar but it changes only when an update arrives or a
    settlement passes: the book keeps its last answer until then, and ``advance`` is one comparison
    while no announced settlement is due.

    Parameters
    ----------
    clock_secs : int, optional
        The venue's funding interval: settlements on every multiple of it from 00:00 UTC. None: updates
        without an interval settle on none, updates without a settlement instant are dropped.
    """

    def __init__(self, clock_secs: int | None = None) -> None:
        self._clock_secs = clock_secs
        self._announced: dict[int, tuple[Decimal, int]] = {}
        self._settled: list[Decimal] = []
        self._interval_secs: int | None = None
        self._next_ns: int | None = None  # earliest announced settlement
        self._expected: tuple[int, Decimal, Decimal | None] | None = None  # (lookback, weight, answer)

    @property
    def announced(self) -> dict[int, tuple[Decimal, int]]:
        """Settlement instant (ns) -> (rate, interval secs) of the rates announced and not settled yet."""
        return self._announced

    @announced.setter
    def announced(self, value: dict[int, tuple[Decimal, int]]) -> None:
        self._announced = value
        self._changed()

    @property
    def settled(self) -> list[Decimal]:
        """Rates that settled, oldest first (the last ``SETTLED_KEPT``)."""
        return self._settled

    @settled.setter
    def settled(self, value: list[Decimal]) -> None:
        self._settled = value
        self._changed()

    @property
    def interval_secs(self) -> int | None:
        """Interval of the last settlement (None before any)."""
        return self._interval_secs

    @interval_secs.setter
    def interval_secs(self, value: int | None) -> None:
        self._interval_secs = value
        self._changed()

    def _changed(self) -> None:
        self._next_ns = min(self._announced) if self._announced else None
        self._expected = None

    def add(self, update: FundingRateUpdate) -> None:
        """Record an update (its ``next_funding_ns`` and ``interval``, else the clock's, say when it settles)."""
        clock = self._clock_secs
        settles_at = update.next_funding_ns
        if settles_at is None:
            if not clock:
                return
            clock_ns = clock * NS_PER_SECOND
            settles_at = (update.ts_event // clock_ns + 1) * clock_ns
        interval = update.interval * 60 if update.interval else clock or 0
        self.announce(settles_at, update.rate, interval)

    def seed(self, settled: list[tuple[Decimal, int]]) -> None:
        """Record ``(rate, interval secs)`` pairs that settled before the book's first update, oldest first."""
        if not settled:
            return
        self._settled = [*self._settled, *(rate for rate, _ in settled)][-SETTLED_KEPT:]
        self._interval_secs = settled[-1][1]
        self._changed()

    def announce(self, settles_at_ns: int, rate: Decimal, interval_secs: int) -> None:
        """Record the ``rate`` announced to settle at ``settles_at_ns`` after an interval of ``interval_secs``."""
        self._announced[settles_at_ns] = (rate, interval_secs)
        self._changed()

    def advance(self, now_ns: int) -> None:
        """Move every announced rate whose settlement instant has passed to ``settled``."""
        if self._next_ns is None or self._next_ns > now_ns:
            return
        for settles_at in sorted(t for t in self._announced if t <= now_ns):
            rate, interval = self._announced.pop(settles_at)
            self._settled.append(rate)
            if interval > 0:
                self._interval_secs = interval
        del self._settled[:-SETTLED_KEPT]
        self._changed()

    @property
    def next_settlement_ns(self) -> int | None:
        """The earliest announced settlement instant, None when none is: ``advance`` moves nothing before it."""
        return self._next_ns

    def predicted(self) -> tuple[Decimal, int] | None:
        """Return the rate and interval announced for the next settlement, if one is."""
        if self._next_ns is None:
            return None
        return self._announced[self._next_ns]

    def expected_apr(self, *, lookback: int, predicted_weight: Decimal) -> Decimal | None:
        """Return the expected funding as an APR on the perp's own clock, or None while warming up.

        ``strategies.signals.expected_rate`` of the last ``lookback`` settled rates and the announced
        one, annualised on the interval of the last settlement (before any, the announced one's).
        Computed once per change of the book (an update, a settlement) and parameters.

        Raises
        ------
        ValueError
            If ``lookback < 1`` or ``predicted_weight`` is outside ``[0, 1]``.
        """
        known = self._expected
        if known is not None and known[0] == lookback and known[1] == predicted_weight:
            return known[2]
        next_one = self.predicted()
        rate = expected_rate(
            self._settled,
            next_one[0] if next_one else None,
            lookback=lookback,
            predicted_weight=predicted_weight,
        )
        interval = self._interval_secs or (next_one[1] if next_one else 0)
        answer = None if rate is None or interval <= 0 else annualize(rate, interval)
        self._expected = (lookback, predicted_weight, answer)
        return answer

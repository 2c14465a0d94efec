"""What a paper or live node writes to its journal, from the events the node sees, as they happen.

``JournalRecorder`` turns Nautilus objects into ledger rows (the readers of ``engine.results.records``,
so the columns are the backtest's) and hands each event to ``Journal.record`` as one transaction:

- every order event the strategy receives (``engine.live.harness.journaled``): the order's row;
- every fill: the fill, its order, its position, the venue's balances and the strategy's saved state;
- every paper funding settlement (``PaperFunding``, via the session's ``on_settlement``);
- every risk-control decision published on the message bus;
- every acknowledged order's latencies (``engine.live.latency``) to ``order_latency``;
- the replay cursor after each event the node has fully processed, with the strategy's saved state.

Wall-clock timestamps of a replay are mapped to the historical time of the event being replayed
(``to_historical``), as the session report does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import polars as pl

from engine.live.funding import Settlement
from engine.live.journal import Journal
from engine.live.latency import OrderLatency
from engine.results import records
from engine.run_data import NS

RESTORE_TAG = "RESTORE"


class _Events:
    def __init__(self, event: Any) -> None:
        self._event = event

    def events(self) -> list[Any]:
        return [self._event]


def _rows(frame: pl.DataFrame, to_historical: Callable[[int], int]) -> list[dict[str, Any]]:
    times = [name for name, dtype in frame.schema.items() if dtype == NS]
    rows = frame.with_columns(pl.col(c).cast(pl.Int64) for c in times).to_dicts()
    for row in rows:
        for name in times:
            if row[name]:
                row[name] = to_historical(row[name])
    return rows


def is_restore(order: Any) -> bool:
    """Whether ``order`` re-opens a restored position (tagged ``RESTORE`` by the supervisor)."""
    return RESTORE_TAG in (order.tags or [])


class JournalRecorder:
    """Record a node's events to a ``Journal`` (see the module docstring).

    Parameters
    ----------
    journal : Journal
    to_historical : callable
        Maps the node's wall-clock nanoseconds to the ledger's time (identity outside a replay).
    venue_of, currency_of : dict[str, str]
        Instrument id -> configured venue name, -> settlement currency.
    venues : dict[str, Any]
        Configured venue name -> Nautilus ``Venue`` (whose account balances are snapshotted).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        to_historical: Callable[[int], int],
        venue_of: Mapping[str, str],
        currency_of: Mapping[str, str],
        venues: Mapping[str, Any],
    ) -> None:
        self.journal = journal
        self.to_historical = to_historical
        self.venue_of = dict(venue_of)
        self.currency_of = dict(currency_of)
        self.venues = dict(venues)

    def order_row(self, order: Any, reason: str | None = None) -> dict[str, Any]:
        """Return the journal row of ``order`` (its current state)."""
        reasons = {str(order.client_order_id): reason} if reason else {}
        row = _rows(records.orders_frame([order], reasons), self.to_historical)[0]
        row["restore"] = is_restore(order)
        return row

    def on_order_event(self, strategy: Any, event: Any) -> None:
        """Record the order ``event`` belongs to, in its state after the event."""
        order = strategy.cache.order(event.client_order_id)
        if order is None:
            return
        reason = getattr(event, "reason", None)
        self.journal.record({"orders": [self.order_row(order, str(reason) if reason else None)]})

    def on_fill(self, strategy: Any, event: Any) -> None:
        """Record a fill with its order, position, balances and the strategy's state, in one transaction."""
        cache = strategy.cache
        order = cache.order(event.client_order_id)
        fills = records.fills_frame([_Events(event)], self.venue_of, currency_of=self.currency_of)
        fill = _rows(fills, self.to_historical)[0]
        fill["trade_id"] = str(event.trade_id)
        fill["restore"] = order is not None and is_restore(order)
        rows: dict[str, list[dict[str, Any]]] = {"fills": [fill]}
        if order is not None:
            rows["orders"] = [self.order_row(order)]
        position = cache.position(event.position_id) if event.position_id is not None else None
        if position is not None:
            rows["positions"] = _rows(records.positions_frame([position], []), self.to_historical)
        venue = self.venue_of.get(str(event.instrument_id))
        rows["account"] = self.balances(cache, venue, ts=fill["ts"]) if venue is not None else []
        self.journal.record(rows, strategy_state=self.strategy_state(strategy))

    def balances(self, cache: Any, venue: str, *, ts: int) -> list[dict[str, Any]]:
        """Return the current balances of ``venue``'s account as ``account`` rows stamped ``ts``."""
        account = cache.account_for_venue(self.venues[venue]) if venue in self.venues else None
        if account is None:
            return []
        return [
            {
                "ts": ts,
                "venue": venue,
                "currency": str(currency.code),
                "total": balance.total.as_decimal(),
                "locked": balance.locked.as_decimal(),
                "free": balance.free.as_decimal(),
            }
            for currency, balance in account.balances().items()
        ]

    def snapshot(self, cache: Any, *, ts: int) -> None:
        """Record every venue's balances and every order's final state (at the stop)."""
        rows: dict[str, list[dict[str, Any]]] = {"orders": [self.order_row(o) for o in cache.orders()], "account": []}
        for venue in self.venues:
            rows["account"] += self.balances(cache, venue, ts=ts)
        self.journal.record(rows)

    def on_settlement(self, settlement: Settlement) -> None:
        """Record a paper funding settlement."""
        self.journal.record({"funding": [asdict(settlement)]})

    def on_risk_event(self, event: Mapping[str, Any]) -> None:
        """Record a risk-control decision (the dict published on the message bus)."""
        self.journal.record({"risk_events": [dict(event)]})

    def on_latency(self, latency: OrderLatency) -> None:
        """Record an acknowledged order's signal-to-submit and submit-to-ack (``ts_submit`` stays wall time)."""
        self.journal.record({"order_latency": [asdict(latency)]})

    def on_cursor(self, events: int, cursor_ns: int, strategy: Any) -> None:
        """Record that the replay processed ``events`` events (the last at ``cursor_ns``) and the strategy's state."""
        self.journal.record_cursor(events, cursor_ns, strategy_state=self.strategy_state(strategy))

    @staticmethod
    def strategy_state(strategy: Any) -> tuple[str, dict[str, bytes]]:
        """Return ``(strategy id, strategy.on_save())``."""
        state = strategy.on_save() or {}
        return str(strategy.strategy_id), {str(k): bytes(v) for k, v in state.items()}

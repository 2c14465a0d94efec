"""Anomaly halts of a paper or live node (``[live.anomalies]``, ``engine.config.AnomalyConfig``).

Five checks, each off unless configured:

- **connectivity**: a venue sent nothing for longer than ``max_disconnected_secs`` (wall clock, counted
  from the supervisor's start): market data reaching the strategy (bars, quotes, trades, mark prices,
  funding) or an order event. Set it above the slowest stream the strategy subscribes to;
- **ack_latency**: an order waited longer than ``max_ack_latency_ms`` for the venue's first answer (the
  submit-to-ack of ``engine.live.latency``), answered or still in flight;
- **unexplained_balance**: a venue balance moved by more than ``max_unexplained_balance_change`` between two
  readings (every second) with no fill on that venue, no booked funding settlement and no announced funding
  instant of it between them, give or take ``balance_grace_secs``;
- **position_mismatch**: the node's position at the venue (its cache, which Nautilus' reconciliation keeps
  equal to the venue's reports) differs from ours (the journal's fills before the session plus the
  strategy's own fills since) for longer than ``position_grace_secs``;
- **rejects**: ``max_rejects`` order rejections within ``reject_window_secs``.

A triggered check halts new exposure for the rest of the session (orders that are not reduce-only are
dropped; a ``strategies.risk`` strategy's gate is halted too, so it stops deciding), optionally flattens
(``flatten``: ``Strategy.market_exit()``), and records a risk event on ``RISK_EVENTS_TOPIC`` (the journal,
the ``carrylab_risk_events`` counter and ``risk_events.parquet`` take it from there) while the status line
and ``/healthz`` show the halt. Each check fires once per venue or instrument.

``AnomalyDetector`` is pure (an injected clock, no Nautilus); ``AnomalyMonitor`` feeds it from the node
(``watched`` wraps the strategy, the supervisor calls ``tick`` on the node's thread).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, get_args

from nautilus_trader.model import Venue

from engine.config import AnomalyConfig
from engine.live.latency import LatencyTracker, OrderLatency
from engine.live.logs import get_logger
from engine.live.replay import signed_quantity
from strategies.risk import RISK_EVENTS_TOPIC
from strategies.risk_limits import USD_LIKE

AnomalyKind = Literal["connectivity", "ack_latency", "unexplained_balance", "position_mismatch", "rejects"]
ANOMALY_KINDS: tuple[str, ...] = get_args(AnomalyKind)
NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000
# Balances and positions are read from the Nautilus cache at most this often (reading an account copies it).
ACCOUNT_CHECK_INTERVAL_NS = NS_PER_SECOND
DATA_HANDLERS = ("on_bar", "on_quote_tick", "on_trade_tick", "on_mark_price", "on_funding_rate")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One triggered check: what, on which venue or instrument, the value against its limit, and why."""

    kind: AnomalyKind
    subject: str
    value: str
    limit: str
    reason: str


@dataclass(slots=True)
class AnomalyDetector:
    """The state of the checks; fed events with times from one clock (ns), answers anomalies.

    Parameters
    ----------
    config : AnomalyConfig
    ours : mapping
        Instrument id -> our signed position when the session starts (the journal's fills).
    """

    config: AnomalyConfig
    ours: dict[str, Decimal] = field(default_factory=dict)
    last_seen: dict[str, int] = field(default_factory=dict)
    explained: dict[str, deque[int]] = field(default_factory=dict)
    balances: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    read_ns: dict[tuple[str, str], int] = field(default_factory=dict)
    mismatch_since: dict[str, int] = field(default_factory=dict)
    rejects: deque[int] = field(default_factory=deque)
    fired: set[tuple[str, str]] = field(default_factory=set)

    def arm(self, venues: list[str], now_ns: int) -> None:
        """Start the connectivity clocks of ``venues`` at ``now_ns``."""
        for venue in venues:
            self.last_seen.setdefault(venue, now_ns)

    def seen(self, venue: str, now_ns: int) -> None:
        """Record that ``venue`` sent something."""
        self.last_seen[venue] = now_ns

    def explain(self, venue: str, ts_ns: int) -> None:
        """Record a fill, booked settlement or announced funding instant of ``venue`` at ``ts_ns``."""
        instants = self.explained.setdefault(venue, deque(maxlen=64))
        instants.append(ts_ns)

    def filled(self, venue: str, instrument_id: str, signed: Decimal, now_ns: int, *, own: bool) -> None:
        """Record a fill; ``own`` fills (not reconciliation's) move our position."""
        self.seen(venue, now_ns)
        self.explain(venue, now_ns)
        if own:
            self.ours[instrument_id] = self.ours.get(instrument_id, Decimal(0)) + signed

    def rejected(self, instrument_id: str, now_ns: int) -> Anomaly | None:
        """Record a rejection; return the anomaly once ``max_rejects`` fall within the window."""
        limit = self.config.max_rejects
        if limit is None:
            return None
        window_ns = int(self.config.reject_window_secs * NS_PER_SECOND)
        self.rejects.append(now_ns)
        while self.rejects and self.rejects[0] <= now_ns - window_ns:
            self.rejects.popleft()
        if len(self.rejects) < limit:
            return None
        return self._fire(
            "rejects",
            "orders",
            value=str(len(self.rejects)),
            limit=str(limit),
            reason=f"{len(self.rejects)} orders rejected within {self.config.reject_window_secs} s "
            f"(last on {instrument_id}), max_rejects {limit}",
        )

    def acknowledged(self, instrument_id: str, latency_ns: int) -> Anomaly | None:
        """Check one order's submit-to-ack."""
        limit = self.config.max_ack_latency_ms
        if limit is None or latency_ns <= limit * NS_PER_MS:
            return None
        return self._fire(
            "ack_latency",
            instrument_id,
            value=f"{latency_ns / NS_PER_MS:.3f}",
            limit=str(limit),
            reason=f"order on {instrument_id} waited {latency_ns / NS_PER_MS:.1f} ms for the venue's answer, "
            f"above max_ack_latency_ms {limit}",
        )

    def check(
        self,
        now_ns: int,
        *,
        in_flight_ns: Mapping[str, int] | None = None,
        balances: Mapping[tuple[str, str], Decimal] | None = None,
        positions: Mapping[str, Decimal] | None = None,
    ) -> list[Anomaly]:
        """Run the time-based checks at ``now_ns``.

        ``in_flight_ns``: instrument id -> the longest wait of its unanswered orders; ``balances``:
        (venue, currency) -> total; ``positions``: instrument id -> signed position at the venue (None:
        not read this time).
        """
        found = [*self._connectivity(now_ns)]
        for instrument_id, waited in (in_flight_ns or {}).items():
            found.append(self.acknowledged(instrument_id, waited))
        if balances is not None:
            found += self._balances(now_ns, balances)
        if positions is not None:
            found += self._positions(now_ns, positions)
        return [anomaly for anomaly in found if anomaly is not None]

    def _connectivity(self, now_ns: int) -> list[Anomaly | None]:
        limit = self.config.max_disconnected_secs
        if limit is None:
            return []
        found = []
        for venue, last in self.last_seen.items():
            silent = (now_ns - last) / NS_PER_SECOND
            if silent > limit:
                reason = f"{venue} sent nothing for {silent:.1f} s, above max_disconnected_secs {limit}"
                found.append(self._fire("connectivity", venue, value=f"{silent:.3f}", limit=str(limit), reason=reason))
        return found

    def _balances(self, now_ns: int, balances: Mapping[tuple[str, str], Decimal]) -> list[Anomaly | None]:
        limit = self.config.max_unexplained_balance_change
        if limit is None:
            return []
        grace_ns = int(self.config.balance_grace_secs * NS_PER_SECOND)
        found = []
        for (venue, currency), total in balances.items():
            before = self.balances.get((venue, currency))
            read_ns = self.read_ns.get((venue, currency), now_ns)
            self.balances[(venue, currency)], self.read_ns[(venue, currency)] = total, now_ns
            if before is None or abs(total - before) <= limit:
                continue
            # Explained by a fill or settlement since the previous reading (or within the grace around it).
            if any(read_ns - grace_ns <= ts <= now_ns + grace_ns for ts in self.explained.get(venue, ())):
                continue
            change = total - before
            reason = (
                f"{venue} {currency} balance moved {change:+} ({before} -> {total}) with no fill or funding "
                f"settlement within {self.config.balance_grace_secs} s, above max_unexplained_balance_change {limit}"
            )
            found.append(
                self._fire(
                    "unexplained_balance", f"{venue} {currency}", value=str(change), limit=str(limit), reason=reason
                )
            )
        return found

    def _positions(self, now_ns: int, positions: Mapping[str, Decimal]) -> list[Anomaly | None]:
        if not self.config.check_positions:
            return []
        grace_ns = int(self.config.position_grace_secs * NS_PER_SECOND)
        found = []
        for instrument_id in sorted({*positions, *self.ours}):
            venue, ours = positions.get(instrument_id, Decimal(0)), self.ours.get(instrument_id, Decimal(0))
            if venue == ours:
                self.mismatch_since.pop(instrument_id, None)
                continue
            since = self.mismatch_since.setdefault(instrument_id, now_ns)
            if now_ns - since < grace_ns:
                continue
            reason = (
                f"{instrument_id}: the venue holds {venue}, our fills say {ours}, for "
                f"{(now_ns - since) / NS_PER_SECOND:.1f} s after reconciliation"
            )
            found.append(
                self._fire("position_mismatch", instrument_id, value=str(venue), limit=str(ours), reason=reason)
            )
        return found

    def _fire(self, kind: AnomalyKind, subject: str, *, value: str, limit: str, reason: str) -> Anomaly | None:
        if (kind, subject) in self.fired:
            return None
        self.fired.add((kind, subject))
        return Anomaly(kind=kind, subject=subject, value=value, limit=limit, reason=reason)


class AnomalyMonitor:
    """Feed an ``AnomalyDetector`` from a node and act on what it finds (see the module docstring).

    Parameters
    ----------
    config : AnomalyConfig
    venues : list of str
        Nautilus venue names (``BINANCE``) of the configured instruments.
    instrument_ids : list of str
    ours : mapping
        Our signed positions when the session starts (live: the journal's fills; paper: none, the
        restore orders are the strategy's own).
    tracker : LatencyTracker
        The node's latency tracker: its unanswered orders, and each answered one (as a listener).
    ts_ns : callable
        The time risk events are stamped with (a replay's historical time, else the wall clock).
    clock_ns : callable
        The wall clock the checks run on.
    """

    def __init__(
        self,
        config: AnomalyConfig,
        *,
        venues: list[str],
        instrument_ids: list[str],
        ours: Mapping[str, Decimal],
        tracker: LatencyTracker,
        ts_ns: Callable[[], int],
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.venues = venues
        self.instrument_ids = instrument_ids
        self.detector = AnomalyDetector(config, ours={k: v for k, v in ours.items() if v})
        self.tracker = tracker
        self.ts_ns = ts_ns
        self.clock_ns = clock_ns
        self.lock = threading.Lock()
        self.found: list[Anomaly] = []
        self.halted_reason: str | None = None
        self.flattened = False
        self.armed = False
        self.next_account_check_ns = 0
        self.log = get_logger("anomalies")
        tracker.listeners.append(self.on_latency)

    def on_latency(self, latency: OrderLatency) -> None:
        """Check an answered order's submit-to-ack (a ``LatencyTracker`` listener)."""
        self._queue(self._call(lambda d: d.acknowledged(latency.instrument_id, latency.submit_to_ack_ns)))

    def on_data(self, venue: str) -> None:
        """Record that market data of ``venue`` reached the strategy."""
        with self.lock:
            self.detector.seen(venue, self.clock_ns())

    def on_funding_instant(self, venue: str, next_funding_ns: int) -> None:
        """Record a funding instant ``venue`` announced: a balance may move around it."""
        with self.lock:
            self.detector.explain(venue, next_funding_ns)

    def on_settlement(self, instrument_id: str) -> None:
        """Explain a balance change: paper funding booked into the sandbox account of ``instrument_id``'s venue."""
        with self.lock:
            self.detector.explain(instrument_id.rsplit(".", 1)[-1], self.clock_ns())

    def on_fill(self, event: Any) -> None:
        """Record an ``OrderFilled`` (a reconciliation fill is not ours)."""
        quantity = event.last_qty.as_decimal()
        signed = quantity if event.is_buy else -quantity
        instrument_id = event.instrument_id
        with self.lock:
            self.detector.filled(
                instrument_id.venue.value, str(instrument_id), signed, self.clock_ns(), own=not event.reconciliation
            )

    def on_order_event(self, event: Any) -> None:
        """Record that an order event of the venue arrived."""
        with self.lock:
            self.detector.seen(event.instrument_id.venue.value, self.clock_ns())

    def on_reject(self, event: Any) -> None:
        """Record an ``OrderRejected``; the halt is immediate once ``max_rejects`` fall within the window."""
        instrument_id = event.instrument_id
        self.on_order_event(event)
        self._queue(self._call(lambda d: d.rejected(str(instrument_id), self.clock_ns())))

    def _call(self, call: Callable[[AnomalyDetector], Anomaly | None]) -> Anomaly | None:
        with self.lock:
            return call(self.detector)

    def _queue(self, anomaly: Anomaly | None) -> None:
        # Found in an order handler: halt at once (the next order is dropped), act on the supervisor's tick.
        if anomaly is not None:
            with self.lock:
                self.found.append(anomaly)
                if self.halted_reason is None:
                    self.halted_reason = _halt_reason(anomaly)

    @property
    def halted(self) -> bool:
        """Whether a check triggered (new exposure refused for the rest of the session)."""
        return self.halted_reason is not None

    def tick(self, actor: Any, strategy: Any) -> None:
        """Run the checks and act on what they find; on the node's thread (the supervisor's timer)."""
        now = self.clock_ns()
        if not self.armed:
            self.armed = True
            with self.lock:
                self.detector.arm(self.venues, now)
        balances = positions = None
        if now >= self.next_account_check_ns:
            self.next_account_check_ns = now + ACCOUNT_CHECK_INTERVAL_NS
            if self.config.max_unexplained_balance_change is not None:
                balances = _balances(strategy, self.venues)
            if self.config.check_positions:
                positions = _positions(strategy, self.instrument_ids)
        waits = _waits_ns(self.tracker) if self.config.max_ack_latency_ms is not None else None
        with self.lock:
            found = [*self.found, *self.detector.check(now, in_flight_ns=waits, balances=balances, positions=positions)]
            self.found.clear()
        for anomaly in found:
            self.act(anomaly, actor, strategy)

    def act(self, anomaly: Anomaly, actor: Any, strategy: Any) -> None:
        """Halt, optionally flatten, and publish the risk event of ``anomaly``."""
        reason = _halt_reason(anomaly)
        if self.halted_reason is None:
            self.halted_reason = reason
        gate = getattr(strategy, "gate", None)  # a strategies.risk strategy stops deciding too
        if gate is not None and gate.halted_reason is None:
            gate.halted_reason, gate.halted_until_ns = reason, None
        flatten = self.config.flatten
        self.log.warning("anomaly", kind=anomaly.kind, subject=anomaly.subject, reason=anomaly.reason, flatten=flatten)
        event = {
            "ts": self.ts_ns(),
            "strategy_id": str(strategy.strategy_id),
            "control": anomaly.kind,
            "action": "flatten" if flatten else "halt",
            "instrument_id": anomaly.subject,
            "value": anomaly.value,
            "limit": anomaly.limit,
            "reason": reason,
        }
        actor.publish_message(RISK_EVENTS_TOPIC, event)
        if flatten and not self.flattened:
            self.flattened = True
            strategy.market_exit()


def watched(strategy_class: type, monitor: AnomalyMonitor) -> type:
    """Return a subclass that feeds ``monitor`` (data, fills, rejects, order events) and, once it halted,
    drops every order that is not reduce-only.

    Apply it inside ``stoppable`` and outside ``timed``, so a dropped order is never counted as submitted.
    """
    log = get_logger("anomalies")

    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        if monitor.halted and not order.is_reduce_only:
            log.warning("order dropped: halted", instrument_id=str(order.instrument_id), reason=monitor.halted_reason)
            return None
        return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]

    def data_handler(name: str) -> Any:
        def handle(self: Any, data: Any) -> Any:
            instrument_id = getattr(data, "instrument_id", None)
            if instrument_id is None:
                instrument_id = data.bar_type.instrument_id
            venue = instrument_id.venue.value
            monitor.on_data(venue)
            next_funding_ns = getattr(data, "next_funding_ns", None)
            if next_funding_ns:
                monitor.on_funding_instant(venue, next_funding_ns)
            return getattr(strategy_class, name)(self, data)

        return handle

    def on_order_filled(self: Any, event: Any) -> None:
        monitor.on_fill(event)
        strategy_class.on_order_filled(self, event)  # type: ignore[attr-defined]

    def on_order_rejected(self: Any, event: Any) -> None:
        monitor.on_reject(event)
        strategy_class.on_order_rejected(self, event)  # type: ignore[attr-defined]

    def on_order_accepted(self: Any, event: Any) -> None:
        monitor.on_order_event(event)
        strategy_class.on_order_accepted(self, event)  # type: ignore[attr-defined]

    namespace: dict[str, Any] = {name: data_handler(name) for name in DATA_HANDLERS}
    namespace.update(
        submit_order=submit_order,
        on_order_filled=on_order_filled,
        on_order_rejected=on_order_rejected,
        on_order_accepted=on_order_accepted,
    )
    return type(strategy_class.__name__, (strategy_class,), namespace)


def _halt_reason(anomaly: Anomaly) -> str:
    return f"anomaly {anomaly.kind}: {anomaly.reason}"


def _waits_ns(tracker: LatencyTracker) -> dict[str, int]:
    now = time.perf_counter_ns()
    waits: dict[str, int] = {}
    with tracker.lock:
        for order in tracker.in_flight.values():
            waits[order.instrument_id] = max(waits.get(order.instrument_id, 0), now - order.submit_ns)
    return waits


def _balances(strategy: Any, venues: list[str]) -> dict[tuple[str, str], Decimal]:
    found = {}
    for venue in venues:
        account = strategy.portfolio.account(Venue(venue))
        if account is None:
            continue
        for currency, money in account.balances_total().items():
            if currency.code in USD_LIKE:
                found[(venue, str(currency.code))] = money.as_decimal()
    return found


def _positions(strategy: Any, instrument_ids: list[str]) -> dict[str, Decimal]:
    found: dict[str, Decimal] = {}
    wanted = set(instrument_ids)
    for position in strategy.cache.positions_open():
        instrument_id = str(position.instrument_id)
        if instrument_id in wanted:
            found[instrument_id] = found.get(instrument_id, Decimal(0)) + signed_quantity(position)
    return {k: v for k, v in found.items() if v}

"""Inside the node: the supervisor actor (status line, funding on venue data, graceful stop) and metrics.

``Supervisor`` is a Nautilus ``DataActor`` on a 100 ms wall-clock timer. Each tick it

- stops the node gracefully once a stop was requested (signal, replay finished, ``--duration-secs``):
  cancel the strategy's open orders, optionally flatten its positions, wait for the venue's answers
  (bounded), then stop the node;
- settles funding that fell due (paper on venue data; in replay the replay client settles, in stream order);
  once the settlements are booked into the sandbox account, publishes them on ``FUNDING_BOOKED_TOPIC``
  so risk-managed strategies re-read their balances;
- re-opens the positions of a restarted paper node (market orders tagged ``RESTORE``) on its first bar;
- calls ``on_tick`` (the session backs its journal up daily there);
- runs the anomaly checks (``engine.live.anomalies``) when configured;
- copies the strategy's halt (``strategies.risk_limits.RiskGate.halted_reason``, else an anomaly's) into
  ``NodeStatus``, refreshes the metrics snapshot every second and logs a status line every
  ``status_interval_secs`` (latency percentiles included, ``engine.live.latency``).

``NodeMetrics`` is the node's own ``prometheus_client`` registry (one per node, never the global one, so
a process can run several): gauges read from the snapshot at scrape time, latency histograms, risk-event
and data-gap counters. ``health`` judges the node (stale data, a halted strategy). ``MetricsServer``
serves ``/metrics`` and ``/healthz`` on 127.0.0.1 by default.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nautilus_trader.common import DataActor
from nautilus_trader.model import (
    Bar,
    BarType,
    FundingRateUpdate,
    InstrumentId,
    MarkPriceUpdate,
    OrderSide,
    PositionSide,
)
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from engine.live.anomalies import AnomalyMonitor
from engine.live.funding import PaperFunding, Settlement
from engine.live.latency import LatencyTracker, OrderLatency
from engine.live.logs import get_logger
from engine.live.replay import PENDING, signed_quantity
from strategies.positions import average_open_price, position_fills
from strategies.risk import FUNDING_BOOKED_TOPIC, RiskManagedStrategy

TICK_NS = 100_000_000
STOP_TIMEOUT_SECS = 10.0
SNAPSHOT_INTERVAL_SECS = 1.0
# Seconds: from a fraction of a millisecond (signal-to-submit) to the venue's round trips (submit-to-ack).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class NodeStatus:
    """What the node reports: filled by the supervisor, read by the status line, metrics, health and state.

    ``streams`` holds the ``ts_event`` of the last event per ``(instrument id, stream)`` (``bars``,
    ``mark_prices``, ``funding_rates``: what the supervisor subscribes to), ``data_gaps`` how often a
    stream resumed after a silence longer than ``max_data_age_secs``.
    """

    last_data_ns: dict[str, int] = field(default_factory=dict)
    last_price: dict[str, Decimal] = field(default_factory=dict)
    bars: list[tuple[str, int, Decimal]] = field(default_factory=list)
    processed_bar_ns: dict[str, int] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    streams: dict[tuple[str, str], int] = field(default_factory=dict)
    data_gaps: dict[tuple[str, str], int] = field(default_factory=dict)
    max_data_age_secs: float | None = None
    halted_reason: str | None = None
    latency: LatencyTracker = field(default_factory=LatencyTracker)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, instrument_id: str, stream: str, ts_event: int) -> None:
        """Record an event of ``stream`` (call with ``lock`` held)."""
        key = (instrument_id, stream)
        previous = self.streams.get(key)
        limit = self.max_data_age_secs
        if previous is not None and limit is not None and ts_event - previous > limit * 1e9:
            self.data_gaps[key] = self.data_gaps.get(key, 0) + 1
        self.streams[key] = ts_event
        self.last_data_ns[instrument_id] = max(ts_event, self.last_data_ns.get(instrument_id, ts_event))


@dataclass(slots=True)
class StopRequest:
    """A request to stop the node: why, and whether to flatten first (set from any thread)."""

    reason: str = ""
    flatten: bool = False
    event: threading.Event = field(default_factory=threading.Event)

    def request(self, reason: str, *, flatten: bool) -> None:
        """Ask the node to stop; the first reason wins."""
        if not self.event.is_set():
            self.reason = reason
            self.flatten = flatten
            self.event.set()


class Supervisor(DataActor):  # type: ignore[misc]
    """Status, funding on venue data and graceful stop of one node (see the module docstring)."""

    def __new__(cls, **_: Any) -> Supervisor:
        # DataActor is a Rust type whose __new__ takes only its own config.
        instance: Supervisor = super().__new__(cls)
        return instance

    def __init__(
        self,
        *,
        strategy: Any,
        instrument_ids: list[InstrumentId],
        bar_spec: str,
        status: NodeStatus,
        stop: StopRequest,
        stop_node: Callable[[], None],
        now_ns: Callable[[], int],
        status_interval_secs: float,
        funding: PaperFunding,
        settle_funding: bool,
        on_settlement: Callable[[Settlement], None],
        restore: dict[str, Decimal] | None = None,
        on_started: Callable[[], None] = lambda: None,
        on_tick: Callable[[], None] = lambda: None,
        funding_booked: Callable[[], list[Settlement]] = lambda: [],
        anomalies: AnomalyMonitor | None = None,
    ) -> None:
        super().__init__()
        self.strategy = strategy
        self.instrument_ids = instrument_ids
        self.bar_spec = bar_spec
        self.status = status
        self.stop_request = stop
        self.stop_node = stop_node
        self.now_ns = now_ns
        self.status_interval_secs = status_interval_secs
        self.funding = funding
        self.settle_funding = settle_funding
        self.on_settlement = on_settlement
        self.restore = dict(restore or {})
        self.on_started = on_started
        self.on_tick = on_tick
        self.funding_booked = funding_booked
        self.anomalies = anomalies
        self.stopping_since: float | None = None
        self.stopped = False
        # Positions still open when a flattening stop gave up (the venue refused or never filled the close).
        self.open_after_flatten: list[str] = []
        self.last_status = time.monotonic()
        self.last_snapshot = 0.0
        self.log_ = get_logger("supervisor")

    def on_start(self) -> None:
        for instrument_id in self.instrument_ids:
            self.subscribe_bars(BarType.from_str(f"{instrument_id}-{self.bar_spec}"))
            if self.settle_funding and str(instrument_id) in self.funding.terms:
                self.subscribe_funding_rates(instrument_id)
                self.subscribe_mark_prices(instrument_id)
        self.clock.set_timer_ns("supervisor", TICK_NS, callback=self._tick)
        self.on_started()

    def on_bar(self, bar: Bar) -> None:
        instrument_id = str(bar.bar_type.instrument_id)
        close = bar.close.as_decimal()
        if instrument_id in self.restore:
            self._restore(bar.bar_type.instrument_id, self.restore.pop(instrument_id))
        with self.status.lock:
            self.status.observe(instrument_id, "bars", bar.ts_event)
            self.status.last_price[instrument_id] = close
            self.status.bars.append((instrument_id, bar.ts_event, close))
            self.status.processed_bar_ns[str(bar.bar_type)] = bar.ts_init
        if self.settle_funding:
            self.funding.on_close(instrument_id, ts=bar.ts_event, price=close)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        instrument_id = str(mark_price.instrument_id)
        with self.status.lock:
            self.status.observe(instrument_id, "mark_prices", mark_price.ts_event)
        if self.settle_funding:
            self.funding.on_mark(instrument_id, ts=mark_price.ts_event, price=mark_price.value.as_decimal())

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
        with self.status.lock:
            self.status.observe(str(funding_rate.instrument_id), "funding_rates", funding_rate.ts_event)
        if self.settle_funding:
            self.funding.on_funding(
                str(funding_rate.instrument_id),
                rate=Decimal(str(funding_rate.rate)),
                next_funding_ns=funding_rate.next_funding_ns,
            )

    def _restore(self, instrument_id: InstrumentId, size: Decimal) -> None:
        # Re-open a position the journal holds, on the strategy's behalf, on the first bar after the restart:
        # in a replay that is the last bar before the cursor, re-emitted at once (the journal's last price).
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            self.log_.error("cannot restore position: instrument unknown", instrument_id=str(instrument_id))
            return
        quantity = instrument.make_qty(float(abs(size)), round_down=True)
        side = OrderSide.BUY if size > 0 else OrderSide.SELL
        self.log_.info("restoring position", instrument_id=str(instrument_id), size=str(size))
        self.strategy.submit_order(self.strategy.order_factory.market(instrument_id, side, quantity, tags=["RESTORE"]))

    def _close_external_positions(self) -> None:
        # Positions recovered by reconciliation belong to no strategy (EXTERNAL): close them explicitly.
        own = self.strategy.strategy_id
        for position in self.cache.positions_open():
            if position.strategy_id == own or position.instrument_id not in self.instrument_ids:
                continue
            side = OrderSide.SELL if position.side == PositionSide.LONG else OrderSide.BUY
            order = self.strategy.order_factory.market(
                position.instrument_id, side, position.quantity, reduce_only=True, tags=["FLATTEN"]
            )
            self.log_.info("closing recovered position", position_id=str(position.id), quantity=str(position.quantity))
            self.strategy.submit_order(order)

    def _tick(self, event: Any) -> None:
        if self.stopped:
            return
        self.on_tick()
        if self.settle_funding:
            self._settle_due()
        booked = self.funding_booked()
        if booked:
            self.publish_message(FUNDING_BOOKED_TOPIC, {"settlements": [s.to_json() for s in booked]})
        if self.anomalies is not None:
            self.anomalies.tick(self, self.strategy)
        gate = getattr(self.strategy, "gate", None)  # strategies.risk.RiskManagedStrategy's RiskGate
        halted = getattr(gate, "halted_reason", None)
        if halted is None and self.anomalies is not None:
            halted = self.anomalies.halted_reason
        with self.status.lock:
            self.status.halted_reason = None if halted is None else str(halted)
        now = time.monotonic()
        if now - self.last_status >= self.status_interval_secs:
            self.last_status = self.last_snapshot = now
            self.log_.info("status", **self.refresh())
        elif now - self.last_snapshot >= SNAPSHOT_INTERVAL_SECS:
            self.last_snapshot = now
            self.refresh()
        if self.stop_request.event.is_set():
            self._stop_step()

    def _settle_due(self) -> None:
        for instrument_id, ts in self.funding.due(self.clock.timestamp_ns()):
            size, position_id = Decimal(0), ""
            for position in self.cache.positions_open():
                if str(position.instrument_id) == instrument_id:
                    size += signed_quantity(position)
                    position_id = str(position.id)
            settlement = self.funding.settle(instrument_id, ts, position_size=size, position_id=position_id)
            if settlement is not None:
                self.on_settlement(settlement)

    def _stop_step(self) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            self.log_.info("stopping", reason=self.stop_request.reason, flatten=self.stop_request.flatten)
            if self.stop_request.flatten:
                # Cancels open orders, closes positions and denies new entries until flat.
                self.strategy.market_exit()
                self._close_external_positions()
            else:
                for instrument_id in self.instrument_ids:
                    self.strategy.cancel_all_orders(instrument_id)
            return
        pending = [o for o in self.cache.orders() if o.status in PENDING or o.is_open]
        flat = not self.stop_request.flatten or not self.cache.positions_open()
        timed_out = time.monotonic() - self.stopping_since > STOP_TIMEOUT_SECS
        if (not pending and flat) or timed_out:
            if timed_out:
                self.log_.warning("stop timeout", pending_orders=len(pending), flat=flat)
            if not flat:
                self.open_after_flatten = sorted(str(p.instrument_id) for p in self.cache.positions_open())
            self.stopped = True
            self.log_.info("status", **self.refresh())
            self.clock.cancel_timer("supervisor")
            self.stop_node()

    def refresh(self) -> dict[str, Any]:
        """Recompute the status snapshot (positions, exposure, PnL, data ages) and return it."""
        now = self.now_ns()
        positions: dict[str, str] = {}
        exposure: dict[str, Decimal] = {}
        unrealized: dict[str, Decimal] = {}
        realized: dict[str, Decimal] = {}
        with self.status.lock:
            prices = dict(self.status.last_price)
            ages = {i: round((now - ts) / 1e9, 3) for i, ts in self.status.last_data_ns.items()}
        for position in self.cache.positions():
            currency = str(position.settlement_currency.code)
            if position.realized_pnl is not None:
                realized[currency] = realized.get(currency, Decimal(0)) + position.realized_pnl.as_decimal()
        for position in self.cache.positions_open():
            instrument_id = str(position.instrument_id)
            size = signed_quantity(position)
            multiplier = position.multiplier.as_decimal()
            currency = str(position.settlement_currency.code)
            positions[instrument_id] = str(size)
            price = prices.get(instrument_id)
            if price is not None:
                exposure[currency] = exposure.get(currency, Decimal(0)) + abs(size) * price * multiplier
                entry = average_open_price(position_fills(position))
                unrealized[currency] = unrealized.get(currency, Decimal(0)) + size * (price - entry) * multiplier
        funding: dict[str, Decimal] = {}
        for settlement in self.funding.settlements:
            funding[settlement.currency] = funding.get(settlement.currency, Decimal(0)) + settlement.amount
        currencies = sorted(set(realized) | set(unrealized) | set(funding))
        pnl = {
            c: realized.get(c, Decimal(0)) + unrealized.get(c, Decimal(0)) + funding.get(c, Decimal(0))
            for c in currencies
        }
        snapshot = {
            "positions": positions,
            "exposure": {c: str(v) for c, v in exposure.items()},
            "pnl": {c: str(v) for c, v in pnl.items()},
            "pnl_realized": {c: str(v) for c, v in realized.items()},
            "pnl_unrealized": {c: str(v) for c, v in unrealized.items()},
            "funding": {c: str(v) for c, v in funding.items()},
            "data_age_secs": ages,
            "orders": len(self.cache.orders()),
            "open_orders": len(self.cache.orders_open()),
            "latency_ms": self.status.latency.percentiles(),
        }
        if isinstance(self.strategy, RiskManagedStrategy) and (distances := self.strategy.liquidation_distances()):
            # Each open perp leg's liquidation price distance to its last price, in percent (strategies.risk).
            snapshot["liquidation_distance_pct"] = {i: str(d.quantize(Decimal("0.01"))) for i, d in distances.items()}
        if self.status.halted_reason is not None:
            snapshot["halted"] = self.status.halted_reason
        with self.status.lock:
            self.status.snapshot = snapshot
        return snapshot


def data_ages_secs(status: NodeStatus, now_ns: int) -> dict[tuple[str, str], float]:
    """Return the age of the last event per ``(instrument id, stream)`` at ``now_ns``, in seconds."""
    with status.lock:
        streams = dict(status.streams)
    return {key: round(max(now_ns - ts, 0) / 1e9, 3) for key, ts in streams.items()}


def health(status: NodeStatus, *, now_ns: int) -> tuple[bool, dict[str, Any]]:
    """Judge the node: unhealthy when a stream's last event is older than ``max_data_age_secs`` or the strategy halted.

    Returns ``(healthy, body)``; the body names every reason. A stream counts from its first event.
    """
    ages = data_ages_secs(status, now_ns)
    with status.lock:
        limit, halted = status.max_data_age_secs, status.halted_reason
    reasons = []
    if limit is not None:
        reasons += [
            f"stale data: {instrument_id} {stream} is {age} s old, above max_data_age_secs {limit}"
            for (instrument_id, stream), age in sorted(ages.items())
            if age > limit
        ]
    if halted is not None:
        reasons.append(f"strategy halted: {halted}")
    body = {
        "status": "unhealthy" if reasons else "ok",
        "reasons": reasons,
        "data_age_secs": {f"{i} {s}": age for (i, s), age in sorted(ages.items())},
        "max_data_age_secs": limit,
        "halted": halted,
    }
    return not reasons, body


class _SnapshotCollector(Collector):  # type: ignore[misc]
    # Gauges read at scrape time from the supervisor's snapshot (refreshed every second on the node's thread,
    # which alone may touch the Nautilus cache) and from the stream times (ages are computed now).
    def __init__(self, status: NodeStatus, now_ns: Callable[[], int]) -> None:
        self.status = status
        self.now_ns = now_ns

    def collect(self) -> Iterator[Metric]:
        with self.status.lock:
            snapshot = dict(self.status.snapshot)
            gaps = dict(self.status.data_gaps)
        now = self.now_ns()
        ages = data_ages_secs(self.status, now)
        yield GaugeMetricFamily("carrylab_up", "1 while the node runs.", value=1)
        yield _gauge(
            "carrylab_position_quantity", "Signed open position.", ["instrument_id"], snapshot.get("positions")
        )
        yield _gauge(
            "carrylab_exposure",
            "Gross notional of open positions at the last price.",
            ["currency"],
            snapshot.get("exposure"),
        )
        yield _gauge("carrylab_pnl", "Realised + unrealised + funding PnL.", ["currency"], snapshot.get("pnl"))
        components = GaugeMetricFamily(
            "carrylab_pnl_component",
            "PnL by component: realized, unrealized, funding.",
            labels=["currency", "component"],
        )
        for component, key in (("realized", "pnl_realized"), ("unrealized", "pnl_unrealized"), ("funding", "funding")):
            for currency, value in sorted(snapshot.get(key, {}).items()):
                components.add_metric([currency, component], float(value))
        yield components
        yield _gauge("carrylab_funding", "Funding settled so far.", ["currency"], snapshot.get("funding"))
        yield _gauge(
            "carrylab_liquidation_distance_pct",
            "Distance of an open perp leg's liquidation price to its last price, in percent.",
            ["instrument_id"],
            snapshot.get("liquidation_distance_pct"),
        )
        freshest: dict[str, float] = {}
        for (instrument_id, _), age in ages.items():
            freshest[instrument_id] = min(age, freshest.get(instrument_id, age))
        yield _gauge(
            "carrylab_last_data_age_seconds", "Age of the freshest data per instrument.", ["instrument_id"], freshest
        )
        per_stream = GaugeMetricFamily(
            "carrylab_data_age_seconds", "Age of the last event per stream.", labels=["instrument_id", "stream"]
        )
        for (instrument_id, stream), age in sorted(ages.items()):
            per_stream.add_metric([instrument_id, stream], age)
        yield per_stream
        gap_counter = CounterMetricFamily(
            "carrylab_data_gaps",
            "Times a stream resumed after a silence above max_data_age_secs (a reconnect, as the node sees it).",
            labels=["instrument_id", "stream"],
        )
        for (instrument_id, stream), count in sorted(gaps.items()):
            gap_counter.add_metric([instrument_id, stream], count)
        yield gap_counter
        healthy, body = health(self.status, now_ns=now)
        yield GaugeMetricFamily("carrylab_healthy", "1 while /healthz answers 200.", value=int(healthy))
        yield GaugeMetricFamily(
            "carrylab_halted", "1 while the strategy's risk gate is halted.", value=int(bool(body["halted"]))
        )
        yield GaugeMetricFamily("carrylab_orders", "Orders in the node's cache.", value=snapshot.get("orders", 0))
        yield GaugeMetricFamily("carrylab_open_orders", "Open orders.", value=snapshot.get("open_orders", 0))


def _gauge(name: str, help_text: str, labels: list[str], values: Mapping[str, Any] | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for item, value in sorted((values or {}).items()):
        family.add_metric([item], float(value))
    return family


class NodeMetrics:
    """The Prometheus metrics of one node, in a registry of its own (see the module docstring).

    Parameters
    ----------
    status : NodeStatus
    now_ns : callable
        The node's "now" for data ages (a replay's historical time, else the wall clock).
    """

    def __init__(self, status: NodeStatus, *, now_ns: Callable[[], int]) -> None:
        self.status = status
        self.now_ns = now_ns
        self.registry = CollectorRegistry()
        self.registry.register(_SnapshotCollector(status, now_ns))
        self.signal_to_submit = Histogram(
            "carrylab_signal_to_submit_seconds",
            "From the event a decision was taken on reaching the strategy to submit_order (wall clock).",
            ["instrument_id"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.submit_to_ack = Histogram(
            "carrylab_submit_to_ack_seconds",
            "From submit_order to the venue's first answer (accepted, rejected, filled) reaching the strategy.",
            ["instrument_id", "ack"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.risk_events = Counter(
            "carrylab_risk_events",
            "Risk-control decisions (strategies.risk), by control and action.",
            ["control", "action"],
            registry=self.registry,
        )

    def on_latency(self, latency: OrderLatency) -> None:
        """Observe an acknowledged order's latencies."""
        if latency.signal_to_submit_ns is not None:
            self.signal_to_submit.labels(latency.instrument_id).observe(latency.signal_to_submit_ns / 1e9)
        self.submit_to_ack.labels(latency.instrument_id, latency.ack).observe(latency.submit_to_ack_ns / 1e9)

    def on_risk_event(self, event: Mapping[str, Any]) -> None:
        """Count a risk-control decision (the dict published on ``RISK_EVENTS_TOPIC``)."""
        self.risk_events.labels(str(event.get("control", "")), str(event.get("action", ""))).inc()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Return ``health(status, now_ns=now)``."""
        return health(self.status, now_ns=self.now_ns())


class MetricsServer:
    """Serve ``/metrics`` (``prometheus_client`` exposition) and ``/healthz`` (JSON: 200 ok, 503 unhealthy).

    From a daemon thread; ``port`` 0 picks a free one (read ``.port`` after start).
    """

    def __init__(self, metrics: NodeMetrics, *, host: str = "127.0.0.1", port: int = 0) -> None:
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, encoder(registry), content_type)
                elif path == "/healthz":
                    healthy, body = metrics.health()
                    self._send(200 if healthy else 503, json.dumps(body).encode(), "application/json")
                else:
                    self.send_error(404)

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> MetricsServer:
        """Start serving and return self."""
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()

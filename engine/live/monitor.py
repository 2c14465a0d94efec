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
- logs a status line every ``status_interval_secs`` and refreshes the metrics snapshot.

``MetricsServer`` serves that snapshot as Prometheus text exposition on 127.0.0.1 by default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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

from engine.live.funding import PaperFunding, Settlement
from engine.live.logs import get_logger
from engine.live.replay import PENDING, signed_quantity
from strategies.positions import average_open_price, position_fills
from strategies.risk import FUNDING_BOOKED_TOPIC

TICK_NS = 100_000_000
STOP_TIMEOUT_SECS = 10.0


@dataclass(slots=True)
class NodeStatus:
    """What the node reports: filled by the supervisor, read by the status line, metrics and state."""

    last_data_ns: dict[str, int] = field(default_factory=dict)
    last_price: dict[str, Decimal] = field(default_factory=dict)
    bars: list[tuple[str, int, Decimal]] = field(default_factory=list)
    processed_bar_ns: dict[str, int] = field(default_factory=dict)
    snapshot: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


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
        self.stopping_since: float | None = None
        self.stopped = False
        self.last_status = time.monotonic()
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
            self.status.last_data_ns[instrument_id] = bar.ts_event
            self.status.last_price[instrument_id] = close
            self.status.bars.append((instrument_id, bar.ts_event, close))
            self.status.processed_bar_ns[str(bar.bar_type)] = bar.ts_init
        if self.settle_funding:
            self.funding.on_close(instrument_id, ts=bar.ts_event, price=close)

    def on_mark_price(self, mark_price: MarkPriceUpdate) -> None:
        instrument_id = str(mark_price.instrument_id)
        with self.status.lock:
            self.status.last_data_ns[instrument_id] = mark_price.ts_event
        if self.settle_funding:
            self.funding.on_mark(instrument_id, ts=mark_price.ts_event, price=mark_price.value.as_decimal())

    def on_funding_rate(self, funding_rate: FundingRateUpdate) -> None:
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
        if time.monotonic() - self.last_status >= self.status_interval_secs:
            self.last_status = time.monotonic()
            self.log_.info("status", **self.refresh())
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
            "funding": {c: str(v) for c, v in funding.items()},
            "data_age_secs": ages,
            "orders": len(self.cache.orders()),
            "open_orders": len(self.cache.orders_open()),
        }
        with self.status.lock:
            self.status.snapshot = snapshot
        return snapshot


def metrics_text(status: NodeStatus) -> str:
    """Return the status snapshot as Prometheus text exposition (format 0.0.4)."""
    with status.lock:
        snapshot = dict(status.snapshot)
    lines = [
        "# HELP carrylab_up 1 while the node runs.",
        "# TYPE carrylab_up gauge",
        "carrylab_up 1",
    ]
    families: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "carrylab_position_quantity",
            "Signed open position per instrument.",
            "instrument_id",
            snapshot.get("positions", {}),
        ),
        (
            "carrylab_exposure",
            "Gross notional of open positions at the last price.",
            "currency",
            snapshot.get("exposure", {}),
        ),
        ("carrylab_pnl", "Realised + unrealised + funding PnL.", "currency", snapshot.get("pnl", {})),
        ("carrylab_funding", "Funding settled so far.", "currency", snapshot.get("funding", {})),
        (
            "carrylab_last_data_age_seconds",
            "Age of the last data per instrument.",
            "instrument_id",
            snapshot.get("data_age_secs", {}),
        ),
    ]
    for name, help_text, label, values in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{{label}="{item}"}} {value}' for item, value in sorted(values.items())]
    for name in ("orders", "open_orders"):
        lines += [f"# TYPE carrylab_{name} gauge", f"carrylab_{name} {snapshot.get(name, 0)}"]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serve ``/metrics`` from a daemon thread; ``port`` 0 picks a free one (read ``.port`` after start)."""

    def __init__(self, status: NodeStatus, *, host: str = "127.0.0.1", port: int = 0) -> None:
        text = metrics_text

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = text(status).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
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

"""Order latency measured by a paper or live node on the wall clock, never in strategy code.

Two intervals per order (``engine.live.harness.timed`` takes the timestamps around the strategy):

- **signal-to-submit**: from the arrival of the event the strategy decided on (a bar, funding or mark
  price update reaching its handler) to its ``submit_order`` call; orders sent outside a data handler
  (a market exit's timer, the supervisor's restore and flatten orders) have none;
- **submit-to-ack**: from ``submit_order`` to the venue's first answer reaching the strategy:
  ``OrderAccepted``, ``OrderRejected``, or ``OrderFilled`` for an order filled without a prior acceptance
  (the paper sandbox's market orders). A denial by the node's own risk engine is no answer: not measured.

Both are ``time.perf_counter_ns`` differences; ``ts_submit`` is ``time.time_ns``. ``LatencyTracker``
keeps the newest samples for the percentiles of the status line and hands each acknowledged order to its
listeners (the journal's ``order_latency`` table, the Prometheus histograms).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Ack = Literal["ACCEPTED", "REJECTED", "FILLED"]
KEEP_SAMPLES = 10_000


@dataclass(frozen=True, slots=True)
class OrderLatency:
    """The latencies of one acknowledged order.

    Attributes
    ----------
    client_order_id, instrument_id : str
    ts_submit : int
        Wall time of ``submit_order`` (UNIX ns, UTC).
    ack : {"ACCEPTED", "REJECTED", "FILLED"}
    signal_to_submit_ns : int, optional
        None for an order not sent from a data handler.
    submit_to_ack_ns : int
    """

    client_order_id: str
    instrument_id: str
    ts_submit: int
    ack: Ack
    signal_to_submit_ns: int | None
    submit_to_ack_ns: int


@dataclass(frozen=True, slots=True)
class _InFlight:
    instrument_id: str
    submit_ns: int
    ts_submit: int
    signal_to_submit_ns: int | None


def percentiles_ms(samples_ns: Sequence[int]) -> dict[str, float | int]:
    """Return ``count``, ``p50``, ``p99`` and ``max`` of ``samples_ns`` in milliseconds (nearest rank)."""
    if not samples_ns:
        return {"count": 0}
    ordered = sorted(samples_ns)

    def rank(q: float) -> float:
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return round(ordered[index] / 1e6, 3)

    return {"count": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] / 1e6, 3)}


class LatencyTracker:
    """Orders in flight and the newest ``keep`` samples of each latency; thread-safe.

    Parameters
    ----------
    keep : int
        Samples kept per latency for the percentiles (the histograms count every order).
    listeners : iterable of callables
        Called with each ``OrderLatency`` once its order is acknowledged (on the node's thread).
    """

    def __init__(self, *, keep: int = KEEP_SAMPLES, listeners: Iterable[Callable[[OrderLatency], None]] = ()) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, _InFlight] = {}
        self.signal_to_submit: deque[int] = deque(maxlen=keep)
        self.submit_to_ack: deque[int] = deque(maxlen=keep)
        self.listeners = list(listeners)

    def submitted(
        self, client_order_id: str, instrument_id: str, *, submit_ns: int, signal_to_submit_ns: int | None
    ) -> None:
        """Record that ``submit_order`` was called at ``submit_ns`` (``perf_counter_ns``)."""
        with self.lock:
            self.in_flight[client_order_id] = _InFlight(instrument_id, submit_ns, time.time_ns(), signal_to_submit_ns)
            if signal_to_submit_ns is not None:
                self.signal_to_submit.append(signal_to_submit_ns)

    def acknowledged(self, client_order_id: str, *, ack: Ack, ack_ns: int) -> OrderLatency | None:
        """Record the venue's answer at ``ack_ns`` (``perf_counter_ns``); return the order's latencies.

        None if the order was not submitted through the tracker (or was answered already).
        """
        with self.lock:
            pending = self.in_flight.pop(client_order_id, None)
            if pending is None:
                return None
            latency = OrderLatency(
                client_order_id=client_order_id,
                instrument_id=pending.instrument_id,
                ts_submit=pending.ts_submit,
                ack=ack,
                signal_to_submit_ns=pending.signal_to_submit_ns,
                submit_to_ack_ns=ack_ns - pending.submit_ns,
            )
            self.submit_to_ack.append(latency.submit_to_ack_ns)
        return latency

    def notify(self, latency: OrderLatency) -> None:
        """Hand ``latency`` to every listener."""
        for listener in self.listeners:
            listener(latency)

    def forget(self, client_order_id: str) -> None:
        """Drop an order that will not be acknowledged (denied before it left the node)."""
        with self.lock:
            self.in_flight.pop(client_order_id, None)

    def percentiles(self) -> dict[str, dict[str, float | int]]:
        """Return the percentiles of both latencies in milliseconds (``percentiles_ms``), for the status line."""
        with self.lock:
            signal, ack = list(self.signal_to_submit), list(self.submit_to_ack)
        return {"signal_to_submit": percentiles_ms(signal), "submit_to_ack": percentiles_ms(ack)}

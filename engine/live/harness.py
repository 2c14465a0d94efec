"""Wrappers a paper or live node puts around the strategy class (signal handling: ``engine.live.signals``).

The strategy's code is untouched: each wrapper is a subclass that changes one thing a live node needs
(``stoppable``: only reducing orders once a stop was requested; ``deferred_denials``: denials handed to
the strategy after ``submit_order`` returns; ``on_replay_clock``: the strategy reads a replay's
historical time; ``timed``: signal-to-submit and submit-to-ack latencies on the wall clock).
``engine.harness.guarded`` (failures, silent streams) is applied first, as in a backtest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.live.latency import Ack, LatencyTracker
from engine.live.logs import get_logger
from engine.live.monitor import StopRequest
from engine.live.replay import HistoricalClock, ReplayClock


def stoppable(strategy_class: type, stop: StopRequest) -> type:
    """Return a subclass that drops every order that is not reduce-only once ``stop`` was requested.

    A bar arriving between the flatten and the node's stop must not re-open a position.
    """
    log = get_logger("node")

    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        if stop.event.is_set() and not order.is_reduce_only:
            log.warning("order dropped: node stopping", instrument_id=str(order.instrument_id), side=order.side.name)
            return None
        return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]

    return type(strategy_class.__name__, (strategy_class,), {"submit_order": submit_order})


def deferred_denials(strategy_class: type) -> type:
    """Return a subclass that hands order denials to the strategy once ``submit_order`` has returned.

    A live node denies an order (its risk engine, a market exit in progress) inside ``submit_order``,
    while the strategy is still borrowed: a Python handler touching the strategy then fails with
    "Already mutably borrowed".
    """

    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        outer = self.__dict__.get("_denials") is None
        if outer:
            self._denials = []
        try:
            return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]
        finally:
            if outer:
                denials, self._denials = self._denials, None
                for event in denials:
                    strategy_class.on_order_denied(self, event)  # type: ignore[attr-defined]

    def on_order_denied(self: Any, event: Any) -> None:
        pending = self.__dict__.get("_denials")
        if pending is None:
            strategy_class.on_order_denied(self, event)  # type: ignore[attr-defined]
        else:
            pending.append(event)

    return type(
        strategy_class.__name__, (strategy_class,), {"submit_order": submit_order, "on_order_denied": on_order_denied}
    )


def on_replay_clock(strategy_class: type, replay: ReplayClock) -> type:
    """Return a subclass whose ``clock`` reads the replay's historical time, as in a backtest.

    The node's own clock stays wall time (Nautilus owns it).
    """
    node_clock = strategy_class.clock  # type: ignore[attr-defined]

    def clock(self: Any) -> HistoricalClock:
        return HistoricalClock(lambda: node_clock.__get__(self, type(self)), replay)

    return type(strategy_class.__name__, (strategy_class,), {"clock": property(clock)})


SIGNAL_HANDLERS = ("on_bar", "on_funding_rate", "on_mark_price")
# The venue's first answer: a sandbox fills market orders without an OrderAccepted before the fill.
ACK_HANDLERS: dict[str, Ack] = {
    "on_order_accepted": "ACCEPTED",
    "on_order_rejected": "REJECTED",
    "on_order_filled": "FILLED",
}


def timed(strategy_class: type, tracker: LatencyTracker) -> type:
    """Return a subclass that measures each order's signal-to-submit and submit-to-ack (``engine.live.latency``).

    The signal is the wall time a bar, funding or mark price update reached the strategy's handler; the
    acknowledgement is the first ``OrderAccepted``/``OrderRejected``/``OrderFilled`` reaching it. Apply it
    inside ``stoppable`` so an order dropped at the stop is never counted as submitted.
    """

    def signal_handler(name: str) -> Any:
        def handle(self: Any, event: Any) -> Any:
            outer = self.__dict__.get("_signal_ns") is None
            if outer:
                self._signal_ns = time.perf_counter_ns()
            try:
                return getattr(strategy_class, name)(self, event)
            finally:
                if outer:
                    self._signal_ns = None

        return handle

    def submit_order(self: Any, order: Any, position_id: Any = None, client_id: Any = None, params: Any = None) -> Any:
        now = time.perf_counter_ns()
        signal = self.__dict__.get("_signal_ns")
        tracker.submitted(
            str(order.client_order_id),
            str(order.instrument_id),
            submit_ns=now,
            signal_to_submit_ns=None if signal is None else now - signal,
        )
        return strategy_class.submit_order(self, order, position_id, client_id, params)  # type: ignore[attr-defined]

    def ack_handler(name: str, ack: Ack) -> Any:
        def handle(self: Any, event: Any) -> None:
            latency = tracker.acknowledged(str(event.client_order_id), ack=ack, ack_ns=time.perf_counter_ns())
            getattr(strategy_class, name)(self, event)
            if latency is not None:
                tracker.notify(latency)  # after the strategy's handler: the journal write is not on its path

        return handle

    def on_order_denied(self: Any, event: Any) -> None:
        tracker.forget(str(event.client_order_id))
        strategy_class.on_order_denied(self, event)  # type: ignore[attr-defined]

    namespace: dict[str, Any] = {name: signal_handler(name) for name in SIGNAL_HANDLERS}
    namespace.update({name: ack_handler(name, ack) for name, ack in ACK_HANDLERS.items()})
    namespace["submit_order"] = submit_order
    namespace["on_order_denied"] = on_order_denied
    return type(strategy_class.__name__, (strategy_class,), namespace)


ORDER_HANDLERS = (
    "on_order_submitted",
    "on_order_accepted",
    "on_order_rejected",
    "on_order_denied",
    "on_order_canceled",
    "on_order_expired",
    "on_order_updated",
)


def journaled(strategy_class: type, recorder: Any) -> type:
    """Return a subclass that records every order event and fill to ``recorder`` after the strategy handled it.

    ``recorder`` is an ``engine.live.recording.JournalRecorder``: a fill is journaled with the strategy's
    state saved after it handled the fill, so a restart never re-trades what it already did.
    """

    def handler(name: str) -> Any:
        def handle(self: Any, event: Any) -> None:
            getattr(strategy_class, name)(self, event)
            recorder.on_order_event(self, event)

        return handle

    def on_order_filled(self: Any, event: Any) -> None:
        strategy_class.on_order_filled(self, event)  # type: ignore[attr-defined]
        recorder.on_fill(self, event)

    namespace: dict[str, Any] = {name: handler(name) for name in ORDER_HANDLERS}
    namespace["on_order_filled"] = on_order_filled
    return type(strategy_class.__name__, (strategy_class,), namespace)


def after_resume(strategy_class: type, priming: Callable[[], bool]) -> type:
    """Return a subclass that ignores the bars a resumed replay re-emits (while ``priming()``).

    A resumed replay re-emits the last bar of each instrument before the cursor so the sandbox has a
    price to re-open the restored positions at; the strategy already decided on those bars.
    """

    def on_bar(self: Any, bar: Any) -> None:
        if not priming():
            strategy_class.on_bar(self, bar)  # type: ignore[attr-defined]

    return type(strategy_class.__name__, (strategy_class,), {"on_bar": on_bar})

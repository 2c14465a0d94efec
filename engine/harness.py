"""The harness every node wraps a strategy class in: handler failures stop the run, silent streams are named.

Nautilus logs an exception raised in a handler and carries on; a run whose strategy failed halfway
must not look like a result. ``guarded(cls)`` returns a subclass whose ``on_*`` handlers record the
first failure and stop the system. It also records what the strategy subscribed to (bars, funding
rates, mark prices) and whether each subscription delivered an event, so a run in which a strategy
never heard one of its streams (a bar spec the catalog does not hold) fails instead of trading nothing.
The strategy's own code is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# A stream is (kind, Nautilus id): handler -> how its event names the stream; subscribe method -> kind.
Stream = tuple[str, Any]
STREAMS: dict[str, Callable[[Any], Stream]] = {
    "on_bar": lambda bar: ("bars", bar.bar_type),
    "on_funding_rate": lambda update: ("funding rates", update.instrument_id),
    "on_mark_price": lambda update: ("mark prices", update.instrument_id),
}
_SUBSCRIBED = {
    "subscribe_bars": "bars",
    "subscribe_funding_rates": "funding rates",
    "subscribe_mark_prices": "mark prices",
}


def guarded(strategy_class: type) -> type:
    """Return a subclass of ``strategy_class`` that records its first handler failure and its streams.

    After a run, ``engine_failure`` is ``(handler name, exception)`` or absent, and
    ``silent_streams(strategy)`` names every subscription that delivered nothing.
    """
    namespace: dict[str, Any] = {}
    for name in dir(strategy_class):
        if name.startswith("on_") and name not in STREAMS and _own(strategy_class, name):
            namespace[name] = _guard(name, getattr(strategy_class, name))
    for name, stream_of in STREAMS.items():
        namespace[name] = _counting(name, getattr(strategy_class, name), stream_of)
    for method, kind in _SUBSCRIBED.items():
        namespace[method] = _recording(getattr(strategy_class, method), kind)
    return type(strategy_class.__name__, (strategy_class,), namespace)


def raise_failure(strategy: Any, error: type[Exception]) -> None:
    """Raise ``error`` naming the handler and exception of the strategy's first failure, if it had one."""
    failure = getattr(strategy, "engine_failure", None)
    if failure is not None:
        raise error(
            f"expected the strategy to run without errors, {failure[0]} raised {type(failure[1]).__name__}: "
            f"{failure[1]}; the run was stopped there (traceback above)"
        ) from failure[1]


def silent_streams(strategy: Any) -> list[Stream]:
    """Return the streams ``(kind, id)`` ``strategy`` subscribed to that delivered no event, in subscription order."""
    heard: dict[Stream, int] = strategy.__dict__.get("_heard", {})
    subscribed: list[Stream] = strategy.__dict__.get("_subscribed", [])
    return [stream for stream in subscribed if not heard.get(stream)]


def _own(strategy_class: type, name: str) -> bool:
    return any(name in vars(k) for k in strategy_class.__mro__ if k.__module__.split(".")[0] != "nautilus_trader")


def _record_failure(self: Any, name: str, exc: Exception) -> None:
    if getattr(self, "engine_failure", None) is None:
        self.engine_failure = (name, exc)
        self.shutdown_system(f"{name} raised {type(exc).__name__}")


def _guard(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    def guarded_handler(self: Any, *args: Any) -> Any:
        try:
            return handler(self, *args)
        except Exception as exc:
            _record_failure(self, name, exc)
            raise

    guarded_handler.__name__ = name
    return guarded_handler


def _counting(name: str, handler: Callable[..., Any], stream_of: Callable[[Any], Stream]) -> Callable[..., Any]:
    def counting_handler(self: Any, event: Any) -> Any:
        # Count only until every subscription has delivered once: after that the wrapper is a try block.
        waiting: set[Stream] | None = self.__dict__.get("_waiting")
        if waiting:
            stream = stream_of(event)
            heard = self.__dict__.setdefault("_heard", {})
            heard[stream] = heard.get(stream, 0) + 1
            waiting.discard(stream)
        try:
            return handler(self, event)
        except Exception as exc:
            _record_failure(self, name, exc)
            raise

    counting_handler.__name__ = name
    return counting_handler


def _recording(subscribe: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def recording_subscribe(self: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        subscribed = self.__dict__.setdefault("_subscribed", [])
        stream = (kind, target)
        if stream not in subscribed:
            subscribed.append(stream)
            if not self.__dict__.get("_heard", {}).get(stream):
                self.__dict__.setdefault("_waiting", set()).add(stream)
        return subscribe(self, target, *args, **kwargs)

    recording_subscribe.__name__ = subscribe.__name__
    return recording_subscribe

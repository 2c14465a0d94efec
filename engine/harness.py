"""The harness every node wraps a strategy class in: handler failures stop the run, silent streams are named.

Nautilus logs an exception raised in a handler and carries on; a run whose strategy failed halfway
must not look like a result. ``guarded(cls)`` returns a subclass whose ``on_*`` handlers record the
first failure and stop the system (only the handlers the strategy defines: a Nautilus default handler
stays in Rust, so a stream the strategy does not handle costs no Python call). It also records what the
strategy subscribed to (bars, funding rates, mark prices); after a run, the cache tells whether each
subscription delivered an event, so a run in which a strategy never heard one of its streams (a bar
spec the catalog does not hold) fails instead of trading nothing. The strategy's own code is untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

# A stream is (kind, Nautilus id): subscribe method -> kind; kind -> the cache's count of its events.
Stream = tuple[str, Any]
_COUNTS = {"bars": "bar_count", "funding rates": "funding_rate_count", "mark prices": "mark_price_count"}
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
        if name.startswith("on_") and _own(strategy_class, name):
            namespace[name] = _guard(name, getattr(strategy_class, name))
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
    """Return the streams ``(kind, id)`` ``strategy`` subscribed to that delivered no event, in subscription order.

    Read from the strategy's cache (which every event delivered passes through) while its engine is alive.
    """
    subscribed: list[Stream] = strategy.__dict__.get("_subscribed", [])
    cache = strategy.cache
    return [(kind, target) for kind, target in subscribed if not getattr(cache, _COUNTS[kind])(target)]


def _own(strategy_class: type, name: str) -> bool:
    return any(name in vars(k) for k in strategy_class.__mro__ if k.__module__.split(".")[0] != "nautilus_trader")


def _record_failure(self: Any, name: str, exc: Exception) -> None:
    if getattr(self, "engine_failure", None) is None:
        self.engine_failure = (name, exc)
        self.shutdown_system(f"{name} raised {type(exc).__name__}")


def _guard(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    # An event handler (on_bar, on_funding_rate, ...) takes exactly one argument: its wrapper passes it
    # as is, without packing a tuple, since it runs once per event.
    if _takes_one_event(handler):

        def guarded_event(self: Any, event: Any) -> Any:
            try:
                return handler(self, event)
            except Exception as exc:
                _record_failure(self, name, exc)
                raise

        guarded_event.__name__ = name
        return guarded_event

    def guarded_handler(self: Any, *args: Any) -> Any:
        try:
            return handler(self, *args)
        except Exception as exc:
            _record_failure(self, name, exc)
            raise

    guarded_handler.__name__ = name
    return guarded_handler


def _takes_one_event(handler: Callable[..., Any]) -> bool:
    parameters = list(inspect.signature(handler).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return len(parameters) == 2 and all(p.kind in positional and p.default is p.empty for p in parameters)


def _recording(subscribe: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def recording_subscribe(self: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        subscribed = self.__dict__.setdefault("_subscribed", [])
        if (kind, target) not in subscribed:
            subscribed.append((kind, target))
        return subscribe(self, target, *args, **kwargs)

    recording_subscribe.__name__ = subscribe.__name__
    return recording_subscribe

"""Quotes for the venues whose market orders need one (``engine.live.venues.needs_quotes``).

Nautilus 2.0.0rc6's Hyperliquid execution client sends a MARKET order as an IOC limit priced from the
cached best bid/ask, and Kraken Futures streams no EXTERNAL bars, so its risk engine has no price for a
market order but a quote: without a cached quote both deny the order ``MARKET_PRICE_UNAVAILABLE``.
Strategies subscribe what they decide on (bars, funding), so a live node adds ``QuoteSubscriber``: it
subscribes quotes for the instruments of such venues and fills the cache. The strategy's code and its
backtests are unchanged; the data engine forwards the subscription to the venue's data client
(Hyperliquid ``bbo``, Kraken Futures ``book``).
"""

from __future__ import annotations

from typing import Any

from nautilus_trader.common import DataActor
from nautilus_trader.model import InstrumentId


class QuoteSubscriber(DataActor):  # type: ignore[misc]
    """Subscribe quotes for ``instrument_ids`` on start (nothing else: the cache keeps the latest)."""

    def __new__(cls, **_: Any) -> QuoteSubscriber:
        # DataActor is a Rust type whose __new__ takes only its own config.
        instance: QuoteSubscriber = super().__new__(cls)
        return instance

    def __init__(self, *, instrument_ids: list[InstrumentId]) -> None:
        super().__init__()
        self.instrument_ids = instrument_ids

    def on_start(self) -> None:
        for instrument_id in self.instrument_ids:
            self.subscribe_quotes(instrument_id)

"""The venues' public liquidation streams as a Nautilus data client: ``Liquidation`` custom data, live.

Nautilus' adapters (rc6) do not subscribe to liquidation streams, so ``LiquidationDataClient`` is our
own Python ``MarketDataClient``: on connect it opens the venue's stream with the recorders' own
subscribe and parse functions (``datasets.acquire.record``: Binance ``!forceOrder@arr``, Bybit
``allLiquidation.<symbol>``, OKX ``liquidation-orders``; OKX contracts become base units through the
instrument's multiplier), turns every event into canonical rows with ``liquidation_rows`` (the
recorder's and the importers' event ids and side convention) and emits a
``Liquidation`` (``datasets.catalog.liquidations``) for each event on one of the node's instruments,
as ``CustomData`` of the data type a strategy subscribes to (``DataType("Liquidation",
identifier=<instrument id>)``): the same objects a backtest reads from the catalog. ``ts_event`` is the
venue's event time, ``ts_init`` the node's clock on receipt. Events on other symbols are dropped.

The connection is re-opened with capped exponential backoff when it drops; a malformed message is
logged and skipped. The URL is the recorder's, or the connection's ``base_url_ws`` (the loopback tests
point it at 127.0.0.1; Binance's gets the stream's ``/ws`` path appended, as its adapter's does).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import polars as pl
from nautilus_trader.live import DataClientConfig
from nautilus_trader.live.clients import DataClientFactory, MarketDataClient
from nautilus_trader.model import CustomData, DataType, InstrumentId, Venue
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from datasets.acquire.record import STREAMS, Record, StreamSpec, liquidation_rows
from datasets.catalog.liquidations import DECIMAL_FIELDS, TEXT_FIELDS, TYPE_NAME, Liquidation
from datasets.errors import DatasetError
from datasets.importers.common import venue_symbol
from datasets.venues import instrument_id_for
from engine.live.logs import get_logger

CLIENT_SUFFIX = "-LIQUIDATIONS"
# Path of the stream under a ``base_url_ws`` override: Binance's override is the host (its adapter adds
# the path), Bybit's and OKX's are the full public URL.
OVERRIDE_PATH: Mapping[str, str] = MappingProxyType({"binance": "/ws", "bybit": "", "okx": ""})
OPEN_TIMEOUT_SECS = 10.0
BACKOFF_BASE_SECS = 1.0
BACKOFF_CAP_SECS = 60.0


@dataclass(frozen=True, slots=True)
class LiquidationStream:
    """What one client listens to: the venue's stream, its URL and the node's instruments on it.

    Attributes
    ----------
    venue : str
        Registry venue name (``binance``).
    url : str
        WebSocket URL of the stream.
    symbols : Mapping[str, InstrumentId]
        Canonical symbol (``BTC-USDT-PERP``) -> Nautilus instrument id, for the node's perps.
    """

    venue: str
    url: str
    symbols: Mapping[str, InstrumentId]

    @property
    def spec(self) -> StreamSpec:
        return STREAMS[self.venue]


def liquidation_stream(
    venue: str, symbols: Sequence[str], *, base_url_ws: str | None = None
) -> LiquidationStream | None:
    """Return the liquidation stream of ``venue`` for its perps among ``symbols``, or None without one.

    None when the venue has no recorder or the node trades no perp there.
    """
    if venue not in STREAMS:
        return None
    perps: dict[str, InstrumentId] = {}
    for symbol in symbols:
        if not symbol.endswith("-PERP"):
            continue
        try:
            perps[symbol] = instrument_id_for(venue, symbol)
        except DatasetError:
            continue
    if not perps:
        return None
    url = STREAMS[venue].url if base_url_ws is None else base_url_ws.rstrip("/") + OVERRIDE_PATH[venue]
    return LiquidationStream(venue=venue, url=url, symbols=MappingProxyType(perps))


def liquidation_data(row: Mapping[str, Any], instrument_id: InstrumentId, *, ts_init: int) -> CustomData:
    """Return one canonical ``liquidations`` row (``ts`` in integer ns) as the ``CustomData`` a backtest reads."""
    fields: dict[str, Any] = {"instrument_id": str(instrument_id), "ts_event": int(row["ts"]), "ts_init": ts_init}
    for name in TEXT_FIELDS[1:]:
        value = row.get(name)
        if value is None:
            fields[name] = ""
        elif name in DECIMAL_FIELDS:
            fields[name] = format(value.normalize(), "f")
        else:
            fields[name] = str(value)
    liquidation = Liquidation(**fields)
    return CustomData(DataType(TYPE_NAME, identifier=str(instrument_id)), liquidation)


class LiquidationDataClient(MarketDataClient):  # type: ignore[misc]
    """Emit the venue's liquidations on the node's instruments as ``Liquidation`` custom data."""

    def __init__(self, *, stream: LiquidationStream, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream = stream
        self.task: asyncio.Task[object] | None = None
        self.emitted = 0
        self.events = get_logger("liquidations")

    async def _connect(self) -> None:
        self.task = self.create_task(self._listen(), f"liquidations-{self.stream.venue}")

    async def _disconnect(self) -> None:
        # Wait for the cancelled task to finish: a task left pending on its socket would keep the node alive.
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.task = None

    async def _subscribe(self, command: Any) -> None:
        return None  # the stream carries every symbol's liquidations: nothing to subscribe per data type

    async def _unsubscribe(self, command: Any) -> None:
        return None

    async def _listen(self) -> None:
        failures = 0
        while True:
            before = self.emitted
            try:
                async with connect(self.stream.url, open_timeout=OPEN_TIMEOUT_SECS) as socket:
                    await self._session(socket)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                self.events.warning(
                    "liquidation stream dropped", venue=self.stream.venue, error=f"{type(exc).__name__}: {exc}"
                )
            failures = 0 if self.emitted > before else failures + 1
            await asyncio.sleep(min(BACKOFF_CAP_SECS, BACKOFF_BASE_SECS * 2 ** max(failures - 1, 0)))

    async def _session(self, socket: ClientConnection) -> None:
        spec = self.stream.spec
        for message in spec.subscribe(tuple(self.stream.symbols)):
            await socket.send(message)
        async for raw in socket:
            self.on_message(raw)

    def on_message(self, raw: str | bytes) -> None:
        """Emit the liquidations of one stream message that concern the node's instruments."""
        try:
            data = stream_liquidations(self.stream, raw, ts_init=self.clock.timestamp_ns(), multiplier=self._multiplier)
        except (ValueError, KeyError, TypeError, InvalidOperation, LookupError, DatasetError) as exc:
            self.events.warning("skipped a malformed liquidation message", venue=self.stream.venue, error=str(exc))
            return
        for item in data:
            self._handle_data(item)
        self.emitted += len(data)

    def _multiplier(self, instrument_id: InstrumentId) -> Decimal | None:
        instrument = self.cache.instrument(instrument_id)
        return None if instrument is None else instrument.multiplier.as_decimal()


def stream_liquidations(
    stream: LiquidationStream,
    raw: str | bytes,
    *,
    ts_init: int,
    multiplier: Callable[[InstrumentId], Decimal | None],
) -> list[CustomData]:
    """Return the ``Liquidation`` custom data of one raw stream message, for the stream's instruments only.

    Sizes in contracts (OKX) become base units through ``multiplier`` (the instrument's contract size);
    without one the quantity and notional stay empty, as the recorder stores them.

    Raises
    ------
    ValueError, KeyError, TypeError, LookupError, InvalidOperation, DatasetError
        If the message is not the venue's documented shape.
    """
    kept: list[tuple[Record, InstrumentId]] = []
    for record in stream.spec.parse(json.loads(raw)):
        instrument_id = stream.symbols.get(venue_symbol(stream.venue, record["raw_symbol"], "perp"))
        if instrument_id is None:
            continue
        size = multiplier(instrument_id) if record["contracts"] else None
        if size is not None:
            record = {**record, "quantity": str(Decimal(record["quantity"]) * size), "contracts": False}
        kept.append((record, instrument_id))
    if not kept:
        return []
    frame = liquidation_rows([record for record, _ in kept], source=stream.spec.source)
    frame = frame.with_columns(pl.col("ts").dt.epoch("ns"))
    return [
        liquidation_data(row, instrument_id, ts_init=ts_init)
        for row, (_, instrument_id) in zip(frame.iter_rows(named=True), kept, strict=True)
    ]


class LiquidationDataClientFactory(DataClientFactory):  # type: ignore[misc]
    """Create the liquidation client of one venue (the factory instance carries its stream)."""

    def __init__(self, stream: LiquidationStream) -> None:
        self.stream = stream

    def create(self, *, name: str, config: DataClientConfig, cache: Any, clock: Any) -> LiquidationDataClient:
        return LiquidationDataClient(
            stream=self.stream, name=name, config=config, cache=cache, clock=clock, venue=Venue(name)
        )

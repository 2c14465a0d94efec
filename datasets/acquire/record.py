"""Long-running recorders of the venues' public liquidation streams.

=========  ==========================================  ===============================================
venue      stream                                      what one event says
=========  ==========================================  ===============================================
binance    ``wss://fstream.binance.com/ws``,           ``{"e": "forceOrder", "o": {s, S, ap, z, T}}``:
           subscribe ``!forceOrder@arr``               order side SELL liquidates a long
bybit      ``wss://stream.bybit.com/v5/public/linear``, ``{"topic": "allLiquidation.<s>", "data": [{T, s,
           ``allLiquidation.<symbol>`` per symbol      S, v, p}]}``: S is the *position* side, Buy = long
okx        ``wss://ws.okx.com:8443/ws/v5/public``,     ``{"arg": {...}, "data": [{instId, details: [{side,
           ``liquidation-orders``, instType SWAP       posSide, bkPx, sz, ts}]}]}``; sz in contracts
=========  ==========================================  ===============================================

Events become canonical ``liquidations`` rows and are written in small validated batches (every
``batch_events`` events or ``batch_secs`` seconds), so a crash loses at most one batch. ``event_id`` is
a sha256 over the event's canonical values (the same fields and rule as the file importers, so an
event recorded here and imported from a capture is stored once); ids already seen are dropped before
they reach a batch, and the store drops exact duplicates across batches and restarts. The connection
is re-opened with capped exponential backoff whenever it drops; a status line is logged every
``status_secs``. OKX sizes are contracts: they become base units through the contract size in
``datasets/venues.py``, and are left empty (with the notional) for instruments it does not list.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import polars as pl
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from datasets.acquire.errors import PlanError
from datasets.acquire.tasks import spawn
from datasets.errors import NotInStoreError
from datasets.importers.common import event_ids, venue_symbol
from datasets.importers.liquidations import ID_FIELDS, NOTIONAL_QUOTES
from datasets.instruments import instrument_specs_at
from datasets.schemas import LIQUIDATIONS, PL_DECIMAL
from datasets.store import SourceInfo, Store
from datasets.validate import ROW

log = logging.getLogger(__name__)

RECORDER = "liquidation-recorder"
RECORDER_VERSION = "1"
Record = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """One venue's liquidation stream: where it is, how to subscribe, how to keep it alive, how to read it."""

    venue: str
    url: str
    source: str
    subscribe: Callable[[tuple[str, ...]], list[str]]
    parse: Callable[[Any], list[Record]]
    heartbeat: str | None = None
    heartbeat_secs: float = 20.0
    needs_symbols: bool = False


def _binance_subscribe(symbols: tuple[str, ...]) -> list[str]:
    return [json.dumps({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1})]


def _binance_parse(message: Any) -> list[Record]:
    if isinstance(message, dict) and isinstance(message.get("data"), dict):
        message = message["data"]
    if not isinstance(message, dict) or message.get("e") != "forceOrder":
        return []
    order = message["o"]
    side = {"SELL": "long", "BUY": "short"}[str(order["S"]).upper()]
    return [_record("binance", order["s"], order["T"], side, order["ap"], order["z"])]


def _bybit_subscribe(symbols: tuple[str, ...]) -> list[str]:
    topics = [f"allLiquidation.{_concatenated(s)}" for s in symbols]
    # Bybit accepts at most 10 topics per subscribe request.
    return [json.dumps({"op": "subscribe", "args": topics[i : i + 10]}) for i in range(0, len(topics), 10)]


def _bybit_parse(message: Any) -> list[Record]:
    if not isinstance(message, dict) or not str(message.get("topic", "")).startswith("allLiquidation."):
        return []
    records = []
    for item in message["data"]:
        side = {"BUY": "long", "SELL": "short"}[str(item["S"]).upper()]
        records.append(_record("bybit", item["s"], item["T"], side, item["p"], item["v"]))
    return records


def _okx_subscribe(symbols: tuple[str, ...]) -> list[str]:
    return [json.dumps({"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]})]


def _okx_parse(message: Any) -> list[Record]:
    if not isinstance(message, dict) or message.get("arg", {}).get("channel") != "liquidation-orders":
        return []
    records = []
    for item in message.get("data", []):
        for detail in item["details"]:
            position = str(detail.get("posSide", "")).lower()
            if position not in ("long", "short"):
                # One-way ("net") mode: the liquidation order sells a long.
                position = {"sell": "long", "buy": "short"}[str(detail["side"]).lower()]
            records.append(
                _record("okx", item["instId"], detail["ts"], position, detail["bkPx"], detail["sz"], contracts=True)
            )
    return records


STREAMS: Mapping[str, StreamSpec] = MappingProxyType(
    {
        "binance": StreamSpec(
            venue="binance",
            url="wss://fstream.binance.com/ws",
            # The same source name as the capture importer: one event from either path is one row.
            source="binance-force-order",
            subscribe=_binance_subscribe,
            parse=_binance_parse,
        ),
        "bybit": StreamSpec(
            venue="bybit",
            url="wss://stream.bybit.com/v5/public/linear",
            source="bybit-all-liquidation",
            subscribe=_bybit_subscribe,
            parse=_bybit_parse,
            heartbeat=json.dumps({"op": "ping"}),
            heartbeat_secs=20.0,
            needs_symbols=True,
        ),
        "okx": StreamSpec(
            venue="okx",
            url="wss://ws.okx.com:8443/ws/v5/public",
            source="okx-liquidation-orders",
            subscribe=_okx_subscribe,
            parse=_okx_parse,
            # OKX drops a connection silent for 30 s; it answers the text "ping" with "pong".
            heartbeat="ping",
            heartbeat_secs=25.0,
        ),
    }
)


def stream_spec(venue: str) -> StreamSpec:
    """Return the liquidation stream of a venue.

    Raises
    ------
    PlanError
        If the venue has no recorder.
    """
    try:
        return STREAMS[venue]
    except KeyError:
        raise PlanError(f"no liquidation recorder for {venue!r}: expected one of {', '.join(STREAMS)}") from None


def _concatenated(symbol: str) -> str:
    return "".join(symbol.removesuffix("-PERP").split("-"))


def _record(
    venue: str, raw_symbol: Any, ts: Any, side: str, price: Any, quantity: Any, *, contracts: bool = False
) -> Record:
    return {
        "venue": venue,
        "raw_symbol": str(raw_symbol),
        "ts_ms": int(ts),
        "side": side,
        "price": str(price),
        "quantity": str(quantity),
        "contracts": contracts,
    }


def _multiplier(store: Store | None, venue: str, symbol: str, ts_ms: int) -> Decimal | None:
    if store is None:
        return None
    at = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    try:
        return instrument_specs_at(store, venue, symbol, at).contract_multiplier
    except NotInStoreError:
        return None


def liquidation_rows(records: list[Record], *, source: str, store: Store | None = None) -> pl.DataFrame:
    """Return canonical ``liquidations`` rows (with ``_row``) for parsed stream records.

    A size in contracts (OKX) becomes base units through the contract multiplier of the instrument spec
    ``store`` holds in force at the event; without one the quantity and notional are left empty.

    Raises
    ------
    SourceFormatError
        If a venue's instrument name does not follow its convention.
    InvalidOperation
        If a price or size is not a decimal number.
    """
    rows = []
    for index, record in enumerate(records):
        venue = record["venue"]
        symbol = venue_symbol(venue, record["raw_symbol"], "perp")
        price = Decimal(record["price"])
        quantity: Decimal | None = Decimal(record["quantity"])
        if record["contracts"]:
            multiplier = _multiplier(store, venue, symbol, record["ts_ms"])
            quantity = None if multiplier is None or quantity is None else quantity * multiplier
        quote = symbol.split("-")[1]
        notional = price * quantity if quantity is not None and quote in NOTIONAL_QUOTES else None
        rows.append(
            {
                "venue": venue,
                "symbol": symbol,
                "ts": record["ts_ms"] * 1_000_000,
                "side": record["side"],
                "price": price,
                "quantity": quantity,
                "notional_usd": notional,
                ROW: index,
            }
        )
    schema = LIQUIDATIONS.polars_schema
    frame = pl.DataFrame(
        rows,
        schema={
            "venue": pl.String,
            "symbol": pl.String,
            "ts": pl.Int64,
            "side": pl.String,
            "price": PL_DECIMAL,
            "quantity": PL_DECIMAL,
            "notional_usd": PL_DECIMAL,
            ROW: pl.Int64,
        },
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    given = {"market": pl.lit("perp"), "source": pl.lit(source)}
    frame = frame.with_columns(
        *(value.alias(name) for name, value in given.items()),
        *(
            pl.lit(None, dtype=schema[c]).alias(c)
            for c in ("protocol", "account", "liquidator", "order_id", "tx_signature")
        ),
    )
    return frame.with_columns(event_ids(frame, ID_FIELDS)).select(*LIQUIDATIONS.columns, ROW)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecorderConfig:
    """How a liquidation recorder connects, batches and reports.

    Attributes
    ----------
    venue : str
        ``binance``, ``bybit`` or ``okx``.
    symbols : tuple[str, ...]
        Canonical perps to subscribe to where the venue has no all-market stream (Bybit).
    url : str | None
        WebSocket URL; None for the venue's public endpoint.
    batch_events, batch_secs : int, float
        A batch is written when it holds this many events or is this old, whichever comes first.
    status_secs : float
        Period of the status line.
    backoff_base_secs, backoff_cap_secs : float
        Reconnect backoff: doubles from the base up to the cap; reset after a connection delivered data.
    open_timeout_secs, ping_interval_secs, ping_timeout_secs, close_timeout_secs : float
        WebSocket timeouts (handshake, keepalive pings, closing handshake).
    use_env_proxy : bool
        Honour ``HTTPS_PROXY`` and friends when connecting.
    remember_events : int
        Event ids kept in memory to drop repeats (a venue replaying events after a reconnect).
    """

    venue: str
    symbols: tuple[str, ...] = ()
    url: str | None = None
    batch_events: int = 200
    batch_secs: float = 30.0
    status_secs: float = 60.0
    backoff_base_secs: float = 1.0
    backoff_cap_secs: float = 60.0
    open_timeout_secs: float = 10.0
    ping_interval_secs: float = 20.0
    ping_timeout_secs: float = 20.0
    close_timeout_secs: float = 5.0
    use_env_proxy: bool = True
    remember_events: int = 100_000

    def __post_init__(self) -> None:
        spec = stream_spec(self.venue)
        if spec.needs_symbols and not self.symbols:
            raise PlanError(f"{self.venue} has no all-market liquidation stream: pass --symbols BTC-USDT-PERP,...")
        if self.batch_events < 1 or self.batch_secs <= 0:
            raise PlanError(f"batches need >= 1 event and > 0 s, was {self.batch_events} and {self.batch_secs}")


@dataclass(slots=True)
class RecorderStats:
    """Counters of a recorder run."""

    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    batches: int = 0
    rows_written: int = 0
    connections: int = 0
    reconnects: int = 0
    last_event_at: float | None = None

    def line(self, venue: str, now: float) -> str:
        age = "never" if self.last_event_at is None else f"{now - self.last_event_at:.1f} s ago"
        return (
            f"{venue} liquidations: {self.events} events, {self.batches} batches ({self.rows_written} rows) written, "
            f"{self.reconnects} reconnects, {self.duplicates} duplicates dropped, {self.malformed} malformed, "
            f"last event {age}"
        )


@dataclass(slots=True)
class LiquidationRecorder:
    """Record one venue's liquidation stream into a store until stopped.

    Parameters
    ----------
    store : Store
        Where batches are written (validated, atomic).
    config : RecorderConfig
        Connection, batching and status settings.
    sleep : callable
        Awaited for reconnect backoffs; tests inject a fast one.
    clock : callable
        Monotonic seconds, for batch age and last-event age.
    """

    store: Store
    config: RecorderConfig
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    stats: RecorderStats = field(default_factory=RecorderStats)
    _buffer: list[pl.DataFrame] = field(default_factory=list)
    _buffered: int = 0
    _batch_started: float | None = None
    _messages: int = 0
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def spec(self) -> StreamSpec:
        return stream_spec(self.config.venue)

    async def run(self, stop: asyncio.Event | None = None) -> RecorderStats:
        """Record until ``stop`` is set (or forever, until cancelled); write the last batch; return the counters.

        Raises
        ------
        ValidationError
            If a batch breaks the schema (a parser bug: nothing of that batch is written).
        """
        name = f"record-{self.config.venue}"
        stream = spawn(self._connect_forever(), name=f"{name}-stream")
        ticker = spawn(self._tick_forever(), name=f"{name}-ticker")
        try:
            if stop is None:
                await stream
            else:
                waiter = spawn(stop.wait(), name=f"{name}-stop")
                await asyncio.wait({stream, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if stream.done():
                    stream.result()
        finally:
            for task in (stream, ticker):
                task.cancel()
            await asyncio.gather(stream, ticker, return_exceptions=True)
            await self.flush()
            log.info("%s", self.stats.line(self.config.venue, self.clock()))
        return self.stats

    async def flush(self) -> None:
        """Write the buffered events as one batch (no-op when empty)."""
        async with self._write_lock:
            if not self._buffer:
                return
            frames, self._buffer, self._buffered, self._batch_started = self._buffer, [], 0, None
            batch = pl.concat(frames, how="vertical").with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
            batch = batch.select(*LIQUIDATIONS.columns, ROW)
            info = SourceInfo(
                source=f"{self.config.url or self.spec.url} {self.spec.source}",
                sha256=_digest(batch["event_id"].to_list()),
                importer=RECORDER,
                importer_version=RECORDER_VERSION,
                extra=(("venue", self.config.venue), ("stream", self.spec.source)),
            )
            await asyncio.to_thread(self.store.write, "liquidations", batch, info)
            self.stats.batches += 1
            self.stats.rows_written += batch.height

    async def _connect_forever(self) -> None:
        failures = 0
        url = self.config.url or self.spec.url
        while True:
            messages_before = self._messages
            try:
                async with connect(
                    url,
                    open_timeout=self.config.open_timeout_secs,
                    ping_interval=self.config.ping_interval_secs,
                    ping_timeout=self.config.ping_timeout_secs,
                    close_timeout=self.config.close_timeout_secs,
                    proxy=True if self.config.use_env_proxy else None,
                ) as socket:
                    self.stats.connections += 1
                    await self._session(socket)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                log.warning("%s liquidation stream: %s: %s", self.config.venue, type(exc).__name__, exc)
            failures = 0 if self._messages > messages_before else failures + 1
            self.stats.reconnects += 1
            wait = min(self.config.backoff_cap_secs, self.config.backoff_base_secs * 2 ** max(failures - 1, 0))
            log.info("%s liquidation stream: reconnecting in %.1f s", self.config.venue, wait)
            await self.sleep(wait)

    async def _session(self, socket: ClientConnection) -> None:
        for message in self.spec.subscribe(self.config.symbols):
            await socket.send(message)
        heartbeat = None
        if self.spec.heartbeat is not None:
            heartbeat = spawn(self._heartbeat(socket, self.spec.heartbeat), name=f"record-{self.config.venue}-ping")
        try:
            async for raw in socket:
                self._messages += 1
                await self._on_message(raw)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()

    async def _heartbeat(self, socket: ClientConnection, message: str) -> None:
        while True:
            await asyncio.sleep(self.spec.heartbeat_secs)
            await socket.send(message)

    async def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            records = self.spec.parse(message)
            if not records:
                return
            frame = liquidation_rows(records, source=self.spec.source, store=self.store)
        except (ValueError, KeyError, TypeError, InvalidOperation, LookupError) as exc:
            self.stats.malformed += 1
            log.warning("%s liquidation stream: skipped a malformed message (%s): %.200r", self.config.venue, exc, raw)
            return
        fresh = [event_id not in self._seen for event_id in frame["event_id"].to_list()]
        for event_id in frame["event_id"].to_list():
            self._remember(event_id)
        kept = frame.filter(pl.Series(fresh, dtype=pl.Boolean))
        self.stats.duplicates += frame.height - kept.height
        if kept.height == 0:
            return
        self.stats.events += kept.height
        self.stats.last_event_at = self.clock()
        self._buffer.append(kept.drop(ROW))
        self._buffered += kept.height
        if self._batch_started is None:
            self._batch_started = self.clock()
        if self._buffered >= self.config.batch_events:
            await self.flush()

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        self._seen.move_to_end(event_id)
        while len(self._seen) > self.config.remember_events:
            self._seen.popitem(last=False)

    async def _tick_forever(self) -> None:
        last_status = self.clock()
        step = min(self.config.batch_secs, self.config.status_secs, 1.0)
        while True:
            await asyncio.sleep(step)
            now = self.clock()
            if self._batch_started is not None and now - self._batch_started >= self.config.batch_secs:
                await self.flush()
            if now - last_status >= self.config.status_secs:
                last_status = now
                log.info("%s", self.stats.line(self.config.venue, now))


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()

"""Load a run's data from a Nautilus catalog and check it covers the requested range.

Backtests and replayed paper sessions both feed what ``load_run_data`` returns; the frames it keeps
(bars, marks, funding updates, in the schemas declared here) are what the ledgers are rebuilt from.

The engine is fed in time-ordered chunks (``engine.feed.DataFeed.chunks``) read from the catalog as
the run goes: what is held for the window is where each stream is and its funding updates, so the
memory of a run depends on the chunk size, not on the window. The bar closes and mark prices the
ledgers need are read from the catalog after the engine has run, one instrument at a time.

Bars reach the engine one nanosecond after they close (``ts_init = ts_event + 1``). At a funding
boundary ``T`` the engine's settlement timer fires after everything stamped ``T`` (the mark price at
``T``, the update announcing ``T + I``) and before the bar closing at ``T``: a position opened on that
bar was not held at ``T`` and pays nothing for it, and one closed on it was held and pays. Without the
shift Nautilus would settle after the strategy's reaction to the bar at ``T``, crediting funding to a
position opened after the settlement instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, overload

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model import InstrumentId, NautilusDataType
from nautilus_trader.persistence import BarDataWrangler, ParquetDataCatalog

from datasets.schemas import interval_secs
from datasets.symbols import market_of
from engine.config import RunConfig
from engine.errors import MissingDataError
from engine.feed import BarStream, DataFeed, InstrumentFeed, MarkStream
from engine.loading import instrument_id_for
from strategies.carry import bar_interval_ns

DECIMAL = pl.Decimal(38, 18)
NS = pl.Datetime("ns", "UTC")
# The frames a run's ledgers are rebuilt from (``RunData.bars``, ``.marks``, ``.funding``).
BARS_SCHEMA: dict[str, Any] = {"instrument_id": pl.String, "ts": NS, "close": DECIMAL}
MARKS_SCHEMA: dict[str, Any] = {"instrument_id": pl.String, "ts": NS, "mark_price": DECIMAL}
FUNDING_UPDATES_SCHEMA: dict[str, Any] = {
    "instrument_id": pl.String,
    "ts_init": NS,
    "next_funding": NS,
    "rate": DECIMAL,
    "interval_minutes": pl.Int64,
}
# Funding updates are announced one interval before they settle; look this far back for the first one.
LOOKBACK = timedelta(days=2)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def empty(schema: dict[str, Any]) -> pl.DataFrame:
    """Return an empty frame of ``schema``."""
    return pl.DataFrame(schema=schema)


# A ``RunData`` frame: one frame, or one lazy frame per instrument (read from the catalog when collected).
Streams = dict[str, pl.LazyFrame]


class _Frame:
    """A ``RunData`` frame given as a frame, or as one lazy frame per instrument collected on first use (then kept).

    ``streams`` gives the per-instrument lazy frames without collecting the whole frame, so the ledgers can
    read one instrument at a time.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    @overload
    def __get__(self, instance: None, owner: type) -> Callable[[], pl.DataFrame]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> pl.DataFrame: ...

    def __get__(self, instance: object | None, owner: type) -> pl.DataFrame | Callable[[], pl.DataFrame]:
        if instance is None:
            return functools.partial(empty, self.schema)  # the dataclass default: an empty frame
        value = self.held(instance)
        if isinstance(value, dict):
            value = _collect(list(value.values()), self.schema)
            setattr(instance, self.attribute, value)
        return value

    def __set__(self, instance: object, value: pl.DataFrame | Streams | Callable[[], pl.DataFrame]) -> None:
        setattr(instance, self.attribute, value() if callable(value) else value)

    def held(self, instance: object) -> pl.DataFrame | Streams:
        """Return what ``instance`` holds: the frame, or its lazy frames per instrument if not collected yet."""
        value: pl.DataFrame | Streams = getattr(instance, self.attribute)
        return value

    def streams(self, instance: object) -> Streams:
        """Return one lazy frame per instrument, in the order the instruments first appear."""
        value = self.held(instance)
        if isinstance(value, dict):
            return value
        ids = value["instrument_id"].unique(maintain_order=True)
        return {i: value.lazy().filter(pl.col("instrument_id") == i) for i in ids}


@dataclass
class RunData:
    """Everything one run feeds the engine, plus the frames the ledgers are rebuilt from.

    ``bars`` and ``marks`` may be given as one lazy frame per instrument: ``load_run_data`` passes
    scans of the catalog, so they are not held while the engine runs. Reading ``bars`` collects (and
    keeps) the whole frame; the ledgers read one instrument at a time instead (``bar_streams``,
    ``mark_streams``, ``last_close``) and the ``bars`` artefact is written stream by stream
    (``bars_source``), so their memory does not grow with the window.

    Attributes
    ----------
    instruments : dict[InstrumentId, Any]
    feed : DataFeed
        Bars (shifted 1 ns), funding updates, mark prices and custom data, chunk by chunk.
    bars : pl.DataFrame
        ``instrument_id, ts (close time), close`` of every replayed bar.
    marks : pl.DataFrame
        ``instrument_id, ts, mark_price``.
    funding : pl.DataFrame
        ``instrument_id, ts_init, next_funding, rate, interval_minutes`` of every update fed.
    venue_of : dict[str, str]
        Instrument id -> configured venue name.
    """

    instruments: dict[InstrumentId, Any] = field(default_factory=dict)
    feed: DataFeed = field(default_factory=DataFeed)
    bars: _Frame = _Frame(BARS_SCHEMA)
    marks: _Frame = _Frame(MARKS_SCHEMA)
    funding: pl.DataFrame = field(default_factory=pl.DataFrame)
    venue_of: dict[str, str] = field(default_factory=dict)

    @property
    def bar_count(self) -> int:
        held = _BARS.held(self)
        if isinstance(held, pl.DataFrame):
            return held.height
        if len(self.feed.instruments) == len(held):
            return self.feed.bar_count  # the feed counted the same catalog rows when it checked their coverage
        return sum(int(scan.select(pl.len()).collect().item()) for scan in held.values())

    def bar_streams(self) -> Streams:
        """Return ``instrument_id, ts, close`` per instrument, lazily (read from the catalog when collected)."""
        return _BARS.streams(self)

    def mark_streams(self) -> Streams:
        """Return ``instrument_id, ts, mark_price`` per instrument, lazily."""
        return _MARKS.streams(self)

    def bars_source(self) -> pl.DataFrame | list[pl.LazyFrame]:
        """Return the bars as held: the frame, or its lazy frames per instrument if it was not collected."""
        held = _BARS.held(self)
        return held if isinstance(held, pl.DataFrame) else list(held.values())

    def last_close(self, instrument_id: str) -> Decimal:
        """Return the close of ``instrument_id``'s last bar (KeyError if the run has no bars of it)."""
        close: Decimal = self.bar_streams()[instrument_id].select(pl.col("close").last()).collect().item()
        return close

    @property
    def engine_data(self) -> list[Any]:
        """Every object the engine is fed, unsorted (read on each access: prefer ``feed.chunks``)."""
        return self.feed.objects()


_BARS: _Frame = vars(RunData)["bars"]
_MARKS: _Frame = vars(RunData)["marks"]


def open_catalog(path: str | Path) -> ParquetDataCatalog:
    """Return the catalog at ``path``.

    Raises
    ------
    MissingDataError
        If the directory does not exist or holds no ``data/`` tree.
    """
    root = Path(path)
    if not (root / "data").is_dir():
        raise MissingDataError(
            f"expected a Nautilus catalog (a directory with data/) at {root}, "
            f"was {'empty' if root.exists() else 'absent'}; "
            "export one with datasets.catalog.export_catalog or pass --catalog"
        )
    return ParquetDataCatalog(str(root))


def load_run_data(config: RunConfig, catalog: ParquetDataCatalog, *, progress: Callable[[str], None]) -> RunData:
    """Return the instruments and data of every configured instrument over ``[start, end)``.

    Bars and mark prices stay in the catalog: the feed reads them chunk by chunk, and ``bars`` and
    ``marks`` are read on first access. Their coverage is checked here, from their timestamps.

    Raises
    ------
    MissingDataError
        If an instrument, its bars, or (for perps) its funding or mark prices are absent or do not
        cover the requested range; the message names the instrument and the missing range.
    """
    data = RunData()
    root = Path(config.data.catalog)
    bars: Streams = {}
    marks: Streams = {}
    funding = []
    for venue in config.venues:
        for symbol in venue.instruments:
            instrument_id = instrument_id_for(venue.name, symbol)
            label = f"{venue.name}:{symbol} ({instrument_id})"
            data.venue_of[str(instrument_id)] = venue.name
            data.instruments[instrument_id] = _instrument(catalog, instrument_id, label)
            progress(f"loading {label}")
            stream = _bars(catalog, root, config, instrument_id, label)
            feed = InstrumentFeed(bars=stream)
            data.feed.instruments.append(feed)
            bars[str(instrument_id)] = _closes(stream, instrument_id)
            if market_of(symbol) != "perp":
                continue
            if config.data.funding:
                feed.funding, frame = _funding(catalog, config, instrument_id, label, venue.funding_interval)
                funding.append(frame)
            if config.data.mark_prices:
                feed.marks, scan = _marks(catalog, root, config, instrument_id, label)
                marks[str(instrument_id)] = scan
            if config.data.liquidations:
                feed.liquidations = sorted(_liquidations(catalog, config, instrument_id), key=lambda e: e.ts_init)
    data.bars = bars
    data.marks = marks
    data.funding = pl.concat(funding) if funding else empty(FUNDING_UPDATES_SCHEMA)
    return data


def _collect(frames: list[pl.LazyFrame], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.concat(frames).collect().rechunk() if frames else empty(schema)


def ns_of(moment: datetime) -> int:
    """Return a UTC datetime as integer nanoseconds since the epoch (exact to the microsecond)."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _moment(ts_ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_ns // 1_000)


def _instrument(catalog: ParquetDataCatalog, instrument_id: InstrumentId, label: str) -> Any:
    found = catalog.instruments(instrument_ids=[str(instrument_id)])
    if not found:
        raise MissingDataError(
            f"expected instrument {label} in catalog {catalog_path(catalog)}, was absent; "
            "export it (datasets.catalog.export_catalog) or remove it from the config"
        )
    return found[0]


def catalog_path(catalog: ParquetDataCatalog) -> str:
    return str(getattr(catalog, "base_path", "the catalog"))


def _files(
    catalog: ParquetDataCatalog, root: Path, data_type: Any, identifier: str, first_ns: int, last_ns: int
) -> tuple[Path, ...]:
    # The catalog's files overlapping [first_ns, last_ns] (by their names), in time order.
    return tuple(root / f for f in sorted(catalog.query_files(data_type, [identifier], start=first_ns, end=last_ns)))


def _stamps(files: tuple[Path, ...], first_ns: int, last_ns: int) -> tuple[Any, Any]:
    # ts_event and ts_init of the rows with ts_init in [first_ns, last_ns], in file order.
    events, inits = [], []
    for path in files:
        table = pq.read_table(path, columns=["ts_event", "ts_init"])
        init = table["ts_init"].cast(pa.int64()).to_numpy()
        keep = (init >= first_ns) & (init <= last_ns)
        events.append(table["ts_event"].cast(pa.int64()).to_numpy()[keep])
        inits.append(init[keep])
    empty_ns = np.empty(0, dtype=np.int64)
    return (np.concatenate(events) if events else empty_ns), (np.concatenate(inits) if inits else empty_ns)


def _bars(
    catalog: ParquetDataCatalog, root: Path, config: RunConfig, instrument_id: InstrumentId, label: str
) -> BarStream:
    bar_type = f"{instrument_id}-{config.data.bar_spec}"
    interval = timedelta(microseconds=bar_interval_ns(config.data.bar_spec) // 1_000)
    wanted = f"{config.start.isoformat()} to {config.end.isoformat()}"
    first_ns, last_ns = ns_of(config.start), ns_of(config.end) - 1
    files = _files(catalog, root, NautilusDataType.Bar, bar_type, first_ns, last_ns)
    events, inits = _stamps(files, first_ns, last_ns)
    if not len(events):
        raise MissingDataError(
            f"expected {bar_type} bars for {label} from {wanted}, the catalog has none in that range; "
            "export that range or narrow --start/--end"
        )
    first, last = _moment(int(events.min())), _moment(int(events.max()))
    if first > config.start + interval or last < config.end - interval:
        raise MissingDataError(
            f"expected {bar_type} bars for {label} from {wanted}, the catalog covers only "
            f"{first.isoformat()} to {last.isoformat()}; export the missing range or narrow --start/--end"
        )
    metadata = pq.read_schema(files[0]).metadata or {}
    wrangler = BarDataWrangler(
        metadata[b"bar_type"].decode(), int(metadata[b"price_precision"]), int(metadata[b"size_precision"])
    )
    return BarStream(files, first_ns, last_ns, len(inits), int(inits[0]) + 1, int(inits[-1]) + 1, wrangler)


def _closes(stream: BarStream, instrument_id: InstrumentId) -> pl.LazyFrame:
    return _window(stream.files, stream.first_ns, stream.last_ns).select(
        pl.lit(str(instrument_id)).alias("instrument_id"),
        pl.col("ts_event").cast(NS).alias("ts"),
        pl.col("close").cast(DECIMAL),
    )


def _window(files: tuple[Path, ...], first_ns: int, last_ns: int) -> pl.LazyFrame:
    return pl.scan_parquet([str(f) for f in files]).filter(
        pl.col("ts_init").cast(pl.Int64).is_between(first_ns, last_ns)
    )


def _funding(
    catalog: ParquetDataCatalog, config: RunConfig, instrument_id: InstrumentId, label: str, clock: str
) -> tuple[list[Any], pl.DataFrame]:
    start_ns, end_ns = ns_of(config.start), ns_of(config.end)
    updates = catalog.query(
        NautilusDataType.FundingRateUpdate, [str(instrument_id)], start=ns_of(config.start - LOOKBACK), end=end_ns - 1
    )
    kept = sorted(
        (u for u in updates if u.next_funding_ns is not None and start_ns < u.next_funding_ns < end_ns),
        key=lambda u: u.ts_init,
    )
    if not kept:
        raise MissingDataError(
            f"expected funding settlements for {label} from {config.start.isoformat()} to {config.end.isoformat()}, "
            "the catalog has none; import and export its funding, or set data.funding = false"
        )
    if clock != "data":
        minutes = interval_secs(clock) // 60
        wrong = [u for u in kept if u.interval != minutes]
        if wrong:
            raise MissingDataError(
                f"expected {label} to settle funding every {clock} (venue funding_interval), the data says every "
                f'{wrong[0].interval} min at {wrong[0].next_funding_ns}; set funding_interval = "data" or fix the data'
            )
    frame = pl.DataFrame(
        {
            "instrument_id": [str(instrument_id)] * len(kept),
            "ts_init": [u.ts_init for u in kept],
            "next_funding": [u.next_funding_ns for u in kept],
            "rate": [u.rate for u in kept],
            "interval_minutes": [u.interval for u in kept],
        },
        schema=_integer_times(FUNDING_UPDATES_SCHEMA),
    ).with_columns(pl.col("ts_init", "next_funding").cast(NS))
    return kept, frame


def _marks(
    catalog: ParquetDataCatalog, root: Path, config: RunConfig, instrument_id: InstrumentId, label: str
) -> tuple[MarkStream, pl.LazyFrame]:
    start_ns, last_ns = ns_of(config.start), ns_of(config.end) - 1
    lookback_ns = ns_of(config.start - LOOKBACK)
    files = _files(catalog, root, NautilusDataType.MarkPriceUpdate, str(instrument_id), lookback_ns, last_ns)
    _, inits = _stamps(files, lookback_ns, last_ns)
    inits = np.sort(inits, kind="stable")
    # The last update before the start (what the engine settles the first boundary on), then the window.
    first = max(int(np.searchsorted(inits, start_ns, side="left")) - 1, 0)
    if first >= len(inits):
        raise MissingDataError(
            f"expected mark prices for {label} from {config.start.isoformat()} to {config.end.isoformat()}, the "
            "catalog has none; export its mark bars, or set data.mark_prices = false (funding then settles on the "
            "last bar close)"
        )
    first_ns = int(inits[first])
    precision = int((pq.read_schema(files[0]).metadata or {})[b"price_precision"])
    stream = MarkStream(catalog, instrument_id, precision, files, first_ns, last_ns, len(inits) - first)
    frame = (
        _window(files, first_ns, last_ns)
        .sort("ts_init", maintain_order=True)
        .select(
            pl.lit(str(instrument_id)).alias("instrument_id"),
            pl.col("ts_event").cast(NS).alias("ts"),
            pl.col("value").cast(DECIMAL).alias("mark_price"),
        )
    )
    return stream, frame


def _liquidations(catalog: ParquetDataCatalog, config: RunConfig, instrument_id: InstrumentId) -> list[Any]:
    import datasets.catalog.liquidations as liquidations  # registers the custom data class

    return list(
        catalog.query_custom_data(
            NautilusDataType.Custom(liquidations.TYPE_NAME),
            [str(instrument_id)],
            start=ns_of(config.start),
            end=ns_of(config.end) - 1,
        )
    )


def _integer_times(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: (pl.Int64 if v == NS else v) for k, v in schema.items()}


def catalog_streams(catalog: str | Path, instrument_id: str) -> list[str]:
    """Return what the catalog at ``catalog`` holds for ``instrument_id``: bar types, funding, mark prices."""
    root = Path(catalog) / "data"
    held = sorted(f"bars {p.name}" for p in (root / "bars").glob(f"{instrument_id}-*") if p.is_dir())
    for folder, kind in (("funding_rates", "funding rates"), ("mark_prices", "mark prices")):
        if (root / folder / instrument_id).is_dir():
            held.append(f"{kind} {instrument_id}")
    return held

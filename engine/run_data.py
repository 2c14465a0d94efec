"""Load a run's data from a Nautilus catalog and check it covers the requested range.

Backtests and replayed paper sessions both feed what ``load_run_data`` returns; the frames it keeps
(bars, marks, funding updates, in the schemas declared here) are what the ledgers are rebuilt from.

The engine is fed in time-ordered chunks (``DataFeed.chunks``): the data of the window is held as
Arrow columns (about 0.1 KiB a bar) and turned into Nautilus objects one chunk at a time, so the
objects alive at once depend on the chunk size, not on the window.

Bars reach the engine one nanosecond after they close (``ts_init = ts_event + 1``). At a funding
boundary ``T`` the engine's settlement timer fires after everything stamped ``T`` (the mark price at
``T``, the update announcing ``T + I``) and before the bar closing at ``T``: a position opened on that
bar was not held at ``T`` and pays nothing for it, and one closed on it was held and pays. Without the
shift Nautilus would settle after the strategy's reaction to the bar at ``T``, crediting funding to a
position opened after the settlement instant.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from nautilus_trader.model import FIXED_PRECISION, InstrumentId, MarkPriceUpdate, NautilusDataType, Price
from nautilus_trader.persistence import BarDataWrangler, ParquetDataCatalog

from datasets.schemas import interval_secs
from datasets.symbols import market_of
from engine.config import RunConfig
from engine.errors import MissingDataError
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


@dataclass(slots=True)
class _BarStream:
    table: pa.Table  # the catalog's bar columns, ts_init already shifted by 1 ns, sorted by ts_init
    ts_init: Any  # numpy int64 view of table["ts_init"], for slicing
    wrangler: BarDataWrangler


@dataclass(slots=True)
class _MarkStream:
    instrument_id: InstrumentId
    price_precision: int
    raw: list[int]  # Price.raw of each value (fixed precision)
    ts_event: list[int]
    ts_init: Any  # numpy int64


@dataclass(slots=True)
class _InstrumentFeed:
    bars: _BarStream
    funding: list[Any] = field(default_factory=list)  # FundingRateUpdate, sorted by ts_init
    marks: _MarkStream | None = None
    liquidations: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class DataFeed:
    """The objects a run feeds the engine, built chunk by chunk from columns held for the window.

    Each chunk holds, per instrument in config order, its bars, funding updates, mark prices and
    liquidations whose ``ts_init`` falls in the chunk, in that order: the order ``add_data`` gets
    when the whole window is added at once, so a stable sort by ``ts_init`` of each chunk gives the
    same sequence as the sort of the whole window.
    """

    instruments: list[_InstrumentFeed] = field(default_factory=list)

    @property
    def bar_count(self) -> int:
        return sum(i.bars.table.num_rows for i in self.instruments)

    @property
    def event_count(self) -> int:
        """Bars, funding updates, mark prices and liquidations fed."""
        return self.bar_count + sum(
            len(i.funding) + (len(i.marks.raw) if i.marks else 0) + len(i.liquidations) for i in self.instruments
        )

    def boundaries(self, chunk_ns: int | None) -> list[int]:
        """Return the ``ts_init`` where chunks of ``chunk_ns`` start (the first chunk also holds everything earlier)."""
        stamps = [int(i.bars.ts_init[0]) for i in self.instruments if i.bars.table.num_rows]
        lasts = [int(i.bars.ts_init[-1]) for i in self.instruments if i.bars.table.num_rows]
        if not chunk_ns or not stamps:
            return []
        first, last = min(stamps), max(lasts)
        # Chunks start on a bar close T: the mark and funding update stamped T open the chunk, the bar
        # closing at T (stamped T + 1 ns) follows; the settlement timer at T fires between them either way.
        return list(range(first - 1 + chunk_ns, last + 1, chunk_ns))

    def chunks(self, chunk_ns: int | None = None) -> Iterator[list[Any]]:
        """Yield the engine's data in chunks of ``chunk_ns`` of ``ts_init`` (one chunk when None), in time order."""
        edges = [None, *self.boundaries(chunk_ns), None]
        for low, high in itertools.pairwise(edges):
            chunk: list[Any] = []
            for feed in self.instruments:
                chunk.extend(_bars_between(feed.bars, low, high))
                chunk.extend(_objects_between(feed.funding, low, high))
                if feed.marks is not None:
                    chunk.extend(_marks_between(feed.marks, low, high))
                chunk.extend(_objects_between(feed.liquidations, low, high))
            if chunk:
                yield chunk

    def objects(self) -> list[Any]:
        """Return every object of the window (one chunk)."""
        return [item for chunk in self.chunks() for item in chunk]


def _span(stamps: Any, low: int | None, high: int | None) -> tuple[int, int]:
    begin = 0 if low is None else int(np.searchsorted(stamps, low, side="left"))
    end = len(stamps) if high is None else int(np.searchsorted(stamps, high, side="left"))
    return begin, end


def _bars_between(stream: _BarStream, low: int | None, high: int | None) -> list[Any]:
    begin, end = _span(stream.ts_init, low, high)
    if begin >= end:
        return []
    sink = pa.BufferOutputStream()
    part = stream.table.slice(begin, end - begin)
    with pa.ipc.new_stream(sink, part.schema) as writer:
        writer.write_table(part)
    objects: list[Any] = stream.wrangler.process_record_batch_bytes(sink.getvalue().to_pybytes())
    return objects


def _objects_between(objects: list[Any], low: int | None, high: int | None) -> list[Any]:
    if not objects:
        return []
    stamps = np.fromiter((o.ts_init for o in objects), dtype=np.int64, count=len(objects))
    begin, end = _span(stamps, low, high)
    return objects[begin:end]


def _marks_between(stream: _MarkStream, low: int | None, high: int | None) -> list[Any]:
    begin, end = _span(stream.ts_init, low, high)
    instrument_id, precision = stream.instrument_id, stream.price_precision
    return [
        MarkPriceUpdate(instrument_id, Price.from_raw(raw, precision), ts_event, ts_init)
        for raw, ts_event, ts_init in zip(
            stream.raw[begin:end], stream.ts_event[begin:end], stream.ts_init[begin:end].tolist(), strict=True
        )
    ]


@dataclass(slots=True)
class RunData:
    """Everything one run feeds the engine, plus the frames the ledgers are rebuilt from.

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
    bars: pl.DataFrame = field(default_factory=pl.DataFrame)
    marks: pl.DataFrame = field(default_factory=pl.DataFrame)
    funding: pl.DataFrame = field(default_factory=pl.DataFrame)
    venue_of: dict[str, str] = field(default_factory=dict)

    @property
    def bar_count(self) -> int:
        return self.bars.height

    @property
    def engine_data(self) -> list[Any]:
        """Every object the engine is fed, unsorted (built on each access: prefer ``feed.chunks``)."""
        return self.feed.objects()


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

    Raises
    ------
    MissingDataError
        If an instrument, its bars, or (for perps) its funding or mark prices are absent or do not
        cover the requested range; the message names the instrument and the missing range.
    """
    data = RunData()
    bars, marks, funding = [], [], []
    for venue in config.venues:
        for symbol in venue.instruments:
            instrument_id = instrument_id_for(venue.name, symbol)
            label = f"{venue.name}:{symbol} ({instrument_id})"
            data.venue_of[str(instrument_id)] = venue.name
            data.instruments[instrument_id] = _instrument(catalog, instrument_id, label)
            progress(f"loading {label}")
            stream, frame = _bars(catalog, config, instrument_id, label)
            feed = _InstrumentFeed(bars=stream)
            data.feed.instruments.append(feed)
            bars.append(frame)
            if market_of(symbol) != "perp":
                continue
            if config.data.funding:
                feed.funding, frame = _funding(catalog, config, instrument_id, label, venue.funding_interval)
                funding.append(frame)
            if config.data.mark_prices:
                feed.marks, frame = _marks(catalog, config, instrument_id, label)
                marks.append(frame)
            if config.data.liquidations:
                feed.liquidations = sorted(_liquidations(catalog, config, instrument_id), key=lambda e: e.ts_init)
    data.bars = pl.concat(bars) if bars else empty(BARS_SCHEMA)
    data.marks = pl.concat(marks) if marks else empty(MARKS_SCHEMA)
    data.funding = pl.concat(funding) if funding else empty(FUNDING_UPDATES_SCHEMA)
    return data


def empty(schema: dict[str, Any]) -> pl.DataFrame:
    """Return an empty frame of ``schema``."""
    return pl.DataFrame(schema=schema)


def ns_of(moment: datetime) -> int:
    """Return a UTC datetime as integer nanoseconds since the epoch (exact to the microsecond)."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


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


def _bars(
    catalog: ParquetDataCatalog, config: RunConfig, instrument_id: InstrumentId, label: str
) -> tuple[_BarStream, pl.DataFrame]:
    bar_type = f"{instrument_id}-{config.data.bar_spec}"
    interval = timedelta(microseconds=bar_interval_ns(config.data.bar_spec) // 1_000)
    wanted = f"{config.start.isoformat()} to {config.end.isoformat()}"
    raw = catalog.query_data_arrow_bytes(
        NautilusDataType.Bar, [bar_type], start=ns_of(config.start), end=ns_of(config.end) - 1, display=False
    )
    table = pa.ipc.open_stream(raw).read_all() if raw else None
    if table is None or table.num_rows == 0:
        raise MissingDataError(
            f"expected {bar_type} bars for {label} from {wanted}, the catalog has none in that range; "
            "export that range or narrow --start/--end"
        )
    frame = pl.from_arrow(table.select(["ts_event", "close"]))
    if not isinstance(frame, pl.DataFrame):
        raise MissingDataError(f"expected a table of {bar_type} bars, the catalog returned {type(frame).__name__}")
    first, last = frame["ts_event"].min(), frame["ts_event"].max()
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        raise MissingDataError(f"expected timestamps in {bar_type} bars, found {first!r} and {last!r}")
    if first > config.start + interval or last < config.end - interval:
        raise MissingDataError(
            f"expected {bar_type} bars for {label} from {wanted}, the catalog covers only "
            f"{first.isoformat()} to {last.isoformat()}; export the missing range or narrow --start/--end"
        )
    metadata = table.schema.metadata or {}
    shifted = table.drop_columns([c for c in table.column_names if c == "identifier"])
    ts_init = shifted.schema.get_field_index("ts_init")
    stamps = pc.add(shifted["ts_init"].cast(pa.int64()), 1)
    shifted = shifted.set_column(ts_init, "ts_init", stamps.cast(shifted.schema.field("ts_init").type))
    wrangler = BarDataWrangler(
        metadata[b"bar_type"].decode(), int(metadata[b"price_precision"]), int(metadata[b"size_precision"])
    )
    closes = frame.select(
        pl.lit(str(instrument_id)).alias("instrument_id"),
        pl.col("ts_event").cast(NS).alias("ts"),
        pl.col("close").cast(DECIMAL),
    )
    return _BarStream(shifted, stamps.to_numpy(), wrangler), closes


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
    catalog: ParquetDataCatalog, config: RunConfig, instrument_id: InstrumentId, label: str
) -> tuple[_MarkStream, pl.DataFrame]:
    start_ns, end_ns = ns_of(config.start), ns_of(config.end)
    raw = catalog.query_data_arrow_bytes(
        NautilusDataType.MarkPriceUpdate,
        [str(instrument_id)],
        start=ns_of(config.start - LOOKBACK),
        end=end_ns - 1,
        display=False,
    )
    table = pa.ipc.open_stream(raw).read_all() if raw else None
    if table is not None and table.num_rows:
        table = table.take(pc.sort_indices(table, [("ts_init", "ascending")]))  # stable
        stamps = table["ts_init"].cast(pa.int64()).to_numpy()
        # The last update before the start (what the engine settles the first boundary on), then the window.
        first = max(int(np.searchsorted(stamps, start_ns, side="left")) - 1, 0)
        table = table.slice(first)
    if table is None or table.num_rows == 0:
        raise MissingDataError(
            f"expected mark prices for {label} from {config.start.isoformat()} to {config.end.isoformat()}, the "
            "catalog has none; export its mark bars, or set data.mark_prices = false (funding then settles on the "
            "last bar close)"
        )
    precision = int((table.schema.metadata or {})[b"price_precision"])
    stream = _MarkStream(
        instrument_id=instrument_id,
        price_precision=precision,
        raw=_fixed_raw(table["value"]),
        ts_event=table["ts_event"].cast(pa.int64()).to_pylist(),
        ts_init=table["ts_init"].cast(pa.int64()).to_numpy(),
    )
    frame = pl.DataFrame(
        {
            "instrument_id": pl.Series([str(instrument_id)], dtype=pl.String).extend_constant(
                str(instrument_id), table.num_rows - 1
            ),
            "ts": pl.from_arrow(table["ts_event"]),
            "mark_price": pl.from_arrow(table["value"]),
        }
    ).with_columns(pl.col("ts").cast(NS), pl.col("mark_price").cast(DECIMAL))
    return stream, frame


def _fixed_raw(values: pa.ChunkedArray) -> list[int]:
    # decimal128 values as Nautilus' fixed-point raw integers (FIXED_PRECISION decimals): the
    # unscaled 128-bit integers, rescaled, without a Decimal per value.
    array = values.combine_chunks()
    scale = array.type.scale
    words = np.frombuffer(array.buffers()[1], dtype="<u8", count=2 * len(array), offset=array.offset * 16)
    low, high = words[0::2].tolist(), words[1::2].view(np.int64).tolist()
    if scale == FIXED_PRECISION:
        return [(h << 64) | lo for h, lo in zip(high, low, strict=True)]
    if scale < FIXED_PRECISION:
        factor = 10 ** (FIXED_PRECISION - scale)
        return [((h << 64) | lo) * factor for h, lo in zip(high, low, strict=True)]
    divisor = 10 ** (scale - FIXED_PRECISION)
    return [((h << 64) | lo) // divisor for h, lo in zip(high, low, strict=True)]


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

"""Export the canonical store into a Nautilus 2.x ``ParquetDataCatalog``: the one place that knows its format.

``export_catalog(store, catalog_dir, ...)`` writes, for every selected venue and canonical symbol with
data, from the instrument spec stored in force at the start of its window (``datasets.instruments``:
the ``instruments`` kind, fetched from the venue or imported from a table):

- the instrument (``CurrencyPair`` spot, ``CryptoPerpetual`` perp), through Nautilus' own writer;
- bars from ``ohlcv``: trade prices as ``<instrument_id>-<step>-<MINUTE|HOUR|DAY>-LAST-EXTERNAL``,
  mark prices as ``...-MARK-EXTERNAL``, stamped at the bar CLOSE (``ts_event = ts_init = ts + interval``);
- ``MarkPriceUpdate`` rows from the finest mark interval (value = bar close, at the close time): the
  simulated exchange settles funding at the latest mark price; likewise ``IndexPriceUpdate`` rows from
  index bars. Index *bars* are skipped (Nautilus 2.0 has no INDEX bar price type) and listed in
  ``ExportSummary.skipped``;
- ``FundingRateUpdate`` rows, one per settlement, announced one interval early (see
  ``datasets.catalog.funding`` for the timing and its look-ahead);
- liquidations as ``Liquidation`` custom data (``datasets.catalog.liquidations``), for any venue.

A symbol with data but no stored spec in force refuses the export (``MissingInstrumentSpecsError``,
exit 3) naming the symbols and the command that fetches their specs, unless ``infer_instruments`` is
set: then tick and lot are inferred from the data (``datasets.instruments.infer_instrument_spec``) and
the instrument is marked inferred (its Nautilus ``info``, ``"inferred": true`` in ``venues.json``, and the
engine's ``stats.json`` and report). One spec per instrument: a spec change inside the window is not
applied (the window's start decides). Streams of research-only venues (no Nautilus venue in
``datasets.venues.VENUES``) and funding on spot symbols are skipped and listed in the summary. Re-exporting
replaces: every stream an export touches (a bar type, an instrument's mark prices, funding, ...) is
rewritten whole from the store rows in ``[start, end)``, so the catalog never holds duplicates; a
touched stream without rows in the range is removed; streams the export does not touch are kept.
Streams are staged and swapped in at the end (``datasets.catalog.files``).

``venues.json`` in the catalog root tells the engine how to build each venue's fee model and funding
clock (merged with the file already there, exported venues and instruments replaced). It is staged
with the streams and swapped in after them in the same commit, so a failed export leaves the old file
beside the old streams::

    {
      "format": "carrylab.catalog.venues",
      "version": 1,
      "venues": {
        "BINANCE": {                               # Nautilus venue name
          "store_venue": "binance",
          "funding_interval": "8h",                # default clock; updates carry their own interval
          "funding_interval_minutes": 480,
          "maker_fee": "0.0002",                   # venue default = its perp schedule (decimal text)
          "taker_fee": "0.0005",
          "fee_schedules": {"perp": {"maker": "0.0002", "taker": "0.0005", "schedule": "...", "as_of": "..."},
                            "spot": {...}},
          "instruments": {                         # every exported instrument, with its own rates
            "BTCUSDT-PERP.BINANCE": {"symbol": "BTC-USDT-PERP", "market": "perp",
                                     "maker_fee": "0.0002", "taker_fee": "0.0005"},
            "LINKUSDT-PERP.BINANCE": {..., "inferred": true}   # only on inferred specs
          }
        }
      }
    }

``read_venues_file(catalog_dir)`` parses it; ``CatalogVenue.fee_model()`` returns
``MakerTakerFeeModel(maker_fee, taker_fee, overrides={instrument_id: (maker, taker)})``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from tqdm import tqdm

from datasets.catalog.bars import bar_type_text, bars_table, price_updates_table
from datasets.catalog.files import (
    CatalogError,
    CatalogWriter,
    custom_directory_name,
    instrument_directory_name,
)
from datasets.catalog.funding import funding_table
from datasets.catalog.instruments import build_instrument, instrument_type_directory
from datasets.catalog.liquidations import TYPE_NAME as LIQUIDATION_TYPE
from datasets.catalog.liquidations import liquidations_table
from datasets.errors import NotInStoreError
from datasets.instruments import (
    InstrumentSpec,
    MissingInstrumentSpecsError,
    infer_instrument_spec,
    missing_specs_message,
    spec_in_force,
)
from datasets.schemas import FUNDING, LIQUIDATIONS, OHLCV, interval_secs
from datasets.store import Store
from datasets.symbols import market_of
from datasets.venues import VENUES, venue_spec

__all__ = [
    "VENUES_FILE",
    "CatalogError",
    "CatalogVenue",
    "ExportSummary",
    "ExportedStream",
    "MissingInstrumentSpecsError",
    "SkippedStream",
    "export_catalog",
    "read_venues_file",
]

VENUES_FILE = "venues.json"
VENUES_FORMAT = "carrylab.catalog.venues"
VENUES_VERSION = 1
# Store price type -> the update type its finest interval's closes become, and that type's directory.
PRICE_UPDATES = (("mark", "MarkPriceUpdate", "mark_prices"), ("index", "IndexPriceUpdate", "index_prices"))


@dataclass(frozen=True, slots=True)
class ExportedStream:
    """One stream written to the catalog: its Nautilus data type, identifier, row count and ts_event range."""

    data_type: str
    identifier: str
    rows: int
    ts_first: datetime | None
    ts_last: datetime | None
    path: Path


@dataclass(frozen=True, slots=True)
class SkippedStream:
    """A store stream the export did not write, and why."""

    kind: str
    venue: str
    symbol: str
    detail: str
    reason: str


@dataclass(slots=True)
class ExportSummary:
    """What an export wrote (``streams``) and left out (``skipped``)."""

    catalog_dir: Path
    streams: list[ExportedStream] = field(default_factory=list)
    skipped: list[SkippedStream] = field(default_factory=list)

    def rows(self, data_type: str) -> int:
        """Return the rows written of one data type (``Bar``, ``FundingRateUpdate``, ...)."""
        return sum(s.rows for s in self.streams if s.data_type == data_type)

    def stream(self, data_type: str, identifier: str) -> ExportedStream:
        """Return the stream of a data type and identifier.

        Raises
        ------
        KeyError
            If the export wrote no such stream.
        """
        for s in self.streams:
            if s.data_type == data_type and s.identifier == identifier:
                return s
        raise KeyError(f"no {data_type} stream {identifier!r} in this export")

    def __str__(self) -> str:
        lines = [f"catalog {self.catalog_dir}: {len(self.streams)} streams"]
        for s in sorted(self.streams, key=lambda s: (s.data_type, s.identifier)):
            span = f"{_iso(s.ts_first)} .. {_iso(s.ts_last)}" if s.rows else "(no rows: removed)"
            lines.append(f"  {s.data_type:<18} {s.identifier:<52} {s.rows:>10,} rows  {span}")
        for k in self.skipped:
            lines.append(f"  skipped {k.kind} {k.venue}:{k.symbol} {k.detail}: {k.reason}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CatalogVenue:
    """One venue of ``venues.json``: what the engine needs to simulate it."""

    nautilus_venue: str
    store_venue: str
    funding_interval: str
    maker_fee: Decimal
    taker_fee: Decimal
    fee_overrides: dict[Any, tuple[Decimal, Decimal]]
    inferred: frozenset[str] = frozenset()

    def fee_model(self) -> Any:
        """Return a ``MakerTakerFeeModel`` charging each exported instrument its own rates."""
        from nautilus_trader.execution import MakerTakerFeeModel

        return MakerTakerFeeModel(self.maker_fee, self.taker_fee, overrides=self.fee_overrides)


@dataclass(slots=True)
class _Plan:
    ohlcv: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    funding: set[tuple[str, str]] = field(default_factory=set)
    liquidations: set[tuple[str, str]] = field(default_factory=set)
    skipped: list[SkippedStream] = field(default_factory=list)
    first: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def instruments(self) -> list[tuple[str, str]]:
        return sorted(set(self.ohlcv) | self.funding)


def export_catalog(
    store: Store,
    catalog_dir: str | os.PathLike[str],
    *,
    venues: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    infer_instruments: bool = False,
    progress: bool = False,
) -> ExportSummary:
    """Write the store's instruments, bars, mark/index prices, funding and liquidations as a Nautilus catalog.

    Parameters
    ----------
    store : Store
        The canonical store to read.
    catalog_dir : str | os.PathLike
        The catalog root (created if missing); ``venues.json`` is written there, in the same commit as the streams.
    venues, symbols : sequence of str, optional
        Store venues (``binance``) and canonical symbols (``BTC-USDT-PERP``) to export (default: all).
    start, end : datetime, optional
        Half-open UTC range ``[start, end)`` of store ``ts`` (bar open time, settlement time).
    infer_instruments : bool
        Infer tick and lot from the data for symbols without a stored spec in force (marked inferred)
        instead of refusing the export.
    progress : bool
        Show a progress bar per instrument on stderr.

    Returns
    -------
    ExportSummary
        Every stream written (data type, identifier, rows, time range) and every stream skipped.

    Raises
    ------
    UnknownVenueError
        If a requested venue has no spec in ``datasets.venues``.
    MissingInstrumentSpecsError
        If a symbol with data has no stored spec in force at the start of its window (and none can be
        inferred with ``infer_instruments``); the message names them and the command that fetches them.
    NotInStoreError
        If the store holds no data of a requested venue or symbol, or none in ``[start, end)``; the
        message lists what it holds (nothing is changed then).
    CatalogError
        If the range is empty or not timezone-aware, two streams map to one catalog directory, or the
        catalog's ``venues.json`` is not in the documented format (nothing is changed then).
    """
    _check_range(start, end)
    for venue in venues or ():
        venue_spec(venue)
    _require_in_store(store, venues, symbols, start, end)
    root = Path(catalog_dir)
    plan = _plan(store, venues, symbols)
    summary = ExportSummary(catalog_dir=root, skipped=list(plan.skipped))
    specs = _specs(store, plan, start, end, infer=infer_instruments)
    instruments = [build_instrument(spec) for spec in specs]
    with CatalogWriter(root) as writer:
        writer.stage_instruments([instrument_type_directory(spec) for spec in specs], instruments)
        for spec, instrument in zip(specs, instruments, strict=True):
            path = root / instrument_type_directory(spec)
            summary.streams.append(ExportedStream(instrument.type_name, str(spec.instrument_id), 1, None, None, path))
        for spec in tqdm(specs, disable=not progress, desc="export-catalog", unit="instrument"):
            streams = plan.ohlcv.get((spec.venue, spec.symbol), set())
            _export_ohlcv(store, writer, summary, spec, streams, start, end)
            if (spec.venue, spec.symbol) in plan.funding:
                _export_funding(store, writer, summary, spec, start, end)
        _export_liquidations(store, writer, summary, plan.liquidations, specs, start, end)
        _stage_venues_file(writer, specs)
        writer.commit()
    return summary


def read_venues_file(catalog_dir: str | os.PathLike[str]) -> dict[str, CatalogVenue]:
    """Return the venues of a catalog's ``venues.json``, keyed by Nautilus venue name.

    Raises
    ------
    CatalogError
        If the file is missing or not in the documented format (the message names the bad entry).
    """
    path = Path(catalog_dir) / VENUES_FILE
    document = _load_venues_document(path, missing_ok=False)
    venues = {}
    for name, entry in document["venues"].items():
        try:
            venues[name] = _catalog_venue(name, entry)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            raise CatalogError(
                f"{path}: venue {name!r}: expected store_venue, funding_interval, maker_fee, taker_fee and "
                f"instruments with decimal maker_fee/taker_fee, was {detail}; re-export the catalog"
            ) from None
    return venues


def _catalog_venue(name: str, entry: dict[str, Any]) -> CatalogVenue:
    from nautilus_trader.model import InstrumentId

    overrides = {
        InstrumentId.from_str(iid): (_fee(i["maker_fee"]), _fee(i["taker_fee"]))
        for iid, i in entry["instruments"].items()
    }
    return CatalogVenue(
        nautilus_venue=name,
        store_venue=str(entry["store_venue"]),
        funding_interval=str(entry["funding_interval"]),
        maker_fee=_fee(entry["maker_fee"]),
        taker_fee=_fee(entry["taker_fee"]),
        fee_overrides=overrides,
        inferred=frozenset(iid for iid, i in entry["instruments"].items() if i.get("inferred") is True),
    )


def _fee(text: object) -> Decimal:
    if not isinstance(text, str):
        raise TypeError(f"a fee must be decimal text, was {text!r}")
    rate = Decimal(text)
    if not rate.is_finite():
        raise ValueError(f"a fee must be a finite decimal, was {text!r}")
    return rate


# ------------------------------------------------------------------------------------------ planning
def _check_range(start: datetime | None, end: datetime | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise CatalogError(f"{name} must be a timezone-aware UTC datetime, was naive {value.isoformat()}")
    if start is not None and end is not None and start >= end:
        raise CatalogError(f"start must be before end, was [{start.isoformat()}, {end.isoformat()})")


def _require_in_store(
    store: Store,
    venues: Sequence[str] | None,
    symbols: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    # An export of something the store lacks would write an empty catalog that fails only at backtest time.
    parts = [p for kind in (OHLCV.kind, FUNDING.kind, LIQUIDATIONS.kind) for p in store.partitions(kind)]
    held = sorted({(p.values["venue"], p.values["symbol"]) for p in parts})
    by_venue: dict[str, list[str]] = defaultdict(list)
    for venue, symbol in held:
        by_venue[venue].append(symbol)
    holding = "; ".join(
        f"{venue}: {', '.join(names[:8])}" + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        for venue, names in by_venue.items()
    )
    holding = holding or "nothing"
    fix = f"the store {store.root} holds {holding}: import or fetch the data first, or ask for what it holds"
    missing_venue = next((v for v in venues or () if v not in {v for v, _ in held}), None)
    if missing_venue is not None:
        raise NotInStoreError(f"expected data of venue {missing_venue!r} in the store, was none; {fix}")
    chosen = [(v, s) for v, s in held if venues is None or v in venues]
    missing_symbol = next((s for s in symbols or () if s not in {s for _, s in chosen}), None)
    if missing_symbol is not None:
        raise NotInStoreError(f"expected data of symbol {missing_symbol!r} in the store, was none; {fix}")
    if not held:
        raise NotInStoreError(f"expected data to export, was none; {fix}")
    if start is None and end is None:
        return
    selected = [p for p in parts if _selected(p.values, venues, symbols)]
    inside = [p for p in selected if (start is None or p.ts_max >= start) and (end is None or p.ts_min < end)]
    if not inside:
        first = min(p.ts_min for p in selected)
        last = max(p.ts_max for p in selected)
        raise NotInStoreError(
            f"expected data in [{_iso(start)}, {_iso(end)}), was none: the store holds the selection from "
            f"{first.isoformat()} to {last.isoformat()}; ask for a range inside it"
        )


def _selected(values: dict[str, str], venues: Sequence[str] | None, symbols: Sequence[str] | None) -> bool:
    return (venues is None or values["venue"] in venues) and (symbols is None or values["symbol"] in symbols)


def _plan(store: Store, venues: Sequence[str] | None, symbols: Sequence[str] | None) -> _Plan:
    plan = _Plan()
    for part in store.partitions(OHLCV.kind):
        values = part.values
        if not _selected(values, venues, symbols):
            continue
        key = (values["venue"], values["symbol"])
        if key[0] in VENUES:
            plan.ohlcv[key].add((values["price_type"], values["interval"]))
            plan.first[key] = min(plan.first.get(key, part.ts_min), part.ts_min)
        else:
            detail = f"{values['price_type']} {values['interval']}"
            plan.skipped.append(SkippedStream("ohlcv", *key, detail, _RESEARCH_ONLY))
    for part in store.partitions(FUNDING.kind):
        values = part.values
        if not _selected(values, venues, symbols):
            continue
        key = (values["venue"], values["symbol"])
        if key[0] not in VENUES:
            plan.skipped.append(SkippedStream("funding", *key, "", _RESEARCH_ONLY))
        elif market_of(key[1]) != "perp":
            plan.skipped.append(SkippedStream("funding", *key, "", "funding on a spot symbol"))
        else:
            plan.funding.add(key)
            plan.first[key] = min(plan.first.get(key, part.ts_min), part.ts_min)
    for part in store.partitions(LIQUIDATIONS.kind):
        if _selected(part.values, venues, symbols):
            plan.liquidations.add((part.values["venue"], part.values["symbol"]))
    plan.skipped = sorted(set(plan.skipped), key=lambda k: (k.kind, k.venue, k.symbol, k.detail))
    return plan


_RESEARCH_ONLY = "research-only venue: no Nautilus venue in datasets.venues.VENUES"


def _specs(
    store: Store, plan: _Plan, start: datetime | None, end: datetime | None, *, infer: bool
) -> list[InstrumentSpec]:
    specs: list[InstrumentSpec] = []
    missing: dict[str, list[str]] = defaultdict(list)
    for venue, symbol in plan.instruments():
        first = plan.first[(venue, symbol)]
        at = max(start, first) if start is not None else first
        try:
            specs.append(spec_in_force(store, venue, symbol, at))
            continue
        except NotInStoreError:
            pass
        inferred = infer_instrument_spec(store, venue, symbol, start=start, end=end) if infer else None
        if inferred is None:
            missing[venue].append(symbol)
        else:
            specs.append(inferred)
    if missing:
        at_text = f"{_iso(start)} (or their first row after it)" if start is not None else "their first row"
        raise MissingInstrumentSpecsError(missing_specs_message(missing, at=at_text, inferable=not infer))
    return specs


# ------------------------------------------------------------------------------------------- streams
def _read_ohlcv(
    store: Store, spec: InstrumentSpec, price_type: str, interval: str, start: datetime | None, end: datetime | None
) -> pl.DataFrame:
    frame = store.scan(
        "ohlcv", start=start, end=end, venue=spec.venue, symbol=spec.symbol, price_type=price_type, interval=interval
    )
    return frame.collect()


def _record(summary: ExportSummary, data_type: str, identifier: str, table: pa.Table, path: Path) -> None:
    if table.num_rows:
        ts = table.column("ts_event")
        first, last = ts[0].value, ts[-1].value
        summary.streams.append(
            ExportedStream(data_type, identifier, table.num_rows, _datetime(first), _datetime(last), path)
        )
    else:
        summary.streams.append(ExportedStream(data_type, identifier, 0, None, None, path))


def _stage(
    writer: CatalogWriter, summary: ExportSummary, relative: Path, table: pa.Table, data_type: str, identifier: str
) -> None:
    writer.stage_table(relative, table)
    _record(summary, data_type, identifier, table, writer.catalog_dir / relative)


def _export_ohlcv(
    store: Store,
    writer: CatalogWriter,
    summary: ExportSummary,
    spec: InstrumentSpec,
    streams: set[tuple[str, str]],
    start: datetime | None,
    end: datetime | None,
) -> None:
    instrument_id = str(spec.instrument_id)
    for price_type, interval in sorted(streams):
        if price_type == "index":
            reason = "Nautilus has no INDEX bar price type; the finest index interval is exported as IndexPriceUpdate"
            summary.skipped.append(SkippedStream("ohlcv", spec.venue, spec.symbol, f"index {interval}", reason))
            continue
        frame = _read_ohlcv(store, spec, price_type, interval, start, end)
        bar_type = bar_type_text(instrument_id, interval, price_type)
        table = bars_table(
            frame,
            bar_type=bar_type,
            instrument_id=instrument_id,
            interval=interval,
            price_increment=spec.price_increment,
            size_precision=spec.size_precision,
        )
        _stage(writer, summary, Path("data", "bars", instrument_directory_name(bar_type)), table, "Bar", bar_type)
    for price_type, type_name, directory in PRICE_UPDATES:
        intervals = [interval for kind, interval in streams if kind == price_type]
        if not intervals:
            continue
        interval = min(intervals, key=interval_secs)
        frame = _read_ohlcv(store, spec, price_type, interval, start, end)
        table = price_updates_table(
            frame,
            instrument_id=instrument_id,
            interval=interval,
            price_precision=spec.price_precision,
            type_name=type_name,
        )
        relative = Path("data", directory, instrument_directory_name(instrument_id))
        _stage(writer, summary, relative, table, type_name, instrument_id)


def _export_funding(
    store: Store,
    writer: CatalogWriter,
    summary: ExportSummary,
    spec: InstrumentSpec,
    start: datetime | None,
    end: datetime | None,
) -> None:
    instrument_id = str(spec.instrument_id)
    frame = store.scan("funding", start=start, end=end, venue=spec.venue, symbol=spec.symbol).collect()
    table = funding_table(frame, instrument_id=instrument_id)
    relative = Path("data", "funding_rates", instrument_directory_name(instrument_id))
    _stage(writer, summary, relative, table, "FundingRateUpdate", instrument_id)


def _export_liquidations(
    store: Store,
    writer: CatalogWriter,
    summary: ExportSummary,
    streams: set[tuple[str, str]],
    specs: Sequence[InstrumentSpec],
    start: datetime | None,
    end: datetime | None,
) -> None:
    if not streams:
        return
    known = {(spec.venue, spec.symbol): str(spec.instrument_id) for spec in specs}
    frame = store.scan("liquidations", start=start, end=end, venue=sorted({v for v, _ in streams})).collect()
    groups = frame.partition_by("venue", "symbol", as_dict=True) if frame.height else {}
    for venue, symbol in sorted(streams):
        rows = groups.get((venue, symbol), frame.clear())
        instrument_id = known.get((venue, symbol))
        if instrument_id is not None:
            identifier = instrument_id
        else:
            instrument_id = None
            identifier = f"{symbol}.{VENUES[venue].nautilus_venue if venue in VENUES else venue.upper()}"
        table = liquidations_table(rows, identifier=identifier, instrument_id=instrument_id)
        relative = Path("data", "custom", LIQUIDATION_TYPE, custom_directory_name(identifier))
        _stage(writer, summary, relative, table, LIQUIDATION_TYPE, identifier)


# ------------------------------------------------------------------------------------- venues.json
def _load_venues_document(path: Path, *, missing_ok: bool, fix: str = "re-export the catalog") -> dict[str, Any]:
    if not path.exists():
        if missing_ok:
            return {"format": VENUES_FORMAT, "version": VENUES_VERSION, "venues": {}}
        raise CatalogError(f"{path} not found: export the catalog with datasets.catalog.export_catalog first")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(document, dict) or document.get("format") != VENUES_FORMAT or "venues" not in document:
        raise CatalogError(f"{path}: expected format {VENUES_FORMAT!r} with a 'venues' table; {fix}")
    if document.get("version") != VENUES_VERSION:
        raise CatalogError(f"{path}: expected version {VENUES_VERSION}, was {document.get('version')!r}; {fix}")
    return document


def venues_document(specs: Sequence[InstrumentSpec], existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the ``venues.json`` content for exported instruments, merged into an ``existing`` document."""
    document = existing or {"format": VENUES_FORMAT, "version": VENUES_VERSION, "venues": {}}
    by_venue: dict[str, list[InstrumentSpec]] = defaultdict(list)
    for spec in specs:
        by_venue[spec.venue].append(spec)
    for name, members in sorted(by_venue.items()):
        venue = venue_spec(name)
        old = document["venues"].get(venue.nautilus_venue, {}).get("instruments", {})
        instruments = dict(old)
        for member in members:
            fees = venue.fees(member.market)
            instruments[str(member.instrument_id)] = {
                "symbol": member.symbol,
                "market": member.market,
                "maker_fee": str(fees.maker),
                "taker_fee": str(fees.taker),
            } | ({"inferred": True} if member.inferred else {})
        document["venues"][venue.nautilus_venue] = {
            "store_venue": venue.name,
            "funding_interval": venue.funding_interval,
            "funding_interval_minutes": venue.funding_interval_minutes,
            "maker_fee": str(venue.perp_fees.maker),
            "taker_fee": str(venue.perp_fees.taker),
            "fee_schedules": {
                market: {
                    "maker": str(s.maker),
                    "taker": str(s.taker),
                    "schedule": s.schedule,
                    "as_of": s.as_of,
                }
                for market, s in (("perp", venue.perp_fees), ("spot", venue.spot_fees))
            },
            "instruments": dict(sorted(instruments.items())),
        }
    document["venues"] = dict(sorted(document["venues"].items()))
    return document


def _stage_venues_file(writer: CatalogWriter, specs: Sequence[InstrumentSpec]) -> None:
    path = writer.catalog_dir / VENUES_FILE
    fix = "the export merges into it, so it changed nothing: move the file aside and export every venue again"
    document = venues_document(specs, _load_venues_document(path, missing_ok=True, fix=fix))
    writer.stage_file(Path(VENUES_FILE), (json.dumps(document, indent=2) + "\n").encode())


def _datetime(ts_ns: int) -> datetime:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1_000)


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "-"

"""Instrument specs and margin tiers from the venues, through the real ccxt classes.

``fetch_instruments`` loads a venue's markets (``load_markets``) for each of its instrument markets
(``CcxtVenue.instrument_markets``), then asks the endpoints ccxt exposes for tiers, fees and funding
intervals (``CcxtVenue.tiers_call``, ``fees_call``, ``funding_interval_call``), and writes one
``instruments`` row per listed spot pair and linear perpetual, and the ``margin_tiers`` of each perp.
Both kinds keep history: a spec equal to the one stored is not written again, a changed one gets a
new version from the fetch time (``datasets.versions``).

Numbers come from the raw text the venue sent (ccxt's ``info``), never from ccxt's floats, with
these exceptions, each named in the row's ``source``:

* Kraken Futures sends every number as a JSON number (``tickSize``, ``marginLevels``, fee schedules):
  those floats are converted through their shortest text, which recovers what the venue wrote;
* Hyperliquid sends integers only (``szDecimals``, ``maxLeverage``): the lot is ``10^-szDecimals``, the
  tick ``10^-(6 - szDecimals)`` (the rule of Nautilus' adapter), the minimum notional is ccxt's $10
  limit, and first-tier margins are ``1 / maxLeverage`` (maintenance half of it, per its docs);
* Binance tiers (``/fapi/v1/leverageBracket``) need an API key: without one a fetch stores no Binance
  tiers or margins (import ``../shared/data/binance_margin`` for them), and ``1 / initialLeverage``
  (at 18 decimals) is the initial margin wherever a venue states only a leverage;
* fees: only Kraken Futures publishes base-tier fees without an account (``feeschedules``); for the
  others the fee schedules of ``datasets/venues.py`` (typed from the venues' pages) are stored;
* funding intervals: Binance ``fundingInfo`` lists only adjusted symbols (the rest settle every
  ``datasets/venues.py`` interval, 8h); Hyperliquid and Kraken settle hourly (``datasets/venues.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import ccxt
import polars as pl

from datasets.acquire.ccxt_venues import CcxtVenue, ccxt_venue
from datasets.acquire.errors import MalformedPageError
from datasets.acquire.retry import RetryPolicy, call_ccxt
from datasets.importers.binance_margin import binance_bracket_tiers
from datasets.instruments import decimals
from datasets.numeric import exact_decimal, reciprocal
from datasets.schemas import INSTRUMENTS, MARGIN_TIERS, SYMBOL_PATTERN, interval_label
from datasets.store import SourceInfo, Store
from datasets.symbols import Market, canonical
from datasets.validate import ROW
from datasets.venues import VENUES, instrument_id_from_parts

log = logging.getLogger(__name__)

IMPORTER = "ccxt-instruments"
IMPORTER_VERSION = "1"
ExchangeFactory = Callable[[str, Market], ccxt.Exchange]
Clock = Callable[[], datetime]
# Binance writes 2100-12-25 as the delivery date of a perpetual that is not scheduled to go.
_BINANCE_NO_DELIVERY_MS = 4_133_404_800_000
_HYPERLIQUID_MAX_DECIMALS = 6
_DECIMAL_COLUMNS = [c for c, t in INSTRUMENTS.polars_schema.items() if isinstance(t, pl.Decimal)]


@dataclass(slots=True)
class InstrumentReport:
    """What an instrument fetch did: symbols seen per market, versions written, what was left out."""

    venue: str
    symbols: dict[str, int] = field(default_factory=dict)
    instruments_written: int = 0
    tiers_written: int = 0
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        seen = ", ".join(f"{count} {market}" for market, count in self.symbols.items())
        text = (
            f"{self.venue}: {seen} instruments; {self.instruments_written} new or changed specs and "
            f"{self.tiers_written} margin-tier rows written"
        )
        return text + (f"; {len(self.skipped)} left out" if self.skipped else "")


@dataclass(frozen=True, slots=True)
class _Listed:
    symbol: str
    market: Market
    ccxt_market: dict[str, Any]


def fetch_instruments(
    store: Store,
    venue: str,
    *,
    exchange_factory: ExchangeFactory,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
) -> InstrumentReport:
    """Fetch the instrument specs and margin tiers a venue lists and store what changed.

    Parameters
    ----------
    store : Store
        Where the ``instruments`` and ``margin_tiers`` versions go.
    venue : str
        A venue of ``datasets.acquire.ccxt_venues.CCXT_VENUES``.
    exchange_factory : callable
        ``(venue, market) -> ccxt.Exchange`` (``make_exchange``, rebased onto a loopback server in tests).
    clock : callable, optional
        The fetch time, which becomes ``effective_from`` of every changed spec (default: now, UTC).
    retry : RetryPolicy, optional
        Backoff for transient errors (default ``RetryPolicy()``).

    Raises
    ------
    PlanError
        If the venue cannot be downloaded.
    FetchError
        If the venue refuses a request (not retried), or keeps failing transiently.
    MalformedPageError
        If a market or tier lacks a field the spec needs, or holds a number that is not decimal text.
    """
    row = ccxt_venue(venue)
    now = (clock or _utc_now)()
    effective_from = now.astimezone(UTC).replace(microsecond=now.microsecond // 1000 * 1000)
    policy = retry or RetryPolicy()
    report = InstrumentReport(venue=venue)
    instruments: list[dict[str, Any]] = []
    tiers: list[dict[str, Any]] = []
    payloads: list[Any] = []
    sources: list[str] = []
    for market in row.instrument_markets:
        exchange = exchange_factory(venue, market)
        call = _Caller(exchange, policy)
        listed = _listed(row, market, call("load_markets", exchange.load_markets), report)
        report.symbols[market] = len(listed)
        extras = _Extras(row, exchange, call, listed, market, report)
        source = extras.source()
        sources.append(source)
        for item in listed:
            spec = _spec(row, item, extras, source=source)
            instruments.append(spec)
            tiers.extend(t | {"source": source} for t in extras.tiers.get(item.symbol, []))
        payloads.append([item.ccxt_market.get("info") for item in listed])
    payload = json.dumps(payloads, sort_keys=True, default=str).encode()
    info = SourceInfo(
        source=f"ccxt {venue} instruments ({', '.join(row.instrument_markets)})",
        sha256=hashlib.sha256(payload).hexdigest(),
        importer=IMPORTER,
        importer_version=IMPORTER_VERSION,
        extra=(
            ("venue", venue),
            ("endpoints", " | ".join(sources)),
            ("fetched_at", effective_from.isoformat()),
            ("ccxt_version", str(ccxt.__version__)),
        ),
    )
    frame = instruments_frame(instruments, effective_from=effective_from)
    before = _stored_rows(store, INSTRUMENTS.kind, venue)
    store.write(INSTRUMENTS.kind, frame, info)
    report.instruments_written = _stored_rows(store, INSTRUMENTS.kind, venue) - before
    if tiers:
        before = _stored_rows(store, MARGIN_TIERS.kind, venue)
        store.write(MARGIN_TIERS.kind, margin_tiers_frame(tiers, effective_from=effective_from), info)
        report.tiers_written = _stored_rows(store, MARGIN_TIERS.kind, venue) - before
    log.info("%s", report)
    return report


def instruments_frame(rows: list[dict[str, Any]], *, effective_from: datetime) -> pl.DataFrame:
    """Return ``instruments`` rows (column name -> text, Decimal or datetime) as a canonical batch with ``_row``."""
    return _frame(rows, INSTRUMENTS.polars_schema, effective_from=effective_from)


def margin_tiers_frame(rows: list[dict[str, Any]], *, effective_from: datetime) -> pl.DataFrame:
    """Return ``margin_tiers`` rows as a canonical batch with ``_row``."""
    return _frame(rows, MARGIN_TIERS.polars_schema, effective_from=effective_from)


def _frame(rows: list[dict[str, Any]], schema: pl.Schema, *, effective_from: datetime) -> pl.DataFrame:
    records = [{name: row.get(name) for name in schema} | {"effective_from": effective_from} for row in rows]
    frame = pl.DataFrame(records, schema=schema, orient="row")
    return frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW))


def _stored_rows(store: Store, kind: str, venue: str) -> int:
    if not (store.root / kind).is_dir():
        return 0
    return sum(info.rows for info in store.partitions(kind) if info.values.get("venue") == venue)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- calls
class _Caller:
    def __init__(self, exchange: ccxt.Exchange, policy: RetryPolicy) -> None:
        self.exchange = exchange
        self.policy = policy

    def __call__(self, method: str, call: Callable[[], Any]) -> Any:
        return call_ccxt(
            call,
            self.policy,
            what=f"{self.exchange.id} {method}",
            venue=self.exchange.id,
            refused_hint="check --api-url and the venue's status",
        )


def _listed(row: CcxtVenue, market: Market, markets: Mapping[str, Any], report: InstrumentReport) -> list[_Listed]:
    listed: list[_Listed] = []
    for unified, item in sorted(markets.items()):
        if market == "spot" and not item.get("spot"):
            continue
        # Linear perpetuals settled in their quote: the canonical BASE-QUOTE-PERP (ccxt BASE/QUOTE:QUOTE).
        if market == "perp" and not (
            item.get("swap") and item.get("linear") and item.get("settle") == item.get("quote")
        ):
            continue
        symbol = canonical(str(item["base"]), str(item["quote"]), market)
        if not SYMBOL_PATTERN.match(symbol):
            report.skipped.append(f"{row.name} {unified}: {symbol!r} is not a canonical symbol")
            continue
        listed.append(_Listed(symbol, market, item))
    return listed


class _Extras:
    """What a venue serves besides its markets: tiers, fees and funding intervals, keyed by canonical symbol."""

    def __init__(
        self,
        row: CcxtVenue,
        exchange: ccxt.Exchange,
        call: _Caller,
        listed: list[_Listed],
        market: Market,
        report: InstrumentReport,
    ) -> None:
        self.row = row
        self.exchange = exchange
        self.calls = [f"load_markets ({exchange.id})"]
        by_unified = {str(item.ccxt_market["symbol"]): item.symbol for item in listed}
        self.tiers: dict[str, list[dict[str, Any]]] = {}
        self.fees: dict[str, tuple[str | None, str | None]] = {}
        self.funding: dict[str, str] = {}
        self.notes: list[str] = []
        if market == "perp" and listed:
            self._fetch_tiers(call, by_unified, report)
            self._fetch_funding(call, by_unified)
        if row.fees_call is not None and listed:
            self.calls.append(row.fees_call)
            fees = call(row.fees_call, exchange.fetch_trading_fees)
            for unified, fee in fees.items():
                if unified in by_unified:
                    self.fees[by_unified[unified]] = _percent_fees(fee.get("info"))
        else:
            self.notes.append("fees: datasets/venues.py schedule (not fetched)")

    def source(self) -> str:
        return f"ccxt {ccxt.__version__} {'; '.join(self.calls)}" + (f"; {'; '.join(self.notes)}" if self.notes else "")

    def _fetch_tiers(self, call: _Caller, by_unified: dict[str, str], report: InstrumentReport) -> None:
        method = self.row.tiers_call
        if method is None:
            self.notes.append("margins: from the markets")
            return
        if self.row.tiers_need_key and not self.exchange.check_required_credentials(False):
            self.notes.append(f"tiers: {method} needs an API key (not fetched)")
            report.skipped.append(f"{self.row.name} margin tiers: {method} needs an API key")
            return
        self.calls.append(method)
        if method == "fetch_leverage_tiers":
            found = call(method, lambda: self.exchange.fetch_leverage_tiers(list(by_unified)))
        else:
            found = {u: call(method, partial(self.exchange.fetch_market_leverage_tiers, u)) for u in by_unified}
        parse = _TIER_PARSERS[self.row.name]
        for unified, entries in found.items():
            if unified in by_unified:
                symbol = by_unified[unified]
                raws = [e.get("info") for e in entries]
                self.tiers[symbol] = [t | {"venue": self.row.name, "symbol": symbol} for t in parse(raws, unified)]

    def _fetch_funding(self, call: _Caller, by_unified: dict[str, str]) -> None:
        method = self.row.funding_interval_call
        if method is None:
            if self.row.funding_interval_key is None:
                self.notes.append("funding interval: datasets/venues.py clock")
            return
        self.calls.append(method)
        fetch = getattr(self.exchange, method)
        found = call(method, lambda: fetch(list(by_unified)))
        entries = found.values() if isinstance(found, dict) else found
        for entry in entries:
            symbol = by_unified.get(str(entry.get("symbol")))
            interval = _funding_interval(entry.get("info"))
            if symbol is not None and interval is not None:
                self.funding[symbol] = interval


def _funding_interval(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    hours = info.get("fundingIntervalHours")
    if isinstance(hours, int) and not isinstance(hours, bool):
        return interval_label(hours * 3_600)
    this, following = _text(info.get("fundingTime")), _text(info.get("nextFundingTime"))
    if this and following:
        return interval_label((int(following) - int(this)) // 1000)
    return None


def _percent_fees(info: Any) -> tuple[str | None, str | None]:
    # Kraken Futures fee schedules: percentages, tiers by ascending 30-day volume; the first is the base tier.
    tiers = info.get("tiers") if isinstance(info, dict) else None
    if not isinstance(tiers, list) or not tiers or not isinstance(tiers[0], dict):
        return None, None
    maker, taker = _decimal(tiers[0].get("makerFee")), _decimal(tiers[0].get("takerFee"))
    return (
        None if maker is None else str(maker / 100),
        None if taker is None else str(taker / 100),
    )


# ------------------------------------------------------------------------------------------- specs
def _spec(row: CcxtVenue, item: _Listed, extras: _Extras, *, source: str) -> dict[str, Any]:
    market, info = item.ccxt_market, item.ccxt_market.get("info")
    if not isinstance(info, dict):
        raise MalformedPageError(f"{row.name} {item.symbol}: the market carries no raw record (ccxt info)")
    base, quote = item.symbol.removesuffix("-PERP").split("-")
    parsed = _SPEC_PARSERS[row.name](info, market)
    spec: dict[str, Any] = {
        "venue": row.name,
        "symbol": item.symbol,
        "market": item.market,
        "native_symbol": str(market["id"]) if row.name != "hyperliquid" else str(info.get("name")),
        "instrument_id": str(instrument_id_from_parts(row.name, base, quote, item.market)),
        "base": base,
        "quote": quote,
        "settle": quote if item.market == "perp" else None,
        "contract_multiplier": Decimal(1),
        "source": source,
    }
    spec |= {name: value for name, value in parsed.items() if value is not None}
    first = extras.tiers.get(item.symbol, [])
    if first:
        spec.setdefault("max_leverage", first[0]["max_leverage"])
        spec.setdefault("initial_margin", first[0]["initial_margin"])
        spec.setdefault("maintenance_margin", first[0]["maintenance_margin"])
    if spec.get("max_leverage") is not None and spec.get("initial_margin") is None and item.market == "perp":
        spec["initial_margin"] = reciprocal(spec["max_leverage"])
    maker, taker = extras.fees.get(item.symbol, (None, None))
    if maker is None and row.name in VENUES:
        fees = VENUES[row.name].fees(item.market)
        maker, taker = str(fees.maker), str(fees.taker)
    spec["maker_fee"], spec["taker_fee"] = _decimal(maker), _decimal(taker)
    if item.market == "perp":
        spec["funding_interval"] = (
            extras.funding.get(item.symbol) or parsed.get("funding_interval") or _venue_clock(row.name)
        )
    for name in _DECIMAL_COLUMNS:
        if name in spec and spec[name] is not None and not isinstance(spec[name], Decimal):
            spec[name] = _required_decimal(spec[name], where=f"{row.name} {item.symbol} {name}")
    for name in ("tick_size", "lot_size"):
        if spec.get(name) is None:
            raise MalformedPageError(
                f"{row.name} {item.symbol}: expected a {name} in the venue's market record, found none: {info!r:.200}"
            )
    # The decimals the venue writes the tick and lot with ("0.10": 2), which the stored decimal loses.
    spec["price_precision"], spec["size_precision"] = decimals(spec["tick_size"]), decimals(spec["lot_size"])
    return spec


def _venue_clock(venue: str) -> str | None:
    return VENUES[venue].funding_interval if venue in VENUES else None


def _binance_spec(info: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    filters = {f.get("filterType"): f for f in info.get("filters", []) if isinstance(f, dict)}
    price, lot = filters.get("PRICE_FILTER", {}), filters.get("LOT_SIZE", {})
    notional = filters.get("MIN_NOTIONAL", {}).get("notional") or filters.get("NOTIONAL", {}).get("minNotional")
    notional = notional or filters.get("MIN_NOTIONAL", {}).get("minNotional")
    delivery = info.get("deliveryDate")
    delisting = delivery if isinstance(delivery, int) and delivery < _BINANCE_NO_DELIVERY_MS else None
    return {
        "tick_size": _text(price.get("tickSize")),
        "lot_size": _text(lot.get("stepSize")),
        "min_quantity": _text(lot.get("minQty")),
        "min_notional": _text(notional),
        "listing_time": _ms_time(info.get("onboardDate")),
        "delisting_time": _ms_time(delisting),
    }


def _bybit_spec(info: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    lot = info.get("lotSizeFilter", {})
    minutes = info.get("fundingInterval")
    delivery = _text(info.get("deliveryTime"))
    return {
        "tick_size": _text(info.get("priceFilter", {}).get("tickSize")),
        "lot_size": _text(lot.get("qtyStep") or lot.get("basePrecision")),
        "min_quantity": _text(lot.get("minOrderQty")),
        "min_notional": _text(lot.get("minNotionalValue") or lot.get("minOrderAmt")),
        "max_leverage": _text(info.get("leverageFilter", {}).get("maxLeverage")),
        "funding_interval": interval_label(int(minutes) * 60) if isinstance(minutes, int) and minutes > 0 else None,
        "listing_time": _ms_time(_text(info.get("launchTime"))),
        "delisting_time": _ms_time(delivery if delivery not in (None, "0") else None),
    }


def _okx_spec(info: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    swap = info.get("instType") == "SWAP"
    return {
        "tick_size": _text(info.get("tickSz")),
        "lot_size": _text(info.get("lotSz")),
        "min_quantity": _text(info.get("minSz")),
        "contract_multiplier": _text(info.get("ctVal")) if swap else None,
        "max_leverage": _text(info.get("lever")) if swap else None,
        "listing_time": _ms_time(_text(info.get("listTime"))),
        "delisting_time": _ms_time(_text(info.get("expTime"))),
    }


def _hyperliquid_spec(info: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    decimals = info.get("szDecimals")
    leverage = info.get("maxLeverage")
    if not isinstance(decimals, int) or not isinstance(leverage, int) or leverage <= 0:
        raise MalformedPageError(
            f"hyperliquid {info.get('name')}: expected integer szDecimals and maxLeverage, was {info!r:.200}"
        )
    lot = Decimal(1).scaleb(-decimals)
    cost = market.get("limits", {}).get("cost", {}).get("min")
    return {
        "tick_size": Decimal(1).scaleb(-max(0, _HYPERLIQUID_MAX_DECIMALS - decimals)),
        "lot_size": lot,
        "min_quantity": lot,
        "min_notional": _text(cost),
        "max_leverage": Decimal(leverage),
        "initial_margin": reciprocal(Decimal(leverage)),
        "maintenance_margin": reciprocal(Decimal(2 * leverage)),
    }


def _kraken_spec(info: dict[str, Any], market: dict[str, Any]) -> dict[str, Any]:
    precision = info.get("contractValueTradePrecision")
    lot = Decimal(1).scaleb(-int(precision)) if isinstance(precision, int) else None
    opening = info.get("openingDate")
    return {
        "tick_size": _text(info.get("tickSize")),
        "lot_size": lot,
        "min_quantity": lot,
        "contract_multiplier": _text(info.get("contractSize")),
        "listing_time": datetime.fromisoformat(opening) if isinstance(opening, str) and opening else None,
        "delisting_time": None,
    }


_SPEC_PARSERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "binance": _binance_spec,
    "bybit": _bybit_spec,
    "okx": _okx_spec,
    "hyperliquid": _hyperliquid_spec,
    "kraken": _kraken_spec,
}


# ------------------------------------------------------------------------------------------- tiers
def _bybit_tiers(raws: Iterable[Any], where: str) -> list[dict[str, Any]]:
    tiers = []
    floor = Decimal(0)
    for index, raw in enumerate(raws):
        tier = _record(raw, where, index)
        cap = _decimal(tier.get("riskLimitValue"))
        tiers.append(
            {
                "tier": _tier_number(tier.get("id"), where, index),
                "bound_unit": "notional",
                "notional_floor": floor,
                "notional_cap": cap,
                "max_leverage": _decimal(tier.get("maxLeverage")),
                "initial_margin": _decimal(tier.get("initialMargin")),
                "maintenance_margin": _required_decimal(tier.get("maintenanceMargin"), where=f"{where} tier {index}"),
                "maintenance_amount": _decimal(tier.get("mmDeduction")),
            }
        )
        floor = cap if cap is not None else floor
    return tiers


def _okx_tiers(raws: Iterable[Any], where: str) -> list[dict[str, Any]]:
    return [
        {
            "tier": _tier_number(tier.get("tier"), where, index),
            "bound_unit": "contracts",
            "notional_floor": _required_decimal(tier.get("minSz"), where=f"{where} tier {index} minSz"),
            "notional_cap": _decimal(tier.get("maxSz")),
            "max_leverage": _decimal(tier.get("maxLever")),
            "initial_margin": _decimal(tier.get("imr")),
            "maintenance_margin": _required_decimal(tier.get("mmr"), where=f"{where} tier {index} mmr"),
            "maintenance_amount": None,
        }
        for index, tier in ((i, _record(raw, where, i)) for i, raw in enumerate(raws))
    ]


def _kraken_tiers(raws: Iterable[Any], where: str) -> list[dict[str, Any]]:
    levels = [_record(raw, where, index) for index, raw in enumerate(raws)]
    floors = [_decimal(level.get("numNonContractUnits", level.get("contracts"))) for level in levels]
    unit = "notional" if all("numNonContractUnits" in level for level in levels) else "contracts"
    tiers = []
    for index, level in enumerate(levels):
        initial = _decimal(level.get("initialMargin"))
        floor = floors[index]
        if floor is None:
            raise MalformedPageError(
                f"{where}: margin level {index} has no numNonContractUnits or contracts: {level!r}"
            )
        tiers.append(
            {
                "tier": index + 1,
                "bound_unit": unit,
                "notional_floor": floor,
                "notional_cap": floors[index + 1] if index + 1 < len(floors) else None,
                "max_leverage": reciprocal(initial) if initial else None,
                "initial_margin": initial,
                "maintenance_margin": _required_decimal(level.get("maintenanceMargin"), where=f"{where} level {index}"),
                "maintenance_amount": None,
            }
        )
    return tiers


_TIER_PARSERS: dict[str, Callable[[Iterable[Any], str], list[dict[str, Any]]]] = {
    "binance": binance_bracket_tiers,
    "bybit": _bybit_tiers,
    "okx": _okx_tiers,
    "kraken": _kraken_tiers,
}


# ------------------------------------------------------------------------------------------ numbers
def _record(raw: Any, where: str, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedPageError(f"{where}: tier {index}: expected the venue's raw record, was {raw!r:.120}")
    return raw


def _tier_number(value: Any, where: str, index: int) -> int:
    number = _decimal(value)
    if number is None or number != number.to_integral_value() or number < 1:
        raise MalformedPageError(f"{where}: tier {index}: expected a tier number >= 1, was {value!r}")
    return int(number)


def _text(value: Any) -> str | None:
    # Venue text as sent; a JSON number (Kraken Futures, Binance brackets) through its shortest text.
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = repr(value) if isinstance(value, float) else str(value).strip()
    return text or None


def _decimal(value: Any) -> Decimal | None:
    try:
        return exact_decimal(value)
    except ValueError as exc:
        raise MalformedPageError(str(exc)) from None


def _required_decimal(value: Any, *, where: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else _decimal(value)
    except MalformedPageError as exc:
        raise MalformedPageError(f"{where}: {exc}") from None
    if number is None:
        raise MalformedPageError(f"{where}: expected a decimal number, found none")
    return number


def _ms_time(value: Any) -> datetime | None:
    text = _text(value)
    if text is None or not text.isdigit() or int(text) == 0:
        return None
    return datetime.fromtimestamp(int(text) / 1000, UTC)

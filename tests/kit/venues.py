"""Loopback stand-ins for venues' REST APIs, for acquisition tests: nothing here leaves 127.0.0.1.

``FakeVenueServer`` answers HTTP on 127.0.0.1 in the venues' real response formats (Binance USD-M
``/fapi/v1/...``, Bybit v5 ``/v5/market/...``, OKX v5 ``/api/v5/...``, Hyperliquid ``POST /info``,
Kraken Futures ``/derivatives/api/...`` and ``/api/charts/v1/...``) from a deterministic
``SyntheticMarket``, logs every request, and can be told to fail (HTTP 429/5xx, error bodies,
malformed pages: ``Fault``) or to misbehave inside its real format (``Misbehaviour``: a page that
starts before the requested start, repeats the previous page, leaves rows out, comes out of order,
holds a row twice with different values, or is cut by a connection reset mid-body) so retry,
completeness, resume and validation paths run in tests. Each venue serves its markets
endpoint too, so ccxt's ``load_markets`` works offline, and honours the paging parameters ccxt sends
(OKX ``before``/``after``/``limit``, Hyperliquid ``startTime``/``endTime``, Kraken ``from``/``to``)
with the venue's page caps and history limits. Response shapes follow the payload samples in
``../shared/data/exchange_payloads`` (nautilus_trader adapters' test data) and the Binance
``exchangeInfo`` recorded in ``../shared/data/cryptofeed_recordings/BINANCE_FUTURES.0``.

Markets endpoints list every market given data plus listing-only markets generated from
``LISTED_BASES`` (``listed_markets``), at least ``LISTED_SYMBOLS`` per venue and market, each with its
own tick, lot, minimums and leverage (``Listing``), so instrument fetches see a realistic universe. The
instrument metadata endpoints besides the markets ones (Binance spot ``/api/v3/exchangeInfo`` and
``/fapi/v1/fundingInfo``, Bybit spot instruments and ``/v5/market/risk-limit``, OKX ``position-tiers``
and ``funding-rate``, Kraken ``feeschedules``) were written from the venues' API documentation
(field names, types and text formatting as documented: Binance and Bybit send decimals as text, Kraken
Futures as JSON numbers), not recorded; Hyperliquid's ``meta`` universe starts from the recorded
``http_meta_perp_sample.json`` when a test passes it in (``hyperliquid_routes(meta_sample=...)``).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from tests.kit.http_server import LocalHttpServer

HOUR_MS = 3_600_000
# A route gets the query of a GET, or the JSON object of a POST body.
Route = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """A deterministic market: bars every ``step_ms`` and funding every ``funding_step_ms`` from ``start_ms``.

    Values are decimal text (what venues publish), so a test can compare stored decimals exactly.
    """

    start_ms: int
    bars: int
    step_ms: int = HOUR_MS
    settlements: int = 0
    funding_step_ms: int = 8 * HOUR_MS

    def bar(self, index: int) -> tuple[int, str, str, str, str, str]:
        """Return ``(open time ms, open, high, low, close, volume)`` of bar ``index``."""
        open_ = Decimal(1000 + index % 97) / 10
        volume = Decimal((index * 37) % 1000) + Decimal(index % 7) / 8
        return (
            self.start_ms + index * self.step_ms,
            str(open_),
            str(open_ + Decimal("1.5")),
            str(open_ - Decimal("0.75")),
            str(open_ + Decimal("0.25")),
            str(volume),
        )

    def bars_between(self, start_ms: int, end_ms: int) -> list[tuple[int, str, str, str, str, str]]:
        """Return the bars whose open time is in ``[start_ms, end_ms]`` (inclusive, as venues read it)."""
        first = max(0, -(-(start_ms - self.start_ms) // self.step_ms))
        last = min(self.bars - 1, (end_ms - self.start_ms) // self.step_ms)
        return [self.bar(i) for i in range(first, last + 1)]

    def funding(self, index: int) -> tuple[int, str]:
        """Return ``(settlement time ms, rate text)`` of settlement ``index``."""
        magnitude = f"0.000{(index * 7919) % 100000:05d}"
        return self.start_ms + index * self.funding_step_ms, ("-" if index % 5 == 0 else "") + magnitude

    def funding_between(self, start_ms: int, end_ms: int) -> list[tuple[int, str]]:
        """Return the settlements in ``[start_ms, end_ms]``."""
        first = max(0, -(-(start_ms - self.start_ms) // self.funding_step_ms))
        last = min(self.settlements - 1, (end_ms - self.start_ms) // self.funding_step_ms)
        return [self.funding(i) for i in range(first, last + 1)]


@dataclass(slots=True)
class Fault:
    """Answer ``times`` requests whose path starts with ``path`` with ``status`` and ``body``, once ``after`` passed."""

    path: str
    status: int
    body: str = ""
    times: int = 1
    after: int = 0
    content_type: str = "application/json"


Trick = Literal["start_earlier", "previous_page", "drop_rows", "reversed", "conflicting_duplicate", "reset_mid_body"]


@dataclass(slots=True)
class Misbehaviour:
    """Alter the real answer to ``times`` requests whose path starts with ``path``, once ``after`` passed.

    Every trick keeps the venue's own format (the rows stay where the venue puts them):

    * ``start_earlier``: the page starts ``shift_ms`` before the requested start (``startTime``,
      ``start`` or Hyperliquid's ``startTime``), so it repeats rows from before it and ends early;
    * ``previous_page``: the answer given to the previous request on this path, again;
    * ``drop_rows``: the rows whose time is in ``[drop[0], drop[1])`` are left out (a hole in a page;
      only answers holding such rows count towards ``after`` and ``times``);
    * ``reversed``: the rows in the opposite of the venue's order;
    * ``conflicting_duplicate``: the middle row twice, the copy with a different price or rate;
    * ``reset_mid_body``: the real answer's headers and half its body, then a TCP reset.
    """

    path: str
    trick: Trick
    times: int = 1
    after: int = 0
    shift_ms: int = 0
    drop: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a route returns to answer with a status other than 200 (a venue's error page)."""

    status: int
    body: Any


@dataclass(slots=True)
class FakeVenueServer:
    """An HTTP server on 127.0.0.1 serving ``routes`` (path -> handler of the query), with injected faults.

    Use as a context manager; ``base_url`` is ``http://127.0.0.1:<port>``. ``requests`` logs
    ``(path, query)`` of every request in arrival order (faulted ones included); for a POST the
    "query" is its JSON body. A route returning ``bytes`` is served as is, a ``Reply`` with its
    status, anything else as JSON.
    """

    routes: dict[str, Route]
    faults: list[Fault] = field(default_factory=list)
    misbehaviours: list[Misbehaviour] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _previous: dict[str, Any] = field(default_factory=dict)
    _http: LocalHttpServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the server is not running: use it as a context manager")
        host, port = self._http.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """Return the queries of the requests made to ``path``."""
        return [query for seen, query in self.requests if seen == path]

    def __enter__(self) -> FakeVenueServer:
        self._http = LocalHttpServer(_handler_for(self), name="fake-venue-http")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()

    def answer(self, path: str, query: dict[str, Any]) -> _Answer:
        with self._lock:
            self.requests.append((path, query))
            for fault in self.faults:
                if _due(fault, path):
                    return _Answer(fault.status, fault.body.encode(), fault.content_type)
            trick = next((m for m in self.misbehaviours if m.trick != "drop_rows" and _due(m, path)), None)
        route = self.routes.get(path)
        if route is None:
            return _Answer(404, json.dumps({"code": -1, "msg": f"no route {path} on the fake venue"}).encode())
        if trick is not None and trick.trick == "start_earlier":
            query = _earlier(query, trick.shift_ms)
        result = route(query)
        status = 200
        if isinstance(result, Reply):
            status, result = result.status, result.body
        with self._lock:
            previous, self._previous[path] = self._previous.get(path), result
            if trick is None:
                # A hole is due only on the answers that hold rows in it.
                rows = _rows_of(result) or []
                found = (m for m in self.misbehaviours if path.startswith(m.path) and _holds(m, rows))
                trick = next((m for m in found if _due(m, path)), None)
        if trick is not None and not isinstance(result, bytes):
            result = _altered(trick, result, previous)
        payload = result if isinstance(result, bytes) else json.dumps(result).encode()
        return _Answer(status, payload, cut=trick is not None and trick.trick == "reset_mid_body")


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    payload: bytes
    content_type: str = "application/json"
    cut: bool = False


def _due(rule: Fault | Misbehaviour, path: str) -> bool:
    if not path.startswith(rule.path):
        return False
    if rule.after > 0:
        rule.after -= 1
        return False
    if rule.times > 0:
        rule.times -= 1
        return True
    return False


def _holds(trick: Misbehaviour, rows: list[Any]) -> bool:
    return trick.trick == "drop_rows" and any(trick.drop[0] <= _row_ms(row) < trick.drop[1] for row in rows)


# Query and body keys holding a request's start, per venue format (Binance, Bybit, Hyperliquid, Kraken).
_START_KEYS = ("startTime", "start")


def _earlier(query: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    moved: dict[str, Any] = json.loads(json.dumps(query))
    inner = moved.get("req")
    holders: list[dict[str, Any]] = [moved, inner] if isinstance(inner, dict) else [moved]
    for holder in holders:
        for key in _START_KEYS:
            if key in holder:
                holder[key] = type(holder[key])(int(holder[key]) - shift_ms)
    return moved


def _rows_of(payload: Any) -> list[Any] | None:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("data", "candles", "rates"):
            if isinstance(payload.get(key), list):
                return list(payload[key])
        result = payload.get("result")
        if isinstance(result, dict) and isinstance(result.get("list"), list):
            return list(result["list"])
    return None


def _with_rows(payload: Any, rows: list[Any]) -> Any:
    if isinstance(payload, list):
        return rows
    for key in ("data", "candles", "rates"):
        if isinstance(payload.get(key), list):
            return payload | {key: rows}
    return payload | {"result": payload["result"] | {"list": rows}}


def _row_ms(row: Any) -> int:
    if isinstance(row, list):
        return int(row[0])
    for key in ("fundingTime", "fundingRateTimestamp", "time", "t"):
        if key in row:
            return int(row[key])
    raise KeyError(f"no time in row {row!r}")


def _changed(row: Any) -> Any:
    if isinstance(row, list):
        copy = list(row)
        copy[4] = str(Decimal(str(copy[4])) + 1)  # the close
        return copy
    key = next(k for k in ("fundingRate", "c", "close") if k in row)
    return row | {key: str(Decimal(str(row[key])) + Decimal("0.0001"))}


def _altered(trick: Misbehaviour, result: Any, previous: Any) -> Any:
    if trick.trick == "previous_page":
        return result if previous is None else previous
    rows = _rows_of(result)
    if rows is None or trick.trick in ("start_earlier", "reset_mid_body"):
        return result
    if trick.trick == "drop_rows":
        rows = [row for row in rows if not trick.drop[0] <= _row_ms(row) < trick.drop[1]]
    elif trick.trick == "reversed":
        rows = rows[::-1]
    elif trick.trick == "conflicting_duplicate" and rows:
        middle = len(rows) // 2
        rows = [*rows[: middle + 1], _changed(rows[middle]), *rows[middle + 1 :]]
    return _with_rows(result, rows)


def _handler_for(server: FakeVenueServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            self._answer(server.answer(parts.path, dict(parse_qsl(parts.query))))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                self._reply(422, b"Failed to deserialize the JSON body into the target type")
                return
            self._answer(server.answer(urlsplit(self.path).path, body))

        def _answer(self, answer: _Answer) -> None:
            self._reply(answer.status, answer.payload, content_type=answer.content_type, cut=answer.cut)

        def _reply(
            self, status: int, payload: bytes, *, content_type: str = "application/json", cut: bool = False
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not cut:
                self.wfile.write(payload)
                return
            self.wfile.write(payload[: len(payload) // 2])
            # SO_LINGER 0: closing sends a TCP reset instead of a FIN, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


# ------------------------------------------------------------------------------------------ listings
LISTED_SYMBOLS = 36
# Real coin names, so the symbols look like the venues' own; the specs of each are generated.
LISTED_BASES = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "TRX", "LTC", "BCH", "NEAR", "APT",
    "ARB", "OP", "SUI", "ATOM", "FIL", "INJ", "TIA", "SEI", "AAVE", "UNI", "ETC", "XLM", "HBAR", "ICP",
    "RUNE", "ALGO", "WIF", "JUP", "ENA", "TON", "PEPE", "BONK", "ORDI", "STX", "MKR", "LDO",
)  # fmt: skip
_TICKS = ("0.10", "0.01", "0.001", "0.0001", "0.00001", "0.000001")
_LOTS = ("0.001", "0.01", "0.1", "1", "10", "100")
_LEVERAGES = (125, 100, 75, 50, 25, 20, 10)


@dataclass(frozen=True, slots=True)
class Listing:
    """The generated spec of listed market ``index``: decimal text as venues send it, and integers."""

    index: int
    base: str

    @property
    def tick(self) -> str:
        return _TICKS[self.index % len(_TICKS)]

    @property
    def lot(self) -> str:
        return _LOTS[(self.index * 5) % len(_LOTS)]

    @property
    def min_notional(self) -> str:
        return ("5", "10", "20", "100")[self.index % 4]

    @property
    def max_leverage(self) -> int:
        return _LEVERAGES[self.index % len(_LEVERAGES)]

    @property
    def decimals(self) -> int:
        """Decimals of the lot (Hyperliquid ``szDecimals``, Kraken ``contractValueTradePrecision``)."""
        return max(0, -Decimal(self.lot).as_tuple().exponent)  # type: ignore[operator]

    @property
    def funding_hours(self) -> int:
        return 4 if self.index % 6 == 5 else 8

    @property
    def listed_ms(self) -> int:
        return 1_600_000_000_000 + self.index * 86_400_000


def listed_markets(names: list[str], make: Callable[[str], str], *, count: int = LISTED_SYMBOLS) -> list[Listing]:
    """Return the listings a markets endpoint serves: ``count`` bases at least, never one of ``names`` again.

    ``names`` are the venue's names of the markets that carry data (served by the caller with their own
    fixed specs); ``make`` turns a base into the venue's name, so a generated base whose name is taken
    is skipped.
    """
    taken = set(names)
    listings = [Listing(index, base) for index, base in enumerate(LISTED_BASES) if make(base) not in taken]
    return listings[: max(0, count - len(names))]


# ------------------------------------------------------------------------------------------- Binance
def binance_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return Binance routes: USD-M ``exchangeInfo``, ``klines``, ``markPriceKlines``, ``fundingRate``,
    ``fundingInfo``, and spot ``/api/v3/exchangeInfo``.

    ``markets`` maps Binance USD-M tickers (``BTCUSDT``) to their data. ``fundingInfo`` lists, as Binance
    does, only the symbols whose funding interval or cap was adjusted (the generated 4-hourly ones).
    """
    perps = listed_markets(list(markets), lambda base: f"{base}USDT")
    spots = listed_markets([], lambda base: f"{base}USDT")

    def exchange_info(query: dict[str, str]) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": 1_700_000_000_000,
            "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [_binance_symbol(ticker) for ticker in markets] + [_binance_listed_perp(x) for x in perps],
        }

    def spot_exchange_info(query: dict[str, str]) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": 1_700_000_000_000,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [_binance_spot_symbol(listing) for listing in spots],
        }

    def funding_info(query: dict[str, str]) -> Any:
        return [
            {
                "symbol": f"{x.base}USDT",
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": x.funding_hours,
                "disclaimer": False,
            }
            for x in perps
            if x.funding_hours != 8
        ]

    def klines(query: dict[str, str], *, mark: bool = False) -> Any:
        market = markets[query["symbol"]]
        end = int(query.get("endTime", 2**62))
        rows = market.bars_between(int(query.get("startTime", 0)), end)[: int(query.get("limit", 500))]
        return [
            [ts, o, h, low, c, "0" if mark else v, ts + market.step_ms - 1, "0", 0 if mark else 7, "0", "0", "0"]
            for ts, o, h, low, c, v in rows
        ]

    def funding_rate(query: dict[str, str]) -> Any:
        market = markets[query["symbol"]]
        rows = market.funding_between(int(query.get("startTime", 0)), int(query.get("endTime", 2**62)))
        return [
            {"symbol": query["symbol"], "fundingTime": ts, "fundingRate": rate, "markPrice": "100.50000000"}
            for ts, rate in rows[: int(query.get("limit", 100))]
        ]

    return {
        "/fapi/v1/exchangeInfo": exchange_info,
        "/api/v3/exchangeInfo": spot_exchange_info,
        "/fapi/v1/fundingInfo": funding_info,
        "/fapi/v1/klines": klines,
        "/fapi/v1/markPriceKlines": lambda query: klines(query, mark=True),
        "/fapi/v1/fundingRate": funding_rate,
    }


def _binance_symbol(ticker: str) -> dict[str, Any]:
    base = ticker.removesuffix("USDT")
    return {
        "symbol": ticker,
        "pair": ticker,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "filters": [
            {"minPrice": "556.72", "maxPrice": "1000000", "filterType": "PRICE_FILTER", "tickSize": "0.01"},
            {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
            {"stepSize": "0.001", "filterType": "MARKET_LOT_SIZE", "maxQty": "1000", "minQty": "0.001"},
            {"notional": "5", "filterType": "MIN_NOTIONAL"},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def _binance_listed_perp(listing: Listing) -> dict[str, Any]:
    ticker = f"{listing.base}USDT"
    lot = listing.lot
    return _binance_symbol(ticker) | {
        "onboardDate": listing.listed_ms,
        "filters": [
            {"minPrice": listing.tick, "maxPrice": "1000000", "filterType": "PRICE_FILTER", "tickSize": listing.tick},
            {"stepSize": lot, "filterType": "LOT_SIZE", "maxQty": "1000000", "minQty": lot},
            {"stepSize": lot, "filterType": "MARKET_LOT_SIZE", "maxQty": "100000", "minQty": lot},
            {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
            {"notional": listing.min_notional, "filterType": "MIN_NOTIONAL"},
            {
                "multiplierDown": "0.9500",
                "multiplierUp": "1.0500",
                "multiplierDecimal": "4",
                "filterType": "PERCENT_PRICE",
            },
        ],
    }


def _binance_spot_symbol(listing: Listing) -> dict[str, Any]:
    # Binance spot writes every filter value with 8 decimals ("0.01000000").
    def padded(text: str) -> str:
        return f"{Decimal(text):.8f}"

    return {
        "symbol": f"{listing.base}USDT",
        "status": "TRADING",
        "baseAsset": listing.base,
        "baseAssetPrecision": 8,
        "quoteAsset": "USDT",
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": listing.index % 2 == 0,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": padded(listing.tick),
                "maxPrice": "1000000.00000000",
                "tickSize": padded(listing.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": padded(listing.lot),
                "maxQty": "9000000.00000000",
                "stepSize": padded(listing.lot),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "NOTIONAL",
                "minNotional": padded(listing.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


# --------------------------------------------------------------------------------------------- Bybit
def bybit_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return Bybit v5 routes: ``instruments-info`` (linear and spot), ``risk-limit``, and linear ``kline``,
    ``mark-price-kline``, ``funding/history``.

    ``markets`` maps linear tickers (``BTCUSDT``) to their data. Lists come newest first, as Bybit sends
    them; ``risk-limit`` pages with ``cursor``/``nextPageCursor`` (``BYBIT_RISK_PAGE`` tiers a page).
    """
    linear = listed_markets(list(markets), lambda base: f"{base}USDT")
    spots = listed_markets([], lambda base: f"{base}USDT")
    tiers = [tier for t in markets for tier in _bybit_tiers(t, Listing(0, t.removesuffix("USDT")))]
    tiers += [tier for x in linear for tier in _bybit_tiers(f"{x.base}USDT", x)]

    def envelope(result: Any) -> Any:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1_700_000_000_000}

    def instruments(query: dict[str, str]) -> Any:
        if query.get("category") == "spot":
            return envelope({"category": "spot", "list": [_bybit_spot_instrument(x) for x in spots]})
        if query.get("status") == "PreLaunch":
            return envelope({"category": "linear", "list": [], "nextPageCursor": ""})
        listed = [_bybit_instrument(t) for t in markets] + [_bybit_listed_linear(x) for x in linear]
        return envelope({"category": "linear", "list": listed, "nextPageCursor": ""})

    def risk_limit(query: dict[str, str]) -> Any:
        start = int(query.get("cursor") or 0)
        page = tiers[start : start + BYBIT_RISK_PAGE]
        after = start + BYBIT_RISK_PAGE
        return envelope(
            {"category": "linear", "list": page, "nextPageCursor": str(after) if after < len(tiers) else ""}
        )

    def klines(query: dict[str, str], *, mark: bool = False) -> Any:
        market = markets[query["symbol"]]
        rows = market.bars_between(int(query.get("start", 0)), int(query.get("end", 2**62)))
        rows = rows[-int(query.get("limit", 200)) :]
        listed = [
            [str(ts), o, h, low, c] if mark else [str(ts), o, h, low, c, v, "0"]
            for ts, o, h, low, c, v in reversed(rows)
        ]
        return envelope({"category": "linear", "symbol": query["symbol"], "list": listed})

    def funding(query: dict[str, str]) -> Any:
        market = markets[query["symbol"]]
        rows = market.funding_between(int(query.get("startTime", 0)), int(query.get("endTime", 2**62)))
        rows = rows[-int(query.get("limit", 200)) :]
        listed = [
            {"symbol": query["symbol"], "fundingRate": rate, "fundingRateTimestamp": str(ts)}
            for ts, rate in reversed(rows)
        ]
        return envelope({"category": "linear", "list": listed})

    return {
        "/v5/market/instruments-info": instruments,
        "/v5/market/risk-limit": risk_limit,
        "/v5/market/kline": klines,
        "/v5/market/mark-price-kline": lambda query: klines(query, mark=True),
        "/v5/market/funding/history": funding,
    }


BYBIT_RISK_PAGE = 50


def _bybit_tiers(ticker: str, listing: Listing) -> list[dict[str, Any]]:
    # Tier n: risk limit 2,000,000 x n, maintenance 0.5% + 0.5% per tier, leverage halving down to 1.
    top = listing.max_leverage
    rows = []
    for n in range(1, 4 + listing.index % 3):
        leverage = max(1, top >> (n - 1))
        rows.append(
            {
                "id": n,
                "symbol": ticker,
                "riskLimitValue": str(2_000_000 * n),
                "maintenanceMargin": str(Decimal("0.005") * n),
                "initialMargin": str((Decimal(1) / leverage).quantize(Decimal("0.0001"))),
                "isLowestRisk": 1 if n == 1 else 0,
                "maxLeverage": f"{leverage}.00",
                "mmDeduction": str(Decimal(10_000) * (n - 1)),
            }
        )
    return rows


def _bybit_listed_linear(listing: Listing) -> dict[str, Any]:
    return _bybit_instrument(f"{listing.base}USDT") | {
        "launchTime": str(listing.listed_ms),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": f"{listing.max_leverage}.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": listing.tick, "maxPrice": "1999999.80", "tickSize": listing.tick},
        "lotSizeFilter": {
            "maxOrderQty": "1000000",
            "minOrderQty": listing.lot,
            "qtyStep": listing.lot,
            "postOnlyMaxOrderQty": "1000000",
            "maxMktOrderQty": "100000",
            "minNotionalValue": listing.min_notional,
        },
        "fundingInterval": listing.funding_hours * 60,
    }


def _bybit_spot_instrument(listing: Listing) -> dict[str, Any]:
    return {
        "symbol": f"{listing.base}USDT",
        "baseCoin": listing.base,
        "quoteCoin": "USDT",
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "utaOnly",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": listing.lot,
            "quotePrecision": "0.00000001",
            "minOrderQty": listing.lot,
            "maxOrderQty": "1000000",
            "minOrderAmt": listing.min_notional,
            "maxOrderAmt": "2000000",
        },
        "priceFilter": {"tickSize": listing.tick},
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
    }


def _bybit_instrument(ticker: str) -> dict[str, Any]:
    return {
        "symbol": ticker,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": ticker.removesuffix("USDT"),
        "quoteCoin": "USDT",
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
        "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001", "qtyStep": "0.001"},
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
        "copyTrading": "both",
    }


def _settlement_index(market: SyntheticMarket, ts: int) -> int:
    return (ts - market.start_ms) // market.funding_step_ms


def _compact_interval(step_ms: int) -> str:
    minutes = step_ms // 60_000
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


# ----------------------------------------------------------------------------------------------- OKX
OKX_HISTORY_LIMIT = 100  # history-candles, mark-price candles and funding-rate-history
OKX_RECENT_CANDLES_LIMIT = 300  # /market/candles


def okx_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return OKX v5 routes (``public/instruments``, (history-)candles, mark-price candles, funding history).

    ``markets`` maps OKX instrument ids (``BTC-USDT-SWAP``; ``BTC-USDT`` for spot) to their data. As on
    OKX, ``before``/``after`` are exclusive bounds on the timestamp, lists come newest first, and a page
    holds the newest ``limit`` rows between the bounds (OKX pages backwards from ``after``). Swap candles
    carry contracts (``ctVal`` 0.01) at index 5 and base volume at index 6, as OKX sends them; funding
    records carry the computed ``fundingRate`` (more digits) beside the settled ``realizedRate``.
    """
    return {
        "/api/v5/public/instruments": partial(_okx_instruments, markets),
        "/api/v5/public/position-tiers": partial(_okx_position_tiers, markets),
        "/api/v5/public/funding-rate": partial(_okx_funding_rate, markets),
        "/api/v5/market/history-candles": partial(_okx_candles, markets, mark=False, cap=OKX_HISTORY_LIMIT),
        "/api/v5/market/candles": partial(_okx_candles, markets, mark=False, cap=OKX_RECENT_CANDLES_LIMIT),
        "/api/v5/market/history-mark-price-candles": partial(_okx_candles, markets, mark=True, cap=OKX_HISTORY_LIMIT),
        "/api/v5/market/mark-price-candles": partial(_okx_candles, markets, mark=True, cap=OKX_HISTORY_LIMIT),
        "/api/v5/public/funding-rate-history": partial(_okx_funding, markets),
    }


def _okx_envelope(data: Any) -> Any:
    return {"code": "0", "msg": "", "data": data}


def _okx_error(code: str, message: str) -> Reply:
    # OKX answers parameter errors with HTTP 200 (or 400) and a non-zero code; ccxt maps the code.
    return Reply(200, {"code": code, "msg": message, "data": []})


def _okx_page(query: dict[str, Any], rows: list[Any], *, cap: int) -> list[Any]:
    before, after = int(query.get("before", -1)), int(query.get("after", 2**62))
    kept = [r for r in rows if before < r[0] < after]
    return list(reversed(kept))[: min(int(query.get("limit", 100)), cap)]


def _okx_listings(markets: dict[str, SyntheticMarket], *, swap: bool) -> list[Listing]:
    names = [inst for inst in markets if inst.endswith("-SWAP") == swap]
    return listed_markets(names, lambda base: f"{base}-USDT-SWAP" if swap else f"{base}-USDT")


def _okx_instruments(markets: dict[str, SyntheticMarket], query: dict[str, Any]) -> Any:
    swap = query.get("instType") == "SWAP"
    listed = [_okx_instrument(inst) for inst in markets if inst.endswith("-SWAP") == swap]
    listed += [_okx_listed_instrument(x, swap=swap) for x in _okx_listings(markets, swap=swap)]
    return _okx_envelope(listed)


def _okx_listed_instrument(listing: Listing, *, swap: bool) -> dict[str, Any]:
    inst_id = f"{listing.base}-USDT-SWAP" if swap else f"{listing.base}-USDT"
    lot = "1" if swap else listing.lot
    return _okx_instrument(inst_id) | {
        "listTime": str(listing.listed_ms),
        "tickSz": listing.tick,
        "lotSz": lot,
        "minSz": lot,
        "lever": str(listing.max_leverage) if swap else "5",
        **({"ctVal": listing.lot} if swap else {}),
    }


def _okx_position_tiers(markets: dict[str, SyntheticMarket], query: dict[str, Any]) -> Any:
    # Swap tiers bound the position in contracts (minSz/maxSz), as OKX documents for SWAP.
    family = str(query.get("instFamily"))
    if query.get("instType") != "SWAP" or not query.get("tdMode"):
        return _okx_error("51000", "Parameter instType error")
    base = family.split("-")[0]
    listing = next((x for x in _okx_listings(markets, swap=True) if x.base == base), Listing(0, base))
    rows = []
    for n in range(1, 3 + listing.index % 4):
        leverage = max(1, listing.max_leverage >> (n - 1))
        rows.append(
            {
                "baseMaxLoan": "",
                "imr": str((Decimal(1) / leverage).quantize(Decimal("0.0001"))),
                "instFamily": family,
                "instId": "",
                "maxLever": str(leverage),
                "maxSz": str(20_000 * n),
                "minSz": str(20_000 * (n - 1)),
                "mmr": str(Decimal("0.004") * n),
                "optMgnFactor": "0",
                "quoteMaxLoan": "",
                "tier": str(n),
                "uly": family,
            }
        )
    return _okx_envelope(rows)


def _okx_funding_rate(markets: dict[str, SyntheticMarket], query: dict[str, Any]) -> Any:
    if query.get("instId") != "ANY":
        return _okx_error("51000", "Parameter instId error")
    swaps = [Listing(0, inst.split("-")[0]) for inst in markets if inst.endswith("-SWAP")]
    swaps += _okx_listings(markets, swap=True)
    funding_ms = 1_700_006_400_000
    return _okx_envelope(
        [
            {
                "formulaType": "noRate",
                "fundingRate": "0.0001",
                "fundingTime": str(funding_ms),
                "impactValue": "",
                "instId": f"{x.base}-USDT-SWAP",
                "instType": "SWAP",
                "interestRate": "0",
                "maxFundingRate": "0.0075",
                "method": "current_period",
                "minFundingRate": "-0.0075",
                "nextFundingRate": "",
                "nextFundingTime": str(funding_ms + x.funding_hours * HOUR_MS),
                "premium": "0.0001",
                "settFundingRate": "0.0001",
                "settState": "settled",
                "ts": "1700000000000",
            }
            for x in swaps
        ]
    )


def _okx_candles(markets: dict[str, SyntheticMarket], query: dict[str, Any], *, mark: bool, cap: int) -> Any:
    inst_id = str(query.get("instId"))
    market = markets.get(inst_id)
    if market is None:
        return _okx_error("51001", f"Instrument ID {inst_id} doesn't exist.")
    if query.get("bar") != _compact_interval(market.step_ms).upper().replace("M", "m"):
        return _okx_error("51000", "Parameter bar error")
    rows = _okx_page(query, market.bars_between(0, 2**62), cap=cap)
    if mark:
        return _okx_envelope([[str(ts), o, h, low, c, "1"] for ts, o, h, low, c, _ in rows])
    swap = inst_id.endswith("-SWAP")
    return _okx_envelope(
        [
            [
                str(ts),
                o,
                h,
                low,
                c,
                str(Decimal(v) * 100) if swap else v,
                v if swap else str(Decimal(v) * Decimal(c)),
                str(Decimal(v) * Decimal(c)),
                "1",
            ]
            for ts, o, h, low, c, v in rows
        ]
    )


def _okx_funding(markets: dict[str, SyntheticMarket], query: dict[str, Any]) -> Any:
    inst_id = str(query.get("instId"))
    market = markets.get(inst_id)
    if market is None or not inst_id.endswith("-SWAP"):
        return _okx_error("51001", f"Instrument ID {inst_id} doesn't exist.")
    rows = _okx_page(query, market.funding_between(0, 2**62), cap=OKX_HISTORY_LIMIT)
    return _okx_envelope(
        [
            {
                "instType": "SWAP",
                "instId": inst_id,
                "fundingRate": f"{rate}{_settlement_index(market, ts) % 9 + 1}",
                "realizedRate": rate,
                "fundingTime": str(ts),
                "method": "current_period",
                "formulaType": "withRate",
            }
            for ts, rate in rows
        ]
    )


def _okx_instrument(inst_id: str) -> dict[str, Any]:
    base, quote = inst_id.split("-")[:2]
    common = {
        "alias": "",
        "category": "1",
        "expTime": "",
        "instFamily": "",
        "instId": inst_id,
        "listTime": "1611916828000",
        "maxMktSz": "1000000",
        "optType": "",
        "state": "live",
        "stk": "",
        "tickSz": "0.1",
    }
    if not inst_id.endswith("-SWAP"):
        return common | {
            "instType": "SPOT",
            "baseCcy": base,
            "quoteCcy": quote,
            "settleCcy": "",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "lever": "10",
            "lotSz": "0.00000001",
            "minSz": "0.00001",
            "uly": "",
        }
    return common | {
        "instType": "SWAP",
        "baseCcy": "",
        "quoteCcy": "",
        "settleCcy": quote,
        "ctMult": "1",
        "ctType": "linear",
        "ctVal": "0.01",
        "ctValCcy": base,
        "instFamily": f"{base}-{quote}",
        "lever": "100",
        "lotSz": "0.01",
        "minSz": "0.01",
        "uly": f"{base}-{quote}",
    }


# --------------------------------------------------------------------------------------- Hyperliquid
HYPERLIQUID_CANDLE_HISTORY = 5_000  # only the most recent 5,000 candles of an interval exist
HYPERLIQUID_FUNDING_LIMIT = 500  # settlements per fundingHistory answer


def hyperliquid_routes(
    markets: dict[str, SyntheticMarket],
    *,
    candle_history: int = HYPERLIQUID_CANDLE_HISTORY,
    meta_sample: dict[str, Any] | None = None,
) -> dict[str, Route]:
    """Return the Hyperliquid ``POST /info`` route: ``spotMeta``, ``metaAndAssetCtxs``, candles and funding.

    The ``metaAndAssetCtxs`` universe is the recorded ``meta_sample`` universe (``http_meta_perp_sample.json``
    in ``../shared/data/exchange_payloads``) when given, then the coins of ``markets`` it does not hold,
    then generated coins up to ``LISTED_SYMBOLS``.

    ``markets`` maps perp coins (``BTC``) to their data. As on Hyperliquid, only the most recent
    ``candle_history`` candles of a market exist (older ranges answer ``[]``), ``startTime`` and
    ``endTime`` are inclusive, lists come oldest first, a ``fundingHistory`` answer holds at most 500
    settlements, and settlement times carry millisecond jitter.
    """
    recorded = [dict(entry) for entry in (meta_sample or {}).get("universe", [])]
    universe = recorded + [
        {"name": coin, "szDecimals": 5, "maxLeverage": 40, "marginTableId": 56, "onlyIsolated": None}
        for coin in markets
        if coin not in {entry["name"] for entry in recorded}
    ]
    universe += [
        {
            "name": x.base,
            "szDecimals": x.decimals,
            "maxLeverage": x.max_leverage // 2 or 3,
            "marginTableId": x.max_leverage // 2 or 3,
            "onlyIsolated": None,
            "isDelisted": None,
        }
        for x in listed_markets([entry["name"] for entry in universe], lambda base: base)
    ]
    handlers: dict[str, Route] = {
        "spotMeta": _hyperliquid_spot_meta,
        "metaAndAssetCtxs": partial(_hyperliquid_meta, universe),
        "candleSnapshot": partial(_hyperliquid_candles, markets, history=candle_history),
        "fundingHistory": partial(_hyperliquid_funding, markets),
    }

    def info(body: dict[str, Any]) -> Any:
        handler = handlers.get(str(body.get("type")))
        if handler is None:
            return Reply(422, b"Failed to deserialize the JSON body into the target type")
        return handler(body)

    return {"/info": info}


def _hyperliquid_spot_meta(body: dict[str, Any]) -> Any:
    usdc = {
        "name": "USDC",
        "szDecimals": 8,
        "weiDecimals": 8,
        "index": 0,
        "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
        "isCanonical": True,
        "evmContract": None,
        "fullName": None,
    }
    return {"tokens": [usdc], "universe": []}


def _hyperliquid_meta(universe: list[dict[str, Any]], body: dict[str, Any]) -> Any:
    context = {
        "funding": "0.0000125",
        "openInterest": "10764.48",
        "prevDayPx": "108.3",
        "dayNtlVlm": "9450588.2273",
        "premium": "0.00055561",
        "oraclePx": "107.99",
        "markPx": "108.04",
        "midPx": "108.05",
        "impactPxs": ["108.04", "108.06"],
        "dayBaseVlm": "87331.49",
    }
    return [{"universe": universe, "marginTables": []}, [dict(context) for _ in universe]]


def _hyperliquid_candles(markets: dict[str, SyntheticMarket], body: dict[str, Any], *, history: int) -> Any:
    request = body.get("req")
    if not isinstance(request, dict) or request.get("coin") not in markets:
        return Reply(500, None)  # Hyperliquid answers an unknown coin with HTTP 500 and "null"
    market = markets[request["coin"]]
    interval = str(request.get("interval"))
    if interval != _compact_interval(market.step_ms):
        return Reply(422, b"Failed to deserialize the JSON body into the target type")
    oldest_ms = market.start_ms + max(0, market.bars - history) * market.step_ms
    rows = market.bars_between(max(int(request["startTime"]), oldest_ms), int(request["endTime"]))
    return [
        {
            "t": ts,
            "T": ts + market.step_ms - 1,
            "s": request["coin"],
            "i": interval,
            "o": o,
            "c": c,
            "h": h,
            "l": low,
            "v": v,
            "n": 1 + (ts // market.step_ms) % 50,
        }
        for ts, o, h, low, c, v in rows[:history]
    ]


def _hyperliquid_funding(markets: dict[str, SyntheticMarket], body: dict[str, Any]) -> Any:
    market = markets.get(str(body.get("coin")))
    if market is None:
        return Reply(500, None)
    rows = market.funding_between(int(body["startTime"]), int(body.get("endTime", 2**62)))
    listed = []
    for ts, rate in rows[:HYPERLIQUID_FUNDING_LIMIT]:
        index = _settlement_index(market, ts)
        # Settlement times carry jitter; some records of the venue's history have no premium.
        record: dict[str, Any] = {"coin": body["coin"], "fundingRate": rate, "time": hyperliquid_time(market, index)}
        premium = hyperliquid_premium(index)
        if premium is not None:
            record["premium"] = premium
        listed.append(record)
    return listed


def hyperliquid_time(market: SyntheticMarket, index: int) -> int:
    """Return the time (ms, with the venue's jitter) ``hyperliquid_routes`` sends for settlement ``index``."""
    return market.funding(index)[0] + 17 + (index * 131) % 900


def hyperliquid_premium(index: int) -> str | None:
    """Return the premium text ``hyperliquid_routes`` sends with settlement ``index`` (None when it sends none)."""
    if not index % 7:
        return None
    return f"-0.000{(index * 613) % 10000:04d}" if index % 2 else f"0.000{index % 1000:03d}1"


# ------------------------------------------------------------------------------------ Kraken Futures
KRAKEN_CANDLES_LIMIT = 2_000  # candles per charts answer; more_candles says when the range held more
KRAKEN_SERVER_TIME = "2024-01-01T00:00:00.000Z"


def kraken_futures_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return Kraken Futures routes: v3 ``instruments``, charts v1 trade/mark/spot candles, v4 funding history.

    ``markets`` maps Kraken Futures symbols (``PF_XBTUSD``) to their data. As on Kraken, charts take
    ``from``/``to`` in seconds (inclusive) and answer at most 2,000 candles with ``more_candles``;
    ``historicalfundingrates`` takes no range and answers every settlement at once, with the rates as
    JSON numbers (``relativeFundingRate`` is the rate of notional, ``fundingRate`` USD per contract).
    """
    routes: dict[str, Route] = {
        "/derivatives/api/v3/instruments": lambda query: {
            "result": "success",
            "instruments": [kraken_instrument(symbol) for symbol in markets]
            + [
                _kraken_listed_instrument(x)
                for x in listed_markets(list(markets), lambda base: f"PF_{KRAKEN_CODES.get(base, base)}USD")
            ],
            "serverTime": KRAKEN_SERVER_TIME,
        },
        "/derivatives/api/v4/historicalfundingrates": partial(_kraken_funding, markets),
        "/derivatives/api/v3/feeschedules": lambda query: {
            "result": "success",
            "feeSchedules": [KRAKEN_FEE_SCHEDULE],
            "serverTime": KRAKEN_SERVER_TIME,
        },
    }
    for symbol, market in markets.items():
        for price_type in ("trade", "mark", "spot"):
            path = f"/api/charts/v1/{price_type}/{symbol}/{_compact_interval(market.step_ms)}"
            routes[path] = partial(_kraken_candles, market, trade=price_type == "trade")
    return routes


def _kraken_candles(market: SyntheticMarket, query: dict[str, Any], *, trade: bool) -> Any:
    rows = market.bars_between(int(query.get("from", 0)) * 1000, int(query.get("to", 2**42)) * 1000)
    return {
        "candles": [
            {"time": ts, "open": o, "high": h, "low": low, "close": c, "volume": v if trade else "0"}
            for ts, o, h, low, c, v in rows[:KRAKEN_CANDLES_LIMIT]
        ],
        "more_candles": len(rows) > KRAKEN_CANDLES_LIMIT,
    }


def _kraken_funding(markets: dict[str, SyntheticMarket], query: dict[str, Any]) -> Any:
    market = markets.get(str(query.get("symbol")))
    if market is None:
        return Reply(200, {"result": "error", "error": "contractNotFound", "serverTime": KRAKEN_SERVER_TIME})
    return {
        "result": "success",
        "rates": [
            {
                "timestamp": kraken_time(ts),
                "fundingRate": float(Decimal(rate) * Decimal("0.0125")),
                "relativeFundingRate": float(rate),
            }
            for ts, rate in market.funding_between(0, 2**62)
        ],
        "serverTime": KRAKEN_SERVER_TIME,
    }


def kraken_time(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


KRAKEN_CODES = {"BTC": "XBT"}
# Kraken Futures fee schedules give percentages as JSON numbers (0.02 = 0.02%), tiers by 30-day USD volume.
KRAKEN_FEE_SCHEDULE = {
    "uid": "5b755fea-c5b0-4307-a66e-b392cd5bd931",
    "name": "PGTMainFees",
    "tiers": [
        {"makerFee": 0.02, "takerFee": 0.05, "usdVolume": 0.0},
        {"makerFee": 0.015, "takerFee": 0.04, "usdVolume": 100000.0},
        {"makerFee": 0.0125, "takerFee": 0.03, "usdVolume": 1000000.0},
    ],
}


def _kraken_listed_instrument(listing: Listing) -> dict[str, Any]:
    code = KRAKEN_CODES.get(listing.base, listing.base)
    leverage = Decimal(listing.max_leverage)
    return kraken_instrument(f"PF_{code}USD") | {
        "tickSize": float(listing.tick),
        "openingDate": datetime.fromtimestamp(listing.listed_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "contractValueTradePrecision": listing.decimals,
        "marginLevels": [
            {
                "numNonContractUnits": 100_000 * (n - 1) ** 2,
                "initialMargin": float(n / leverage),
                "maintenanceMargin": float(n / leverage / 2),
            }
            for n in range(0, 3 + listing.index % 2)
            if n
        ],
    }


def kraken_instrument(symbol: str) -> dict[str, Any]:
    base = symbol.removeprefix("PF_").removesuffix("USD")
    return {
        "symbol": symbol,
        "type": "flexible_futures",
        "tradeable": True,
        "tickSize": 0.5,
        "contractSize": 1,
        "impactMidSize": 1,
        "maxPositionSize": 1000000,
        "openingDate": "2022-01-01T00:00:00.000Z",
        "marginLevels": [
            {"numNonContractUnits": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01},
            {"numNonContractUnits": 500000, "initialMargin": 0.04, "maintenanceMargin": 0.02},
        ],
        "fundingRateCoefficient": 8,
        "maxRelativeFundingRate": 0.001,
        "contractValueTradePrecision": 4,
        "postOnly": False,
        "feeScheduleUid": "5b755fea-c5b0-4307-a66e-b392cd5bd931",
        "mtf": False,
        "base": base,
        "quote": "USD",
        "pair": f"{base}:USD",
        "category": "Layer 1",
        "tags": [],
        "tradfi": False,
    }

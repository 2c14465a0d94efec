"""Loopback stand-ins for venues, for tests and offline demos: nothing here leaves 127.0.0.1.

``FakeVenueServer`` answers HTTP on 127.0.0.1 in the venues' real response formats (Binance USD-M
``/fapi/v1/...``, Bybit v5 ``/v5/market/...``) from a deterministic ``SyntheticMarket``, logs every
request, and can be told to fail (HTTP 429/5xx, error bodies, malformed pages) so retry, resume and
validation paths run in tests. Response shapes follow the payload samples in
``../shared/data/exchange_payloads`` (nautilus_trader adapters' test data) and the Binance
``exchangeInfo`` recorded in ``../shared/data/cryptofeed_recordings/BINANCE_FUTURES.0``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOUR_MS = 3_600_000
Route = Callable[[dict[str, str]], Any]


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


@dataclass(slots=True)
class FakeVenueServer:
    """An HTTP server on 127.0.0.1 serving ``routes`` (path -> handler of the query), with injected faults.

    Use as a context manager; ``base_url`` is ``http://127.0.0.1:<port>``. ``requests`` logs
    ``(path, query)`` of every request in arrival order (faulted ones included). A route returning
    ``bytes`` is served as is; anything else as JSON.
    """

    routes: dict[str, Route]
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def requests_to(self, path: str) -> list[dict[str, str]]:
        """Return the queries of the requests made to ``path``."""
        return [query for seen, query in self.requests if seen == path]

    def __enter__(self) -> FakeVenueServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-venue-http", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append((path, query))
            for fault in self.faults:
                if not path.startswith(fault.path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    return fault.status, fault.body.encode()
        route = self.routes.get(path)
        if route is None:
            return 404, json.dumps({"code": -1, "msg": f"no route {path} on the fake venue"}).encode()
        result = route(query)
        return 200, result if isinstance(result, bytes) else json.dumps(result).encode()


def _handler_for(server: FakeVenueServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, payload = server.answer(parts.path, dict(parse_qsl(parts.query)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


# ------------------------------------------------------------------------------------------- Binance
def binance_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return Binance USD-M routes (``exchangeInfo``, ``klines``, ``markPriceKlines``, ``fundingRate``).

    ``markets`` maps Binance tickers (``BTCUSDT``) to their data.
    """

    def exchange_info(query: dict[str, str]) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": 1_700_000_000_000,
            "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [_binance_symbol(ticker) for ticker in markets],
        }

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


# --------------------------------------------------------------------------------------------- Bybit
def bybit_routes(markets: dict[str, SyntheticMarket]) -> dict[str, Route]:
    """Return Bybit v5 linear routes (``instruments-info``, ``kline``, ``mark-price-kline``, ``funding/history``).

    Lists come newest first, as Bybit sends them.
    """

    def envelope(result: Any) -> Any:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1_700_000_000_000}

    def instruments(query: dict[str, str]) -> Any:
        return envelope({"category": "linear", "list": [_bybit_instrument(t) for t in markets], "nextPageCursor": ""})

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
        "/v5/market/kline": klines,
        "/v5/market/mark-price-kline": lambda query: klines(query, mark=True),
        "/v5/market/funding/history": funding,
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

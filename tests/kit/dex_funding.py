"""A loopback server for the research-only funding venues (dYdX v4 indexer, Lighter, Drift data API).

Formats, and where they come from:

- dYdX ``GET /v4/historicalFunding/{ticker}?limit=&effectiveBeforeOrAt=``: records as in
  ``../shared/data/exchange_payloads/crates/adapters/dydx/test_data/http_get_historical_funding.json``
  (``{ticker, rate, price, effectiveAtHeight, effectiveAt}``, newest first, without the sample's
  ``requestId`` envelope, which the indexer does not send); ``GET /v4/perpetualMarkets`` as ccxt 4.5's
  ``dydx.fetch_markets`` documents the indexer's answer.
- Lighter ``GET /api/v1/fundings``: ``{code, resolution, fundings: [{timestamp, value, rate, direction}]}``
  as in ``crates/adapters/lighter/test_data/http_fundings.json``; ``GET /api/v1/orderBooks``
  (``{code, order_books: [{symbol, market_id, status, ...}]}``) from Lighter's API docs.
- Drift ``GET /fundingRates?marketName=SOL-PERP``: ``{fundingRates: [FundingRateRecord fields as text]}``
  from Drift's data API docs and the protocol's ``FundingRateRecord`` event.

The histories are **synthetic** (seeded by position, not market data): hourly settlements whose rate
is ``(i % 7 - 3) * 1e-6`` per hour for settlement ``i``, published a few ms (dYdX) or minutes (Drift)
after the hour as the real venues do. ``fail_first`` answers the next requests with the given HTTP
statuses before serving (a transient 503/429, or a refusal); ``html_next`` answers the next one with a
200 HTML page (a proxy's error page); ``refuse_path`` answers every request under that path with HTTP 403.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.kit.loopback_venue import LoopbackServer

LIGHTER_MARKETS = {"ETH": 0, "BTC": 1, "SOL": 2}
DYDX_TICKERS = ("BTC-USD", "ETH-USD", "SOL-USD")
# Drift oracle TWAP of the synthetic history (1e6 precision): 150 USD.
DRIFT_ORACLE_TWAP = 150_000_000


def synthetic_rate(index: int) -> Decimal:
    """Return the synthetic hourly rate of settlement ``index`` (a fraction)."""
    return Decimal(index % 7 - 3) * Decimal("0.000001")


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class DexFundingVenue(LoopbackServer):
    """dYdX, Lighter and Drift funding endpoints over one synthetic hourly history per market."""

    name = "dex-funding"

    def __init__(self, *, start: datetime, hours: int) -> None:
        super().__init__()
        self.hours = [start + timedelta(hours=i) for i in range(hours)]
        self.fail_first: list[int] = []
        self.html_next = False
        self.refuse_path: str | None = None

    def _failure(self) -> web.Response | None:
        if self.html_next:
            self.html_next = False
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if not self.fail_first:
            return None
        status = self.fail_first.pop(0)
        return web.json_response({"error": f"loopback: injected HTTP {status}"}, status=status)

    async def handle_http(self, request: web.Request, body: str) -> web.StreamResponse:
        failure = self._failure()
        if failure is not None:
            return failure
        path, query = request.path, request.query
        if self.refuse_path is not None and path.startswith(self.refuse_path):
            return web.json_response({"error": f"loopback: {path} refused"}, status=403)
        if path == "/v4/perpetualMarkets":
            return web.json_response({"markets": {t: _dydx_market(t, n) for n, t in enumerate(DYDX_TICKERS)}})
        if path.startswith("/v4/historicalFunding/"):
            return web.json_response(self._dydx(path.rsplit("/", 1)[1], query))
        if path == "/api/v1/orderBooks":
            books = [{"symbol": s, "market_id": m, "status": "active"} for s, m in LIGHTER_MARKETS.items()]
            return web.json_response({"code": 200, "order_books": books})
        if path == "/api/v1/fundings":
            return web.json_response(self._lighter(query))
        if path == "/fundingRates":
            return web.json_response(self._drift(query))
        return await super().handle_http(request, body)

    def _dydx(self, ticker: str, query: Any) -> dict[str, Any]:
        bound = datetime.fromisoformat(query["effectiveBeforeOrAt"]) if "effectiveBeforeOrAt" in query else None
        limit = int(query.get("limit", 100))
        rows = []
        for index, hour in reversed(list(enumerate(self.hours))):
            published = hour + timedelta(milliseconds=200 + index % 300)
            if bound is not None and published > bound:
                continue
            rows.append(
                {
                    "ticker": ticker,
                    "rate": str(synthetic_rate(index)),
                    "price": "90000.5",
                    "effectiveAtHeight": str(66_000_000 + index * 5_600),
                    "effectiveAt": _iso_ms(published),
                }
            )
            if len(rows) == limit:
                break
        return {"historicalFunding": rows}

    def _lighter(self, query: Any) -> dict[str, Any]:
        start, end = int(query["start_timestamp"]), int(query["end_timestamp"])
        chosen = [(i, h) for i, h in enumerate(self.hours) if start <= int(h.timestamp()) <= end]
        chosen = chosen[-int(query["count_back"]) :]
        fundings = [
            {
                "timestamp": int(hour.timestamp()),
                "value": "0.001",
                "rate": str(abs(synthetic_rate(i)) * 100),
                "direction": "long" if synthetic_rate(i) >= 0 else "short",
            }
            for i, hour in chosen
        ]
        return {"code": 200, "resolution": query["resolution"], "fundings": fundings}

    def _drift(self, query: Any) -> dict[str, Any]:
        records = []
        for index, hour in enumerate(self.hours):
            # fundingRate = rate x oracle TWAP in FUNDING_RATE_PRECISION (1e9) over PRICE_PRECISION (1e6).
            funding_rate = synthetic_rate(index) * DRIFT_ORACLE_TWAP * 1000
            records.append(
                {
                    "ts": str(int(hour.timestamp()) + 60 + index % 240),
                    "recordId": str(10_000 + index),
                    "marketIndex": 0,
                    "fundingRate": str(int(funding_rate)),
                    "fundingRateLong": str(int(funding_rate)),
                    "fundingRateShort": str(int(funding_rate)),
                    "oraclePriceTwap": str(DRIFT_ORACLE_TWAP),
                    "markPriceTwap": str(DRIFT_ORACLE_TWAP + 1_000),
                    "slot": str(360_000_000 + index * 9_000),
                    "txSig": f"synthetic-{query.get('marketName')}-{index}",
                }
            )
        return {"fundingRates": records}


def _dydx_market(ticker: str, number: int) -> dict[str, Any]:
    return {
        "clobPairId": str(number),
        "ticker": ticker,
        "status": "ACTIVE",
        "oraclePrice": "90000.5",
        "nextFundingRate": "0",
        "initialMarginFraction": "0.02",
        "maintenanceMarginFraction": "0.012",
        "atomicResolution": -10,
        "quantumConversionExponent": -9,
        "tickSize": "1",
        "stepSize": "0.0001",
        "stepBaseQuantums": 1_000_000,
        "subticksPerTick": 100_000,
        "marketType": "CROSS",
        "defaultFundingRate1H": "0",
    }


def started(start: datetime | None = None, hours: int = 48) -> DexFundingVenue:
    """Return a started venue with ``hours`` settlements from ``start`` (default 2025-01-06 00:00 UTC)."""
    return DexFundingVenue(start=start or datetime(2025, 1, 6, tzinfo=UTC), hours=hours).start()  # type: ignore[return-value]

"""Everything venue-specific about downloading through ccxt, in one table.

Each row says which ccxt class serves a venue's market, which market types to load (so loading
markets costs one request, not four), the page sizes the venue's endpoints accept, whether it has
mark-price candles, and where its raw funding record keeps the rate as text. Code elsewhere reads
this table and never branches on a venue's name.

Canonical symbols map to ccxt unified symbols by one rule: ``BTC-USDT`` -> ``BTC/USDT`` (spot) and
``BTC-USDT-PERP`` -> ``BTC/USDT:USDT`` (a linear perpetual settled in its quote currency). That holds
for every venue here: Hyperliquid ``BTC-USDC-PERP`` -> ``BTC/USDC:USDC``, Kraken Futures ``PF_XBTUSD`` is
``BTC-USD-PERP`` -> ``BTC/USD:USD``.

Page sizes and history limits are the venues' documented maxima as of ccxt 4.5 (mid 2025):

=============  =========================  ========  ===========  ======================================
venue          ccxt class (spot / perp)   candles   funding      history notes
=============  =========================  ========  ===========  ======================================
binance        binance / binance          1000      1000         full history
bybit          bybit / bybit              1000      200          full history
okx            okx / okx                  100       100          funding: last 3 months only
hyperliquid    hyperliquid / hyperliquid  5000      500          candles: most recent 5000 only
kraken         kraken / krakenfutures     720/2000  all at once  spot candles: most recent 720 only
=============  =========================  ========  ===========  ======================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import ccxt

from datasets.acquire.errors import PlanError
from datasets.symbols import PERP_SUFFIX, Market

FetchKind = Literal["ohlcv", "mark", "funding"]
TiersCall = Literal["fetch_leverage_tiers", "fetch_market_leverage_tiers"]
FundingIntervalCall = Literal["fetch_funding_intervals", "fetch_funding_rates"]
FETCH_KINDS: tuple[FetchKind, ...] = ("ohlcv", "mark", "funding")
DEFAULT_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CcxtVenue:
    """How one venue is downloaded through ccxt.

    Attributes
    ----------
    name : str
        Store venue name.
    exchange_ids : Mapping[Market, str]
        The ccxt class serving each market.
    market_types : Mapping[Market, tuple[str, ...]]
        ccxt ``options["fetchMarkets"]["types"]`` to load for each market; empty keeps ccxt's default.
    quotes : Mapping[Market, str]
        Quote currency assumed for a bare base (``BTC``) on each market.
    ohlcv_limit : Mapping[Market, int]
        Most candles one request returns.
    mark_ohlcv : bool
        The perp market has mark-price candles (ccxt ``params={"price": "mark"}``).
    funding_limit : int | None
        Most settlements one request returns; None when one request returns the whole history.
    funding_rate_keys : tuple[str, ...]
        Keys of the raw funding record (ccxt ``info``) holding the settled rate as published; first present wins.
    funding_mark_key, funding_premium_key : str | None
        Keys of the raw funding record holding the mark price and the premium, where the venue sends them.
    funding_until : tuple[str, int] | None
        Parameter that bounds a funding request's end and the offset added to the exclusive window end
        (ccxt's unified ``until`` is inclusive: -1 ms); None when the endpoint takes no end.
    ohlcv_until : int | None
        Offset added to the exclusive window end to make a candle request's ccxt ``until``: -1 where ccxt
        passes ``until`` on as an inclusive end (its unified meaning), 0 where the venue reads it as an
        exclusive bound (OKX ``after``: records strictly earlier); None when the candle endpoints take no
        end, so a page is bounded by ``since`` and the limit only, and rows past the window are dropped.
    instrument_markets : tuple of Market
        Markets whose instruments ``fetch --kind instruments`` loads (``datasets.acquire.instruments``).
    tiers_call : TiersCall | None
        The ccxt method serving margin tiers: all symbols in one call, or one call per symbol; None
        when ccxt has none for the venue (Hyperliquid: first-tier margins come from ``maxLeverage``).
    tiers_need_key : bool
        The tiers endpoint is private (Binance ``/fapi/v1/leverageBracket``): skipped without API keys.
    fees_call : Literal["fetch_trading_fees"] | None
        The ccxt method serving base-tier fees without an account; None where every fee endpoint is
        private (then ``datasets/venues.py`` fee schedules are stored, and the source says so).
    funding_interval_call : FundingIntervalCall | None
        The ccxt method serving funding intervals; None when the markets carry them
        (``funding_interval_key``) or the venue has one clock (``datasets/venues.py``).
    funding_interval_key : str | None
        Key of the raw market holding the funding interval in minutes (Bybit ``fundingInterval``).
    """

    name: str
    exchange_ids: Mapping[Market, str]
    market_types: Mapping[Market, tuple[str, ...]]
    quotes: Mapping[Market, str]
    ohlcv_limit: Mapping[Market, int]
    mark_ohlcv: bool
    funding_limit: int | None
    funding_rate_keys: tuple[str, ...]
    funding_mark_key: str | None = None
    funding_premium_key: str | None = None
    funding_until: tuple[str, int] | None = ("until", -1)
    ohlcv_until: int | None = -1
    instrument_markets: tuple[Market, ...] = ("spot", "perp")
    tiers_call: TiersCall | None = None
    tiers_need_key: bool = False
    fees_call: Literal["fetch_trading_fees"] | None = None
    funding_interval_call: FundingIntervalCall | None = None
    funding_interval_key: str | None = None

    def supports(self, kind: FetchKind, market: Market) -> bool:
        """Return whether the venue serves ``kind`` on ``market``."""
        if kind == "ohlcv":
            return True
        return market == "perp" and (kind == "funding" or self.mark_ohlcv)


def _by_market(spot: Any, perp: Any) -> Mapping[Market, Any]:
    return MappingProxyType({"spot": spot, "perp": perp})


CCXT_VENUES: Mapping[str, CcxtVenue] = MappingProxyType(
    {
        v.name: v
        for v in (
            CcxtVenue(
                name="binance",
                exchange_ids=_by_market("binance", "binance"),
                market_types=_by_market(("spot",), ("linear",)),
                quotes=_by_market("USDT", "USDT"),
                # The venue serves 1500 USD-M klines per request, but ccxt caps every klines request at 1000.
                ohlcv_limit=_by_market(1000, 1000),
                mark_ohlcv=True,
                funding_limit=1000,
                funding_rate_keys=("fundingRate",),
                funding_mark_key="markPrice",
                tiers_call="fetch_leverage_tiers",
                tiers_need_key=True,
                # fundingInfo lists only the symbols whose interval was adjusted; the rest keep 8h.
                funding_interval_call="fetch_funding_intervals",
            ),
            CcxtVenue(
                name="bybit",
                exchange_ids=_by_market("bybit", "bybit"),
                market_types=_by_market(("spot",), ("linear",)),
                quotes=_by_market("USDT", "USDT"),
                ohlcv_limit=_by_market(1000, 1000),
                mark_ohlcv=True,
                funding_limit=200,
                funding_rate_keys=("fundingRate",),
                tiers_call="fetch_leverage_tiers",
                funding_interval_key="fundingInterval",
            ),
            CcxtVenue(
                name="okx",
                exchange_ids=_by_market("okx", "okx"),
                market_types=_by_market(("spot",), ("swap",)),
                quotes=_by_market("USDT", "USDT"),
                ohlcv_limit=_by_market(100, 100),
                mark_ohlcv=True,
                funding_limit=100,
                # realizedRate is what settled (OKX may clamp the computed fundingRate): the importer keeps it too.
                funding_rate_keys=("realizedRate", "fundingRate"),
                # OKX pages backwards: "after" returns records strictly earlier than it (exclusive end).
                funding_until=("after", 0),
                # ccxt sends candles' "until" as OKX "after", exclusive too: -1 would drop a bar opening at end - 1 ms.
                ohlcv_until=0,
                tiers_call="fetch_market_leverage_tiers",
                funding_interval_call="fetch_funding_rates",
            ),
            CcxtVenue(
                name="hyperliquid",
                exchange_ids=_by_market("hyperliquid", "hyperliquid"),
                market_types=_by_market(("spot",), ("swap",)),
                quotes=_by_market("USDC", "USDC"),
                ohlcv_limit=_by_market(5000, 5000),
                mark_ohlcv=False,
                funding_limit=500,
                funding_rate_keys=("fundingRate",),
                funding_premium_key="premium",
                instrument_markets=("perp",),
            ),
            CcxtVenue(
                name="kraken",
                exchange_ids=_by_market("kraken", "krakenfutures"),
                market_types=_by_market((), ()),
                quotes=_by_market("USD", "USD"),
                ohlcv_limit=_by_market(720, 2000),
                mark_ohlcv=True,
                funding_limit=None,
                # fundingRate is USD per contract; relativeFundingRate is the rate as a fraction of notional.
                funding_rate_keys=("relativeFundingRate",),
                funding_until=None,
                ohlcv_until=None,
                # Kraken Futures only: spot AssetPairs are another class (kraken) and not loaded here.
                instrument_markets=("perp",),
                tiers_call="fetch_leverage_tiers",
                fees_call="fetch_trading_fees",
            ),
        )
    }
)


def ccxt_venue(venue: str) -> CcxtVenue:
    """Return the download facts of a venue.

    Raises
    ------
    PlanError
        If the venue has no row; the message lists the venues that have one.
    """
    try:
        return CCXT_VENUES[venue]
    except KeyError:
        raise PlanError(
            f"venue {venue!r} cannot be downloaded: expected one of {', '.join(CCXT_VENUES)}; "
            "add a row to datasets/acquire/ccxt_venues.py"
        ) from None


def ccxt_symbol(symbol: str) -> str:
    """Return the ccxt unified symbol of a canonical one (``BTC-USDT-PERP`` -> ``BTC/USDT:USDT``).

    Raises
    ------
    PlanError
        If the symbol is not ``BASE-QUOTE`` or ``BASE-QUOTE-PERP``.
    """
    perp = symbol.endswith(PERP_SUFFIX)
    parts = symbol.removesuffix(PERP_SUFFIX).split("-")
    if len(parts) != 2 or not all(parts):
        raise PlanError(f"expected a canonical symbol like BTC-USDT or BTC-USDT-PERP, was {symbol!r}")
    base, quote = parts
    return f"{base}/{quote}:{quote}" if perp else f"{base}/{quote}"


def resolve_symbol(venue: str, text: str, market: Market | None) -> str:
    """Return the canonical symbol for a command-line symbol: canonical (``BTC-USDT-PERP``) or a bare base (``BTC``).

    A bare base takes the venue's quote for ``market`` (perp when not given); a pair without ``-PERP``
    becomes the perp when ``market`` is ``perp``.

    Raises
    ------
    PlanError
        If the symbol contradicts ``market`` or is not in a canonical form.
    """
    row = ccxt_venue(venue)
    upper = text.strip().upper()
    if "-" not in upper:
        chosen: Market = market or "perp"
        symbol = f"{upper}-{row.quotes[chosen]}{PERP_SUFFIX if chosen == 'perp' else ''}"
    elif upper.endswith(PERP_SUFFIX):
        if market == "spot":
            raise PlanError(f"symbol {text!r} is a perp but --market spot was given: drop one of them")
        symbol = upper
    else:
        symbol = f"{upper}{PERP_SUFFIX}" if market == "perp" else upper
    ccxt_symbol(symbol)
    return symbol


def make_exchange(
    venue: str,
    market: Market,
    *,
    api_url: str | None = None,
    enable_rate_limit: bool = True,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> ccxt.Exchange:
    """Return a ccxt exchange for a venue's market, rate-limited with the venue's own limits.

    Parameters
    ----------
    venue, market : str
        A row of ``CCXT_VENUES`` and ``spot`` or ``perp``.
    api_url : str, optional
        Rebase every REST endpoint onto this scheme and host, keeping each endpoint's path (a proxy,
        a mirror, or a loopback server in tests).
    enable_rate_limit : bool
        ccxt's throttle at the venue's ``rateLimit``; leave on against real venues.
    timeout_ms : int
        Timeout of each HTTP request.
    """
    row = ccxt_venue(venue)
    exchange_class = getattr(ccxt, row.exchange_ids[market])
    options: dict[str, Any] = {}
    types = row.market_types[market]
    if types:
        options["fetchMarkets"] = {"types": list(types)}
    exchange: ccxt.Exchange = exchange_class(
        {
            "enableRateLimit": enable_rate_limit,
            "timeout": timeout_ms,
            "options": options,
            # Kept so a page that is not JSON is told apart from an empty page.
            "enableLastJsonResponse": True,
            "enableLastHttpResponse": True,
        }
    )
    if api_url is not None:
        exchange.urls["api"] = _rebase_urls(exchange.urls["api"], api_url)
    return exchange


def _rebase_urls(urls: Any, base: str) -> Any:
    if isinstance(urls, str):
        return _rebase(urls, base)
    if isinstance(urls, dict):
        return {key: _rebase_urls(value, base) for key, value in urls.items()}
    return urls


def _rebase(url: str, base: str) -> str:
    target = urlsplit(base)
    parts = urlsplit(url)
    return urlunsplit((target.scheme, target.netloc, target.path.rstrip("/") + parts.path, parts.query, ""))

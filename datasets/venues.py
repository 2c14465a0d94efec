"""Static facts about the venues we trade: Nautilus names, fees, funding clocks and instrument specs.

One table, read by the catalog exporter (instruments and the fees it writes to ``venues.json``, which is
where the engine takes its fee models from) and by the engine for instrument ids.
Every number here was typed from the venues' public pages **as of the author's knowledge (mid 2025)**;
none was fetched. Fees and filters change: re-check them against the venue (or against the instruments
Nautilus' live adapter loads) before trusting a backtest's costs or going live.

Instrument ids follow the conventions of Nautilus' own live adapters (read in the adapters' Rust
source, nautilus_trader@a95c8042), so a strategy config written against a backtest catalog runs live
unchanged; the rules live in ``instrument_id_for``:

=============  ============================  ===============================
venue          spot                          perpetual
=============  ============================  ===============================
binance        ``BTCUSDT.BINANCE``           ``BTCUSDT-PERP.BINANCE``
bybit          ``BTCUSDT-SPOT.BYBIT``        ``BTCUSDT-LINEAR.BYBIT``
okx            ``BTC-USDT.OKX``              ``BTC-USDT-SWAP.OKX``
hyperliquid    (no spot specs)               ``BTC-USD-PERP.HYPERLIQUID``
kraken         ``BTC/USD.KRAKEN``            ``PF_XBTUSD.KRAKEN``
=============  ============================  ===============================

Price precision is the number of decimals of the tick *as the venue writes it* (Nautilus parses
``"0.10"`` as precision 2), which is what the live adapter produces. ``margin_init`` is the first
risk tier's initial margin rate (1 / max leverage, rounded up to 4 decimals where it does not divide)
and ``margin_maint`` its maintenance rate, the way Nautilus' Kraken adapter fills them; they are rates
of notional, so use them with Nautilus' ``StandardMarginModel``. OKX swaps are sized in contracts
(``multiplier`` = contract value in base units), as on the venue and in the live adapter. One
deliberate difference: Hyperliquid perps keep the adapter's ``-USD-PERP`` id but quote in USDC, the
currency they are margined in (see the comment on ``HYPERLIQUID``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from nautilus_trader.model import InstrumentId

from datasets.errors import DatasetError
from datasets.schemas import interval_secs
from datasets.symbols import PERP_SUFFIX, Market


class UnknownVenueError(DatasetError):
    """A venue has no entry in ``datasets.venues.VENUES``."""


class UnknownInstrumentError(DatasetError):
    """A canonical symbol has no instrument spec on a venue."""


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee rates (fractions of notional) of one product line of a venue."""

    maker: Decimal
    taker: Decimal
    schedule: str
    as_of: str


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What Nautilus needs to build one instrument of a venue.

    Attributes
    ----------
    venue, symbol : str
        Store venue (``binance``) and canonical symbol (``BTC-USDT-PERP``).
    base, quote, settlement : str
        Currency codes; ``settlement`` equals ``quote`` for spot.
    price_increment, size_increment, min_quantity : Decimal
        Tick, lot and minimum order size, written as the venue writes them.
    margin_init, margin_maint : Decimal
        First-tier initial and maintenance margin rates (zero for spot).
    multiplier : Decimal
        Base units per contract (1 except OKX swaps).
    """

    venue: str
    symbol: str
    base: str
    quote: str
    settlement: str
    price_increment: Decimal
    size_increment: Decimal
    min_quantity: Decimal
    margin_init: Decimal = Decimal(0)
    margin_maint: Decimal = Decimal(0)
    multiplier: Decimal = Decimal(1)

    @property
    def market(self) -> Market:
        return "perp" if self.symbol.endswith(PERP_SUFFIX) else "spot"

    @property
    def price_precision(self) -> int:
        return _decimals(self.price_increment)

    @property
    def size_precision(self) -> int:
        return _decimals(self.size_increment)

    @property
    def instrument_id(self) -> InstrumentId:
        return instrument_id_for(self.venue, self.symbol)

    @property
    def raw_symbol(self) -> str:
        return raw_symbol_for(self.venue, self.symbol)


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """One venue: its Nautilus name, fee schedules, funding clock and instruments."""

    name: str
    nautilus_venue: str
    perp_fees: FeeSchedule
    spot_fees: FeeSchedule
    funding_interval: str
    instruments: Mapping[str, InstrumentSpec] = field(default_factory=dict)

    def fees(self, market: Market) -> FeeSchedule:
        """Return the fee schedule of a market (``spot`` or ``perp``)."""
        return self.perp_fees if market == "perp" else self.spot_fees

    @property
    def funding_interval_minutes(self) -> int:
        return interval_secs(self.funding_interval) // 60


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"an increment must be a finite decimal, was {value}")
    return max(0, -exponent)


def _d(text: str) -> Decimal:
    return Decimal(text)


def _spot(venue: str, base: str, quote: str, tick: str, lot: str, min_qty: str) -> InstrumentSpec:
    return InstrumentSpec(
        venue=venue,
        symbol=f"{base}-{quote}",
        base=base,
        quote=quote,
        settlement=quote,
        price_increment=_d(tick),
        size_increment=_d(lot),
        min_quantity=_d(min_qty),
    )


def _perp(
    venue: str,
    base: str,
    quote: str,
    tick: str,
    lot: str,
    min_qty: str,
    *,
    margin_init: str,
    margin_maint: str,
    settlement: str | None = None,
    multiplier: str = "1",
) -> InstrumentSpec:
    return InstrumentSpec(
        venue=venue,
        symbol=f"{base}-{quote}{PERP_SUFFIX}",
        base=base,
        quote=quote,
        settlement=settlement or quote,
        price_increment=_d(tick),
        size_increment=_d(lot),
        min_quantity=_d(min_qty),
        margin_init=_d(margin_init),
        margin_maint=_d(margin_maint),
        multiplier=_d(multiplier),
    )


def _venue(
    name: str,
    nautilus_venue: str,
    *,
    perp_fees: FeeSchedule,
    spot_fees: FeeSchedule,
    funding_interval: str,
    instruments: list[InstrumentSpec],
) -> VenueSpec:
    return VenueSpec(
        name=name,
        nautilus_venue=nautilus_venue,
        perp_fees=perp_fees,
        spot_fees=spot_fees,
        funding_interval=funding_interval,
        instruments=MappingProxyType({spec.symbol: spec for spec in instruments}),
    )


AS_OF = "2025-06 (author's knowledge, not fetched: re-check)"

# Binance. Fees: binance.com/en/fee/schedule, Regular user (VIP 0), no BNB discount: spot 0.1000% /
# 0.1000%; USD-M futures 0.0200% maker / 0.0500% taker. Funding every 8 h (00/08/16 UTC) on these
# symbols. Filters: spot and USD-M exchangeInfo PRICE_FILTER.tickSize / LOT_SIZE.stepSize, minQty.
# Perp margins: first bracket of binance_leverage_tiers.json (freqtrade 2026.9 package data, also in
# ../shared/data/binance_margin/): maintMarginRatio and 1/initialLeverage (BTC, ETH 150x; SOL 100x;
# LINK, AVAX 75x); tests/unit/datasets/test_catalog_venues.py checks them against that file.
BINANCE = _venue(
    "binance",
    "BINANCE",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "Binance USD-M futures, Regular user VIP 0", AS_OF),
    spot_fees=FeeSchedule(_d("0.001"), _d("0.001"), "Binance spot, Regular user VIP 0, no BNB discount", AS_OF),
    funding_interval="8h",
    instruments=[
        _spot("binance", "BTC", "USDT", "0.01", "0.00001", "0.00001"),
        _spot("binance", "ETH", "USDT", "0.01", "0.0001", "0.0001"),
        _spot("binance", "SOL", "USDT", "0.01", "0.001", "0.001"),
        _perp("binance", "BTC", "USDT", "0.10", "0.001", "0.001", margin_init="0.0067", margin_maint="0.004"),
        _perp("binance", "ETH", "USDT", "0.01", "0.001", "0.001", margin_init="0.0067", margin_maint="0.004"),
        _perp("binance", "SOL", "USDT", "0.0100", "1", "1", margin_init="0.01", margin_maint="0.005"),
        _perp("binance", "LINK", "USDT", "0.001", "0.01", "0.01", margin_init="0.0134", margin_maint="0.005"),
        _perp("binance", "AVAX", "USDT", "0.0010", "1", "1", margin_init="0.0134", margin_maint="0.005"),
    ],
)

# Bybit. Fees: bybit.com/en/help-center fee rates, non-VIP: spot 0.1000% / 0.1000%; perpetual and
# futures contracts 0.0200% maker / 0.0550% taker. Funding every 8 h on these symbols. Filters: v5
# instruments-info priceFilter.tickSize, lotSizeFilter.qtyStep|basePrecision, minOrderQty. Margins:
# risk limit tier 1 (BTC, ETH 100x: IM 1%, MM 0.5%; SOL 50x: IM 2%, MM 1%).
BYBIT = _venue(
    "bybit",
    "BYBIT",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.00055"), "Bybit derivatives, non-VIP", AS_OF),
    spot_fees=FeeSchedule(_d("0.001"), _d("0.001"), "Bybit spot, non-VIP", AS_OF),
    funding_interval="8h",
    instruments=[
        _spot("bybit", "BTC", "USDT", "0.01", "0.000001", "0.000048"),
        _spot("bybit", "ETH", "USDT", "0.01", "0.00001", "0.00062"),
        _spot("bybit", "SOL", "USDT", "0.01", "0.001", "0.011"),
        _perp("bybit", "BTC", "USDT", "0.10", "0.001", "0.001", margin_init="0.01", margin_maint="0.005"),
        _perp("bybit", "ETH", "USDT", "0.01", "0.01", "0.01", margin_init="0.01", margin_maint="0.005"),
        _perp("bybit", "SOL", "USDT", "0.010", "0.1", "0.1", margin_init="0.02", margin_maint="0.01"),
    ],
)

# OKX. Fees: okx.com/fees, Regular user Lv1: spot 0.080% maker / 0.100% taker; USDT-margined swaps
# 0.020% / 0.050%. Funding every 8 h on these swaps. Filters: public/instruments tickSz, lotSz, minSz;
# swaps trade in contracts of ctVal base units (BTC 0.01, ETH 0.1, SOL 1). Margins: position tier 1
# (BTC, ETH 100x: IM 1%, MM 0.4%; SOL 50x: IM 2%, MM 1%).
OKX = _venue(
    "okx",
    "OKX",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "OKX USDT-margined swaps, Regular user Lv1", AS_OF),
    spot_fees=FeeSchedule(_d("0.0008"), _d("0.001"), "OKX spot, Regular user Lv1", AS_OF),
    funding_interval="8h",
    instruments=[
        _spot("okx", "BTC", "USDT", "0.1", "0.00000001", "0.00001"),
        _spot("okx", "ETH", "USDT", "0.01", "0.000001", "0.0001"),
        _spot("okx", "SOL", "USDT", "0.01", "0.000001", "0.001"),
        _perp("okx", "BTC", "USDT", "0.1", "0.01", "0.01", margin_init="0.01", margin_maint="0.004", multiplier="0.01"),
        _perp("okx", "ETH", "USDT", "0.01", "0.01", "0.01", margin_init="0.01", margin_maint="0.004", multiplier="0.1"),
        _perp("okx", "SOL", "USDT", "0.01", "0.01", "0.01", margin_init="0.02", margin_maint="0.01", multiplier="1"),
    ],
)

# Hyperliquid. Fees: hyperliquid.gitbook.io docs "Fees", tier 0 (<= $5M 14-day volume): perps 0.015%
# maker / 0.045% taker; spot 0.040% / 0.070%. Funding every hour (8-hourly before 2023-06-08; the store
# carries each settlement's own interval). Perps are margined and settled in USDC; Nautilus' adapter
# names them ``BTC-USD-PERP`` and quotes them in USD, but a backtest USDC account then cannot price
# USD margin without FX quotes (orders are DENIED "Account currency conversion failed"), so these specs
# quote and settle in USDC and keep the adapter's id. Filters from the adapter's rule: lot 10^-szDecimals,
# tick 10^-(6 - szDecimals) (BTC 5, ETH 4, SOL 2 szDecimals); minimum order is $10 notional, so
# min_quantity is one lot.
# Margins: max leverage BTC 40x, ETH 25x, SOL 20x; maintenance is half the initial margin at max leverage.
HYPERLIQUID = _venue(
    "hyperliquid",
    "HYPERLIQUID",
    perp_fees=FeeSchedule(_d("0.00015"), _d("0.00045"), "Hyperliquid perps, tier 0", AS_OF),
    spot_fees=FeeSchedule(_d("0.0004"), _d("0.0007"), "Hyperliquid spot, tier 0", AS_OF),
    funding_interval="1h",
    instruments=[
        _perp("hyperliquid", "BTC", "USDC", "0.1", "0.00001", "0.00001", margin_init="0.025", margin_maint="0.0125"),
        _perp("hyperliquid", "ETH", "USDC", "0.01", "0.0001", "0.0001", margin_init="0.04", margin_maint="0.02"),
        _perp("hyperliquid", "SOL", "USDC", "0.0001", "0.01", "0.01", margin_init="0.05", margin_maint="0.025"),
    ],
)

# Kraken. Fees: kraken.com/features/fee-schedule, Kraken Pro spot, $0-10k 30-day volume: 0.25% maker /
# 0.40% taker (the tier-0 values of AssetPairs ``fees_maker``/``fees``); Kraken Futures 0.02% / 0.05%.
# Perpetuals (``PF_``, multi-collateral, USD-settled) fund every hour. Filters: spot AssetPairs tick_size,
# lot_decimals (8), ordermin; futures instruments tickSize, contractValueTradePrecision, first
# marginLevels entry (IM 2%, MM 1%).
KRAKEN = _venue(
    "kraken",
    "KRAKEN",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "Kraken Futures, base tier", AS_OF),
    spot_fees=FeeSchedule(_d("0.0025"), _d("0.004"), "Kraken Pro spot, $0-10k 30-day volume", AS_OF),
    funding_interval="1h",
    instruments=[
        _spot("kraken", "BTC", "USD", "0.1", "0.00000001", "0.00005"),
        _spot("kraken", "ETH", "USD", "0.01", "0.00000001", "0.002"),
        _spot("kraken", "SOL", "USD", "0.01", "0.00000001", "0.02"),
        _perp("kraken", "BTC", "USD", "0.5", "0.0001", "0.0001", margin_init="0.02", margin_maint="0.01"),
        _perp("kraken", "ETH", "USD", "0.1", "0.001", "0.001", margin_init="0.02", margin_maint="0.01"),
        _perp("kraken", "SOL", "USD", "0.01", "0.01", "0.01", margin_init="0.02", margin_maint="0.01"),
    ],
)

VENUES: Mapping[str, VenueSpec] = MappingProxyType({v.name: v for v in (BINANCE, BYBIT, OKX, HYPERLIQUID, KRAKEN)})


def venue_spec(venue: str) -> VenueSpec:
    """Return the spec of a store venue (``binance``).

    Raises
    ------
    UnknownVenueError
        If the venue has no entry; the message lists the known venues.
    """
    try:
        return VENUES[venue]
    except KeyError:
        raise UnknownVenueError(
            f"no spec for venue {venue!r}: known venues are {', '.join(VENUES)}; add it to datasets/venues.py"
        ) from None


def instrument_spec(venue: str, symbol: str) -> InstrumentSpec:
    """Return the instrument spec of a canonical symbol on a venue.

    Raises
    ------
    UnknownVenueError
        If the venue has no entry.
    UnknownInstrumentError
        If the venue has no spec for the symbol; the message lists the venue's known symbols.
    """
    spec = venue_spec(venue)
    try:
        return spec.instruments[symbol]
    except KeyError:
        raise UnknownInstrumentError(
            f"no instrument spec for {symbol!r} on {venue}: known symbols are {', '.join(spec.instruments)}; "
            "add it to datasets/venues.py"
        ) from None


def instrument_id_for(venue: str, symbol: str) -> InstrumentId:
    """Return the Nautilus ``InstrumentId`` of a canonical symbol, as the venue's live adapter names it.

    Raises
    ------
    UnknownVenueError
        If the venue has no entry.
    UnknownInstrumentError
        If the venue has no spec for the symbol.
    """
    spec = instrument_spec(venue, symbol)
    return instrument_id_from_parts(venue, spec.base, spec.quote, spec.market)


def instrument_id_from_parts(venue: str, base: str, quote: str, market: Market) -> InstrumentId:
    """Return the Nautilus ``InstrumentId`` of any base/quote pair on a venue's market, by the adapters' rules.

    ``instrument_id_for`` applies the same rules to the symbols this module has specs for; this one
    serves every instrument a venue lists (``datasets.acquire.instruments``).

    Raises
    ------
    UnknownVenueError
        If the venue has no entry or no id rule.
    """
    perp = market == "perp"
    match venue:
        case "binance":
            native = f"{base}{quote}-PERP" if perp else f"{base}{quote}"
        case "bybit":
            native = f"{base}{quote}-LINEAR" if perp else f"{base}{quote}-SPOT"
        case "okx":
            native = f"{base}-{quote}-SWAP" if perp else f"{base}-{quote}"
        case "hyperliquid":
            # The adapter names perps -USD-PERP whatever their collateral (USDC); spot pairs end in -SPOT.
            native = f"{base}-USD-PERP" if perp else f"{base}-{quote}-SPOT"
        case "kraken":
            native = f"PF_{_kraken_futures_code(base)}{quote}" if perp else f"{base}/{quote}"
        case _:
            raise UnknownVenueError(f"no instrument id rule for venue {venue!r}; add one to instrument_id_for")
    return InstrumentId.from_str(f"{native}.{venue_spec(venue).nautilus_venue}")


def raw_symbol_for(venue: str, symbol: str) -> str:
    """Return the venue's own name of a canonical symbol (what its REST API calls the instrument).

    Raises
    ------
    UnknownVenueError
        If the venue has no entry.
    UnknownInstrumentError
        If the venue has no spec for the symbol.
    """
    spec = instrument_spec(venue, symbol)
    if venue == "okx":
        return f"{spec.base}-{spec.quote}-SWAP" if spec.market == "perp" else f"{spec.base}-{spec.quote}"
    if venue == "hyperliquid":
        return spec.base
    if venue == "kraken":
        code = _kraken_futures_code(spec.base)
        return f"PF_{code}{spec.quote}" if spec.market == "perp" else f"{code}{spec.quote}"
    return f"{spec.base}{spec.quote}"


def _kraken_futures_code(base: str) -> str:
    return {"BTC": "XBT"}.get(base, base)


# ------------------------------------------------------------------------------------ data registry
@dataclass(frozen=True, slots=True)
class FundingClock:
    """When a venue settles funding, how far a published stamp may stray from it, and its rate cap.

    Attributes
    ----------
    grid_secs : int
        Every settlement lies on a multiple of this many seconds from 00:00 UTC (3600: on the hour;
        8-hourly symbols settle on the same grid at 00/08/16).
    early_secs, late_secs : int
        Jitter: a stamp up to ``early_secs`` before or ``late_secs`` after a grid point is that
        settlement (snapped to it); anything further off is refused as off-clock.
    rate_cap : Decimal
        Largest ``|rate|`` the venue publishes, per settlement or per hour (``cap_basis``).
    cap_basis : str
        ``"settlement"`` (the cap holds per settlement whatever its interval) or ``"hour"`` (the cap
        scales with the interval's hours).
    """

    grid_secs: int
    early_secs: int
    late_secs: int
    rate_cap: Decimal
    cap_basis: str

    def cap_for(self, interval: str) -> Decimal:
        """Return the largest ``|rate|`` accepted for one settlement of ``interval`` (``"8h"``)."""
        if self.cap_basis == "hour":
            return self.rate_cap * Decimal(interval_secs(interval)) / Decimal(3_600)
        return self.rate_cap


@dataclass(frozen=True, slots=True)
class DataVenue:
    """A venue the store accepts data for: when it opened (per market) and its funding clock.

    A store venue exists only through an entry here; ``--venue`` and every write are checked against
    this table, so a typo never creates a partition.
    """

    name: str
    spot_launch: date | None
    perp_launch: date | None
    funding: FundingClock
    source: str

    def launch(self, market: str | None) -> date:
        """Return the first day data of ``market`` (``spot``/``perp``; None: either) can exist."""
        dates = {"spot": self.spot_launch, "perp": self.perp_launch}
        if market in dates and dates[market] is not None:
            return dates[market]  # type: ignore[return-value]
        return min(d for d in dates.values() if d is not None)


# The genesis block of Bitcoin: no crypto market data is older. Used where a venue has no date for a market.
EARLIEST_DATA = date(2009, 1, 3)
# Funding stamps: CEXs publish settlement times with millisecond jitter (freqtrade's Binance files:
# at most 16 ms); one minute either side is generous and still refuses a stamp like 16:17:33.
_CEX_JITTER_SECS = 60
# Conservative bound on |rate| per settlement for Binance, Bybit and OKX: their caps are per symbol,
# a few percent at most (Binance's clamp at 20x max leverage is 3.75%; Nautilus' Binance sample payload
# in ../shared/data holds a -0.0375 settlement; the freqtrade data peaks at 0.375%). 4% holds all of them.
# Data beyond it is refused unless imported with --allow-extreme.
_CEX_CAP = Decimal("0.04")
_SOURCE = "launch dates from the venue's public announcements, as of the author's knowledge (mid 2025); not fetched"

DATA_VENUES: Mapping[str, DataVenue] = MappingProxyType(
    {
        v.name: v
        for v in (
            # Binance spot opened 2017-07-14; the first USD-M perpetual (BTCUSDT) listed 2019-09-08.
            DataVenue(
                "binance",
                date(2017, 7, 14),
                date(2019, 9, 8),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, _CEX_CAP, "settlement"),
                _SOURCE,
            ),
            # Bybit opened with inverse perpetuals in 2018 (USDT perps 2020-03); spot from 2021-07.
            DataVenue(
                "bybit",
                date(2021, 7, 1),
                date(2018, 1, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, _CEX_CAP, "settlement"),
                _SOURCE,
            ),
            # OKX (then OKEx) spot from 2017; perpetual swaps from 2018-12-11.
            DataVenue(
                "okx",
                date(2017, 1, 1),
                date(2018, 12, 11),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, _CEX_CAP, "settlement"),
                _SOURCE,
            ),
            # Hyperliquid perps: first markets mid 2022 (the shared 8h mark candles start 2022-06-16),
            # its own L1 mainnet 2023; spot from 2024-03. Funding is
            # capped at 4% an hour (its docs). Its own fundingHistory has settlements published late
            # (23m53s after 2023-05-23 08:00, 14m48s after 2025-07-19 10:00): 25 minutes late still
            # snaps to the settlement, as the rate is that hour's.
            DataVenue(
                "hyperliquid",
                date(2024, 3, 1),
                date(2022, 6, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, 25 * 60, Decimal("0.04"), "hour"),
                _SOURCE,
            ),
            # Kraken spot from 2013-09-10; Kraken Futures (Crypto Facilities) perpetuals from 2018.
            # No published funding cap known to the author: the CEX bound applies.
            DataVenue(
                "kraken",
                date(2013, 9, 10),
                date(2018, 1, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, _CEX_CAP, "settlement"),
                _SOURCE,
            ),
            # The Solana chain (on-chain liquidations of Kamino, marginfi, Drift: datasets.onchain): mainnet
            # beta from 2020-03-16 (lending, spot-like); Drift v1 perps from 2021-11. No funding is fetched
            # from it; the clock (hourly, as Drift settles) and the CEX bound only keep the entry complete.
            DataVenue(
                "solana",
                date(2020, 3, 16),
                date(2021, 11, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, _CEX_CAP, "settlement"),
                _SOURCE,
            ),
        )
    }
)


def data_venue(name: str) -> DataVenue:
    """Return the registry entry of a store venue.

    Raises
    ------
    UnknownVenueError
        If there is none; the message suggests the closest known name (a typo) and says how to add one.
    """
    try:
        return DATA_VENUES[name]
    except KeyError:
        raise UnknownVenueError(unknown_venue_message(name)) from None


def unknown_venue_message(name: str) -> str:
    """Return what to tell a user about a venue name the registry does not hold."""
    close = difflib.get_close_matches(name.lower(), list(DATA_VENUES), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"expected a known venue ({', '.join(DATA_VENUES)}), was {name!r}: {hint}"
        "a new venue is added deliberately, with an entry in DATA_VENUES in datasets/venues.py"
    )

"""Static facts about the venues we trade: Nautilus names, fee schedules, funding clocks and id rules.

Venue-level facts only. Instrument specs (tick, lot, margins, multiplier) are data: they come into the
store's ``instruments`` kind from the venues (``python -m datasets fetch --kind instruments --venue V``)
or from a table (``python -m datasets import FILE``), and the catalog export builds the Nautilus
instruments from them (``datasets.instruments``, ``datasets.catalog``).

The fee schedules are each venue's public base tier, typed from its pages **as of the author's
knowledge (mid 2025)**; none was fetched (the venues serve fees on private endpoints only). Re-check them
against the venue before trusting a backtest's costs or going live; the catalog's ``venues.json`` carries
them to the engine.

Instrument ids follow the conventions of Nautilus' own live adapters (read in the adapters' Rust
source, nautilus_trader@a95c8042), so a strategy config written against a backtest catalog runs live
unchanged; the rules live in ``instrument_id_from_parts``:

=============  ============================  ===============================
venue          spot                          perpetual
=============  ============================  ===============================
binance        ``BTCUSDT.BINANCE``           ``BTCUSDT-PERP.BINANCE``
bybit          ``BTCUSDT-SPOT.BYBIT``        ``BTCUSDT-LINEAR.BYBIT``
okx            ``BTC-USDT.OKX``              ``BTC-USDT-SWAP.OKX``
hyperliquid    ``BTC-USDC-SPOT.HYPERLIQUID`` ``BTC-USD-PERP.HYPERLIQUID``
kraken         ``BTC/USD.KRAKEN``            ``PF_XBTUSD.KRAKEN``
=============  ============================  ===============================

One deliberate difference: Hyperliquid perps keep the adapter's ``-USD-PERP`` id but quote in USDC, the
currency they are margined in (a backtest USDC account cannot price USD margin without FX quotes).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from nautilus_trader.model import InstrumentId

from datasets.errors import DatasetError
from datasets.schemas import interval_secs
from datasets.symbols import PERP_SUFFIX, Market, market_of


class UnknownVenueError(DatasetError):
    """A venue has no entry in ``datasets.venues.VENUES``."""


class UnknownInstrumentError(DatasetError):
    """A symbol is not a canonical ``BASE-QUOTE[-PERP]`` symbol, or the store has no spec of it."""


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee rates (fractions of notional) of one product line of a venue."""

    maker: Decimal
    taker: Decimal
    schedule: str
    as_of: str


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """One venue: its Nautilus name, fee schedules and funding clock."""

    name: str
    nautilus_venue: str
    perp_fees: FeeSchedule
    spot_fees: FeeSchedule
    funding_interval: str

    def fees(self, market: Market) -> FeeSchedule:
        """Return the fee schedule of a market (``spot`` or ``perp``)."""
        return self.perp_fees if market == "perp" else self.spot_fees

    @property
    def funding_interval_minutes(self) -> int:
        return interval_secs(self.funding_interval) // 60


def _d(text: str) -> Decimal:
    return Decimal(text)


AS_OF = "2025-06 (author's knowledge, not fetched: re-check)"

# Binance. Fees: binance.com/en/fee/schedule, Regular user (VIP 0), no BNB discount: spot 0.1000% /
# 0.1000%; USD-M futures 0.0200% maker / 0.0500% taker. Funding every 8 h (00/08/16 UTC) on most symbols.
BINANCE = VenueSpec(
    "binance",
    "BINANCE",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "Binance USD-M futures, Regular user VIP 0", AS_OF),
    spot_fees=FeeSchedule(_d("0.001"), _d("0.001"), "Binance spot, Regular user VIP 0, no BNB discount", AS_OF),
    funding_interval="8h",
)

# Bybit. Fees: bybit.com/en/help-center fee rates, non-VIP: spot 0.1000% / 0.1000%; perpetual and
# futures contracts 0.0200% maker / 0.0550% taker. Funding every 8 h on most symbols.
BYBIT = VenueSpec(
    "bybit",
    "BYBIT",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.00055"), "Bybit derivatives, non-VIP", AS_OF),
    spot_fees=FeeSchedule(_d("0.001"), _d("0.001"), "Bybit spot, non-VIP", AS_OF),
    funding_interval="8h",
)

# OKX. Fees: okx.com/fees, Regular user Lv1: spot 0.080% maker / 0.100% taker; USDT-margined swaps
# 0.020% / 0.050%. Funding every 8 h on most swaps; swaps trade in contracts of ctVal base units.
OKX = VenueSpec(
    "okx",
    "OKX",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "OKX USDT-margined swaps, Regular user Lv1", AS_OF),
    spot_fees=FeeSchedule(_d("0.0008"), _d("0.001"), "OKX spot, Regular user Lv1", AS_OF),
    funding_interval="8h",
)

# Hyperliquid. Fees: hyperliquid.gitbook.io docs "Fees", tier 0 (<= $5M 14-day volume): perps 0.015%
# maker / 0.045% taker; spot 0.040% / 0.070%. Funding every hour (8-hourly before 2023-06-08; the store
# carries each settlement's own interval). Perps are margined and settled in USDC.
HYPERLIQUID = VenueSpec(
    "hyperliquid",
    "HYPERLIQUID",
    perp_fees=FeeSchedule(_d("0.00015"), _d("0.00045"), "Hyperliquid perps, tier 0", AS_OF),
    spot_fees=FeeSchedule(_d("0.0004"), _d("0.0007"), "Hyperliquid spot, tier 0", AS_OF),
    funding_interval="1h",
)

# Kraken. Fees: kraken.com/features/fee-schedule, Kraken Pro spot, $0-10k 30-day volume: 0.25% maker /
# 0.40% taker; Kraken Futures 0.02% / 0.05%. Perpetuals (``PF_``, multi-collateral, USD-settled) fund
# every hour.
KRAKEN = VenueSpec(
    "kraken",
    "KRAKEN",
    perp_fees=FeeSchedule(_d("0.0002"), _d("0.0005"), "Kraken Futures, base tier", AS_OF),
    spot_fees=FeeSchedule(_d("0.0025"), _d("0.004"), "Kraken Pro spot, $0-10k 30-day volume", AS_OF),
    funding_interval="1h",
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


def split_symbol(symbol: str) -> tuple[str, str, Market]:
    """Return the base, quote and market of a canonical symbol (``BTC-USDT-PERP -> BTC, USDT, perp``).

    Raises
    ------
    UnknownInstrumentError
        If the symbol is not ``BASE-QUOTE`` or ``BASE-QUOTE-PERP``.
    """
    market = market_of(symbol)
    parts = symbol.removesuffix(PERP_SUFFIX).split("-")
    if len(parts) != 2 or not all(parts):
        raise UnknownInstrumentError(
            f"expected a canonical symbol BASE-QUOTE or BASE-QUOTE-PERP (BTC-USDT-PERP), was {symbol!r}"
        )
    return parts[0], parts[1], market


def instrument_id_for(venue: str, symbol: str) -> InstrumentId:
    """Return the Nautilus ``InstrumentId`` of a canonical symbol, as the venue's live adapter names it.

    Raises
    ------
    UnknownVenueError
        If the venue has no entry.
    UnknownInstrumentError
        If the symbol is not canonical.
    """
    base, quote, market = split_symbol(symbol)
    return instrument_id_from_parts(venue, base, quote, market)


def instrument_id_from_parts(venue: str, base: str, quote: str, market: Market) -> InstrumentId:
    """Return the Nautilus ``InstrumentId`` of any base/quote pair on a venue's market, by the adapters' rules.

    Raises
    ------
    UnknownVenueError
        If the venue has no entry or no id rule.
    """
    nautilus_venue = venue_spec(venue).nautilus_venue
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
            raise UnknownVenueError(f"no instrument id rule for venue {venue!r}; add one to instrument_id_from_parts")
    return InstrumentId.from_str(f"{native}.{nautilus_venue}")


def raw_symbol_for(venue: str, symbol: str) -> str:
    """Return the venue's own name of a canonical symbol (what its REST API calls the instrument).

    Raises
    ------
    UnknownInstrumentError
        If the symbol is not canonical.
    """
    base, quote, market = split_symbol(symbol)
    if venue == "okx":
        return f"{base}-{quote}-SWAP" if market == "perp" else f"{base}-{quote}"
    if venue == "hyperliquid":
        return base
    if venue == "kraken":
        code = _kraken_futures_code(base)
        return f"PF_{code}{quote}" if market == "perp" else f"{code}{quote}"
    return f"{base}{quote}"


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
    # Funding for research only: no Nautilus adapter or instrument specs, so no backtest or live venue.
    research_only: bool = False

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
            # Research-only funding venues (datasets/importers/{dydx,drift,lighter}.py): hourly funding,
            # no adapter mapping. dYdX v4 mainnet from 2023-10-26 (its indexer stamps ms after the hour).
            # Drift v2 perps from 2022-12 (a FundingRateRecord is stamped when a keeper cranks the update,
            # minutes after the hour: the real mainnet record in ../shared/data is 115 s late; 30 minutes
            # late still is that hour's). Lighter mainnet from 2025-01 (settlements on the hour, clamped at
            # 0.5 %/h by its docs). No cap known for dYdX and Drift: Hyperliquid's 4 %/h bounds all three.
            DataVenue(
                "dydx",
                None,
                date(2023, 10, 26),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, Decimal("0.04"), "hour"),
                _SOURCE,
                research_only=True,
            ),
            DataVenue(
                "drift",
                None,
                date(2022, 12, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, 30 * 60, Decimal("0.04"), "hour"),
                _SOURCE,
                research_only=True,
            ),
            DataVenue(
                "lighter",
                None,
                date(2025, 1, 1),
                FundingClock(3_600, _CEX_JITTER_SECS, _CEX_JITTER_SECS, Decimal("0.04"), "hour"),
                _SOURCE,
                research_only=True,
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

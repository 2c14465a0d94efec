"""One symbol form across venues: ``BTC-USDT`` (spot) and ``BTC-USDT-PERP`` (perpetual swap).

Venue-native names are translated here and nowhere else.
"""

from __future__ import annotations

from typing import Literal

from datasets.errors import SourceFormatError

Market = Literal["spot", "perp"]

PERP_SUFFIX = "-PERP"
# Longest first, so "FDUSD" wins over "USD" and "USDT" over "USD".
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB")
ALIASES = {"XBT": "BTC"}
KRAKEN_QUOTES = ("USDT", "USDC", "USD", "EUR")
HYPERLIQUID_QUOTE = "USDC"


def canonical(base: str, quote: str, market: Market) -> str:
    """Return the canonical symbol of a base/quote pair on a market (``BTC, USDT, perp -> BTC-USDT-PERP``)."""
    base = ALIASES.get(base.upper(), base.upper())
    quote = ALIASES.get(quote.upper(), quote.upper())
    return f"{base}-{quote}{PERP_SUFFIX if market == 'perp' else ''}"


def market_of(symbol: str) -> Market:
    """Return ``perp`` for ``...-PERP`` symbols, else ``spot``."""
    return "perp" if symbol.endswith(PERP_SUFFIX) else "spot"


def split_concatenated(raw: str, quotes: tuple[str, ...] = QUOTES) -> tuple[str, str]:
    """Split an exchange ticker without separator (``BTCUSDT``, ``1000BONKUSDT``) into base and quote.

    Raises
    ------
    SourceFormatError
        If no known quote currency ends the ticker.
    """
    upper = raw.upper()
    for quote in quotes:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    raise SourceFormatError(f"cannot split ticker {raw!r} into base and quote: it ends in none of {', '.join(quotes)}")


def from_freqtrade_pair(pair: str) -> str:
    """Translate a freqtrade file pair (``BTC_USDT`` spot, ``BTC_USDT_USDT`` perp) to the canonical symbol.

    Raises
    ------
    SourceFormatError
        If the pair has neither two nor three parts.
    """
    parts = pair.split("_")
    if len(parts) == 2:
        return canonical(parts[0], parts[1], "spot")
    if len(parts) == 3:
        return canonical(parts[0], parts[1], "perp")
    raise SourceFormatError(f"freqtrade pair {pair!r} should look like BASE_QUOTE (spot) or BASE_QUOTE_SETTLE (perp)")


def from_venue(venue: str, raw: str, market: Market = "perp") -> str:
    """Translate a venue's own instrument name to the canonical symbol.

    ``binance``/``bybit`` ``BTCUSDT``; ``okx`` ``BTC-USDT-SWAP`` or ``BTC-USDT``; ``hyperliquid`` ``BTC``
    (perps settle in USDC); ``kraken`` futures ``PF_XBTUSD``.

    Raises
    ------
    SourceFormatError
        If the name does not fit the venue's convention.
    """
    if venue == "okx":
        parts = raw.upper().split("-")
        if len(parts) == 3 and parts[2] == "SWAP":
            return canonical(parts[0], parts[1], "perp")
        if len(parts) == 2:
            return canonical(parts[0], parts[1], market)
        raise SourceFormatError(f"OKX instrument {raw!r} should look like BTC-USDT-SWAP or BTC-USDT")
    if venue == "hyperliquid":
        return canonical(raw, HYPERLIQUID_QUOTE, market)
    if venue == "kraken":
        upper = raw.upper()
        if upper.startswith(("PF_", "PI_")):
            base, quote = split_concatenated(upper[3:], KRAKEN_QUOTES)
            return canonical(base, quote, "perp")
        base, quote = split_concatenated(upper.replace("/", ""), KRAKEN_QUOTES)
        return canonical(base, quote, market)
    base, quote = split_concatenated(raw)
    return canonical(base, quote, market)

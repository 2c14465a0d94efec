"""Mint -> symbol and decimals, and Drift market indices -> symbols, each row with its source.

Symbols follow the store's form (upper case, ``datasets.schemas.SYMBOL_PATTERN``): ``JITOSOL``, not
``jitoSOL``. A transaction's own ``pre``/``postTokenBalances`` state the decimals of the mints it moves;
``MintTable.decimals`` prefers the table and falls back to those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

_DRIFT_SPOT = "drift-labs/protocol-v2@03010fd3 sdk/src/constants/spotMarkets.ts (MainnetSpotMarkets)"
_DRIFT_PERP = "drift-labs/protocol-v2 sdk/src/constants/perpMarkets.ts (MainnetPerpMarkets: marketIndex, symbol)"
_GOLDEN = "decimals also stated by marginfi_decoded_events.json (CarmineOptions/derisk-solana), ../shared/data"


@dataclass(frozen=True, slots=True)
class MintInfo:
    """One mint's symbol and decimals, and where they come from."""

    mint: str
    symbol: str
    decimals: int
    source: str


# (mint, symbol, decimals, Drift spot market index or None, source)
_MINTS: tuple[tuple[str, str, int, int | None, str], ...] = (
    ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "USDC", 6, 0, f"{_DRIFT_SPOT}; {_GOLDEN}"),
    ("So11111111111111111111111111111111111111112", "SOL", 9, 1, f"{_DRIFT_SPOT}; {_GOLDEN}"),
    ("mSoLzYCxHdYgdzU16g5QSh3i5K3z3KZK7ytfqcJm7So", "MSOL", 9, 2, _DRIFT_SPOT),
    ("3NZ9JMVBmGAqocybic2c7LQCJScmgsAZ6vQqTDzcqmJh", "WBTC", 8, 3, _DRIFT_SPOT),
    ("7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs", "WETH", 8, 4, _DRIFT_SPOT),
    ("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", "USDT", 6, 5, _DRIFT_SPOT),
    ("J1toso1uCk3RLmjorhTtrVwY9HJ7X8V9yYac6Y7kGCPn", "JITOSOL", 9, 6, f"{_DRIFT_SPOT}; {_GOLDEN}"),
    ("HZ1JovNiVvGrGNiiYvEozEVgZ58xaU3RKwX8eACQBCt3", "PYTH", 6, 7, _DRIFT_SPOT),
    ("bSo13r4TkiE4KumL71LsHTPpL2euBYLFx6h9HP3piy1", "BSOL", 9, 8, _DRIFT_SPOT),
    ("jtojtomepa8beP8AuQc6eXt5FriJwfFMwQx2v2f9mCL", "JTO", 9, 9, _DRIFT_SPOT),
    ("EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", "WIF", 6, 10, _DRIFT_SPOT),
    ("JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", "JUP", 6, 11, _DRIFT_SPOT),
    ("rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof", "RNDR", 8, 12, _DRIFT_SPOT),
    ("85VBFQZC9TZkfaptBWjvUw7YbZjy52A6mjtPGjstQAmQ", "W", 6, 13, _DRIFT_SPOT),
    ("TNSRxcUxoT9xBG3de7PiJyTDYu7kskLqcpddxnEJAS6", "TNSR", 9, 14, _DRIFT_SPOT),
    ("DriFtupJYLTosbwoN8koMbEYSx54aFAVLddWsbksjwg7", "DRIFT", 6, 15, _DRIFT_SPOT),
    ("5oVNBeEEQvYi1cX3ir8Dx5n1P7pdxydbGF2X4TxVusJm", "INF", 9, 16, _DRIFT_SPOT),
    ("Dso1bDeDjCQxTrWHqUUi63oBvV7Mdm6WaobLbQ7gnPQ", "DSOL", 9, 17, _DRIFT_SPOT),
    ("A1KLoBrKBde8Ty9qtNQUtq3C2ortoC3u7twggz7sEto6", "USDY", 6, 18, _DRIFT_SPOT),
)

DRIFT_PERP_MARKETS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {0: ("SOL", _DRIFT_PERP), 1: ("BTC", _DRIFT_PERP), 2: ("ETH", _DRIFT_PERP), 3: ("APT", _DRIFT_PERP)}
)
# Drift quotes every perp and spot price in USD with this many decimals (PRICE_PRECISION = 1e6).
DRIFT_PRICE_DECIMALS = 6
DRIFT_QUOTE_DECIMALS = 6
# Stablecoins quote a pair before anything else, then SOL: ``SOL-USDC``, ``JITOSOL-SOL``.
QUOTE_PRIORITY = ("USDC", "USDT", "USDY", "SOL")


class MintTable:
    """Mint -> ``MintInfo`` with Drift spot market indices, from rows that each name their source.

    Parameters
    ----------
    mints : Iterable[MintInfo]
        The known mints.
    drift_spot_markets : Mapping[int, str], optional
        Drift spot market index -> mint.
    """

    def __init__(self, mints: Iterable[MintInfo], *, drift_spot_markets: Mapping[int, str] | None = None) -> None:
        self._mints = {info.mint: info for info in mints}
        self._drift_spot = dict(drift_spot_markets or {})

    @classmethod
    def default(cls) -> MintTable:
        """Return the built-in table (Drift mainnet spot markets 0-18, which cover the golden marginfi mints)."""
        infos = [MintInfo(mint, symbol, decimals, source) for mint, symbol, decimals, _, source in _MINTS]
        spot = {index: mint for mint, _, _, index, _ in _MINTS if index is not None}
        return cls(infos, drift_spot_markets=spot)

    def get(self, mint: str) -> MintInfo | None:
        """Return what the table knows of ``mint``, or ``None``."""
        return self._mints.get(mint)

    def drift_spot_mint(self, market_index: int) -> str | None:
        """Return the mint of a Drift spot market index, or ``None`` when the table lacks it."""
        return self._drift_spot.get(market_index)

    def __len__(self) -> int:
        return len(self._mints)


def pair_symbol(first: str, second: str) -> tuple[str, str, bool]:
    """Return ``(base, quote, swapped)`` for two asset symbols: the one earlier in ``QUOTE_PRIORITY`` quotes."""
    rank = {symbol: i for i, symbol in enumerate(QUOTE_PRIORITY)}
    first_rank, second_rank = rank.get(first, len(rank)), rank.get(second, len(rank))
    if second_rank <= first_rank:
        return first, second, False
    return second, first, True

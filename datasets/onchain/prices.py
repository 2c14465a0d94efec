"""USD prices of mints, each with its source: what turns raw liquidation amounts into ``notional_usd``.

A ``PriceTable`` maps a mint to a ``MintPrice`` (exact decimal USD price and where it comes from). It is
built from a CSV the user declares (``fetch-onchain --prices FILE``; header ``mint,price_usd,source``,
one mint a row), or from oracle accounts: a Pyth v2 price account (``price_from_pyth``), a Kamino
reserve's cached ``market_price_sf`` or a marginfi bank's cached ``last_oracle_price``. A table holds one
price per mint, so a price read at another time than a liquidation's is an approximation the
``price_source`` column of the extras row states.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from datasets.onchain.errors import InputFileError

PRICE_COLUMNS = ("mint", "price_usd", "source")


class PriceTableError(InputFileError):
    """A price table file cannot be read, or one of its rows is not a mint, a positive price and a source."""


@dataclass(frozen=True, slots=True)
class MintPrice:
    """One mint's USD price and where it comes from."""

    mint: str
    price_usd: Decimal
    source: str


class PriceTable(Mapping[str, MintPrice]):
    """Mint -> ``MintPrice``.

    Parameters
    ----------
    prices : Iterable[MintPrice]
        One price per mint; a later entry of the same mint replaces an earlier one.
    """

    def __init__(self, prices: Iterable[MintPrice] = ()) -> None:
        self._prices = {price.mint: price for price in prices}

    def __getitem__(self, mint: str) -> MintPrice:
        return self._prices[mint]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def usd(self, mint: str) -> Decimal | None:
        """Return the USD price of ``mint``, or ``None`` when the table lacks it."""
        price = self._prices.get(mint)
        return None if price is None else price.price_usd

    def merged(self, other: Iterable[MintPrice]) -> PriceTable:
        """Return this table with ``other``'s prices added; this table's own entries win."""
        return PriceTable([*other, *self._prices.values()])


def load_prices(path: Path) -> PriceTable:
    """Read a price table CSV (``mint,price_usd,source``; prices as decimal text, e.g. ``150.25``).

    Raises
    ------
    PriceTableError
        If the file cannot be read, its header is not ``mint,price_usd,source``, or a row has an empty
        mint or source, a price that is not a positive decimal, or a mint already listed.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise PriceTableError(f"{path}: expected a readable price table CSV, was {error.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != PRICE_COLUMNS:
        raise PriceTableError(
            f"{path}: expected the header {','.join(PRICE_COLUMNS)}, was {','.join(reader.fieldnames or ())!r}"
        )
    prices: dict[str, MintPrice] = {}
    for row_number, row in enumerate(reader, start=2):
        mint, text_price, source = (str(row.get(name) or "").strip() for name in PRICE_COLUMNS)
        where = f"{path} row {row_number}"
        if not mint or not source:
            raise PriceTableError(f"{where}: mint and source must be set, were {mint!r} and {source!r}")
        try:
            price = Decimal(text_price)
        except InvalidOperation:
            price = Decimal("NaN")
        if not price.is_finite() or price <= 0:
            raise PriceTableError(f"{where} field price_usd: expected a positive decimal, was {text_price!r}")
        if mint in prices:
            raise PriceTableError(f"{where} field mint: {mint} is listed twice; keep one price per mint")
        prices[mint] = MintPrice(mint, price, source)
    return PriceTable(prices.values())

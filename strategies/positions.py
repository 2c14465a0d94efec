"""Exact position arithmetic from fills: Nautilus keeps a position's average price as a binary float.

``average_open_price`` replays a position's fills the way Nautilus nets them (adding to a position
re-weights the average, reducing leaves it, crossing through flat restarts it at the fill price), in
``Decimal``, so marks, unrealised PnL and saved states never pass a price through a float.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any


def average_open_price(fills: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """Return the average opening price after ``(signed quantity, price)`` fills, in order (0 when flat)."""
    size, average = Decimal(0), Decimal(0)
    for quantity, price in fills:
        after = size + quantity
        if size == 0 or (after != 0 and (after > 0) != (size > 0)):
            average = price if after != 0 else Decimal(0)
        elif abs(after) > abs(size):
            average = (average * abs(size) + price * abs(quantity)) / abs(after)
        elif after == 0:
            average = Decimal(0)
        size = after
    return average


def position_fills(position: Any) -> list[tuple[Decimal, Decimal]]:
    """Return ``(signed quantity, price)`` of every fill of a Nautilus ``Position``, in order."""
    fills = []
    for fill in position.events():
        quantity = fill.last_qty.as_decimal()
        fills.append((quantity if fill.order_side.name == "BUY" else -quantity, fill.last_px.as_decimal()))
    return fills


class OpenPrices:
    """Exact average opening prices of Nautilus positions, recomputed only when a position has a new fill."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, Decimal]] = {}

    def of(self, position: Any) -> Decimal:
        """Return the exact average opening price of ``position``."""
        key, count = str(position.id), position.event_count
        known = self._cache.get(key)
        if known is not None and known[0] == count:
            return known[1]
        price = average_open_price(position_fills(position))
        self._cache[key] = (count, price)
        return price

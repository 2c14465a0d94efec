"""The fill model: market orders fill at the last price the strategy saw, moved by a fixed slippage.

Bars reach the engine one nanosecond after they close (``engine.data``), so when a strategy reacts
to a bar, the simulated book holds that bar's close and nothing later. A market order then fills in
full at ``close * (1 + slippage_bps / 10_000)`` when buying and ``close * (1 - slippage_bps / 10_000)``
when selling, rounded to the tick against the taker. Other order types keep Nautilus' bar matching:
a resting limit order fills at its own price once a later bar trades through it.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from nautilus_trader.execution import FillModel
from nautilus_trader.model import BookOrder, BookType, OrderBook, OrderSide, OrderType, Price, Quantity

BPS = Decimal(10_000)
# Enough size that one order never walks past the slipped level.
UNLIMITED_SIZE = "1000000000"


def describe_fill_model(slippage_bps: Decimal) -> str:
    """Return the one-paragraph statement of the fill model printed in every report."""
    return (
        "Bars are stamped at their close and delivered 1 ns later, so a strategy only ever sees closed bars. "
        f"Market orders fill in full at the last close seen, {slippage_bps} bps against the taker "
        "(buys higher, sells lower), rounded to the tick against the taker; fees are charged as taker. "
        "Limit orders fill at their limit price once a later bar's range trades through it, as maker. "
        "Bar volume does not cap fill size."
    )


def slipped_price(reference: Decimal, increment: Decimal, *, side_is_buy: bool, slippage_bps: Decimal) -> Decimal:
    """Return ``reference`` moved ``slippage_bps`` against the taker and rounded to ``increment`` against it too."""
    factor = (BPS + slippage_bps) / BPS if side_is_buy else (BPS - slippage_bps) / BPS
    ticks = reference * factor / increment
    rounded = ticks.to_integral_value(rounding=ROUND_CEILING if side_is_buy else ROUND_FLOOR)
    return (rounded * increment).quantize(increment)


class SlippageFillModel(FillModel):  # type: ignore[misc]
    """Fill market orders at the last seen price plus ``slippage_bps`` against the taker.

    Parameters
    ----------
    slippage_bps : Decimal
        Basis points added to buys and taken from sells.
    """

    def __init__(self, slippage_bps: Decimal) -> None:
        self.slippage_bps = slippage_bps

    def is_limit_filled(self) -> bool:
        return True

    def is_slipped(self) -> bool:
        return False

    def fill_limit_inside_spread(self) -> bool:
        return False

    def get_orderbook_for_fill_simulation(
        self, instrument: Any, order: Any, best_bid: Price | None = None, best_ask: Price | None = None
    ) -> OrderBook | None:
        if order.order_type != OrderType.MARKET:
            return None
        increment = instrument.price_increment.as_decimal()
        book = OrderBook(instrument.id, BookType.L2_MBP)
        size = Quantity.from_str(UNLIMITED_SIZE)
        if best_ask is not None:
            price = slipped_price(best_ask.as_decimal(), increment, side_is_buy=True, slippage_bps=self.slippage_bps)
            book.add(BookOrder(OrderSide.SELL, Price.from_str(str(price)), size, 1), 0, 1, 0)
        if best_bid is not None:
            price = slipped_price(best_bid.as_decimal(), increment, side_is_buy=False, slippage_bps=self.slippage_bps)
            book.add(BookOrder(OrderSide.BUY, Price.from_str(str(price)), size, 2), 0, 2, 0)
        return book

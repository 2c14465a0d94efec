"""The float screens a decision uses to skip work: an equity estimate with an error bound, and ``QuietWindow``.

``strategies.risk.RiskManagedStrategy.quiet_window`` builds a window; ``is_quiet`` checks a later
decision against it, so a decision that would change nothing but a peak or a worst price skips the exact path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nautilus_trader.model import InstrumentId

from strategies.liquidation_price import LiquidationGuard

# (quantity, opened price, |quantity|, |quantity x opened price|) of one open position, in floats.
EstimateTerm = tuple[float, float, float, float]


PriceBounds = tuple[str, float, float, float, float]  # one instrument's ``QuietWindow.price_bounds``


def price_bounds(guard: LiquidationGuard, text: str, quiet: tuple[float, float]) -> PriceBounds:
    """Return the ``QuietWindow.price_bounds`` entry of ``text``: the worst price's bounds cut to ``quiet``, then it.

    ``quiet`` is ``LiquidationGuard.quiet_bounds`` of the instrument (the closes that reach no trigger).
    """
    worst_low, worst_high = guard.worst_bounds(text)
    low, high = quiet
    return text, max(worst_low, low), min(worst_high, high), low, high


def estimate_term(quantity: float, opened_price: float) -> EstimateTerm:
    """Return the ``estimate_equity`` term of a position of ``quantity`` base units opened at ``opened_price``."""
    return quantity, opened_price, abs(quantity), abs(quantity * opened_price)


def estimate_equity(base: float, terms: Sequence[EstimateTerm], prices: Sequence[float | None]) -> tuple[float, float]:
    """Return ``base + sum(quantity x (price - opened))`` in floats and a bound on its error.

    The bound is 1e-9 of the magnitudes summed (``|base|``, ``|quantity| x |price|``, ``|quantity x opened|``)
    plus 1e-9: the floats of the exact terms and the sum are good to ~1e-15 of them. A term whose price is
    None is left out (no price seen yet).
    """
    total = base
    size = abs(base)
    for (quantity, opened, magnitude, opened_magnitude), price in zip(terms, prices, strict=True):
        if price is None:
            continue
        total += quantity * (price - opened)
        size += magnitude * abs(price) + opened_magnitude
    return total, 1e-9 * size + 1e-9


@dataclass(slots=True)  # price_bounds change as a window tracks new worst prices
class QuietWindow:
    """Decisions that change no breaker, only a peak or a worst price (``RiskManagedStrategy.quiet_window``).

    Attributes
    ----------
    until_ns : int
        First clock time outside the window (the next UTC day or funding settlement).
    versions : tuple[int, int, int]
        The strategy's holdings, balances and events versions when it was built.
    instruments : tuple[InstrumentId, ...]
        The instruments whose bar closes the window depends on (the open positions').
    price_bounds : list[tuple[str, float, float, float, float]]
        Per instrument: its id's text; the lowest and highest float of its close that is neither a new
        worst price (``LiquidationGuard.worst_bounds``) nor near a liquidation trigger; and the lowest and
        highest that is not near a trigger (``LiquidationGuard.quiet_bounds``), the first pair inside the second.
    terms : tuple[EstimateTerm, ...], optional
        Per instrument, its ``estimate_equity`` term; None when the equity does not depend on prices (flat).
    base : float
        The balances of ``estimate_equity``.
    """

    until_ns: int
    versions: tuple[int, int, int]
    instruments: tuple[InstrumentId, ...]
    price_bounds: list[PriceBounds]
    terms: tuple[EstimateTerm, ...] | None
    base: float = 0.0

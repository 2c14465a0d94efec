"""The float screens a decision uses to skip work: an equity estimate with an error bound, and ``QuietWindow``.

``strategies.quiet_decisions.QuietDecisions.quiet_window`` builds a window; ``is_quiet`` checks a later
decision against it, so a decision that would change nothing but a peak or a worst price skips the exact path.
A window's ``FastScreen`` settles a decision: every leg's close inside a box and one weighted sum of the
closes inside an interval; a decision it does not settle is taken in full.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nautilus_trader.model import InstrumentId

from strategies.liquidation_price import LiquidationGuard
from strategies.risk_limits import RiskGate

# (quantity, opened price, |quantity|, |quantity x opened price|) of one open position, in floats.
EstimateTerm = tuple[float, float, float, float]


PriceBounds = tuple[str, float, float, float, float]  # one instrument's ``QuietWindow.price_bounds``
FastLeg = tuple[str, float, float, float, float, float, int]  # one leg of ``FastScreen.legs``
# How far (a fraction of itself) a close may move from where a FastScreen was built and stay in its box.
FAST_BOX = 0.5


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
    fast : FastScreen, optional
        What settles a decision at once (``fast_screen``); None when nothing does (every decision is taken in full).
    """

    until_ns: int
    versions: tuple[int, int, int]
    instruments: tuple[InstrumentId, ...]
    price_bounds: list[PriceBounds]
    terms: tuple[EstimateTerm, ...] | None
    base: float = 0.0
    fast: FastScreen | None = None


@dataclass(slots=True)  # boxes move as the window tracks a new worst price, the interval as it tracks a new peak
class FastScreen:
    """The quiet decisions one sum settles: each leg's close in its box, ``sum(quantity x close)`` in ``(low, high)``.

    ``legs`` holds per leg: its id's text; the lowest and highest close that is no new worst price; its
    quantity; the lowest and highest close of its outer box (near no trigger, within ``FAST_BOX`` of the
    close it was built at); its index in ``QuietWindow.price_bounds``. A close in the outer box but not
    the inner one may be a new worst price, which ``is_quiet`` records (``rebox``); a sum at or above
    ``high`` (below a ``low`` under it) may be a new peak and nothing else, which it records (``follow_peak``).
    ``error`` bounds the estimate's error over the outer boxes; the equity is ``constant + sum``. Built by
    ``fast_screen``; a decision it does not settle is taken in full.
    """

    legs: list[FastLeg]
    low: float
    high: float
    error: float = 0.0
    constant: float = 0.0

    def rebox(self, index: int, bounds: PriceBounds) -> None:
        """Cut leg ``index``'s inner box to its new ``QuietWindow.price_bounds`` entry (a new worst price seen)."""
        text, _, _, quantity, outer_low, outer_high, _ = self.legs[index]
        low, high = max(bounds[1], outer_low), min(bounds[2], outer_high)
        self.legs[index] = (text, low, high, quantity, outer_low, outer_high, index)

    def follow_peak(self, gate: RiskGate, now_ns: int) -> bool:
        """Move the interval to the gate's new peak; False if there is none now (``RiskGate.quiet_equity``)."""
        interval = _interval(gate, now_ns, self.error, self.constant)
        if interval is None:
            return False
        self.low, self.high = interval
        return True


def fast_screen(window: QuietWindow, gate: RiskGate, now_ns: int, prices: Sequence[float | None]) -> FastScreen | None:
    """Return the ``FastScreen`` of ``window`` around ``prices`` (the legs' closes now), or None if there is none.

    The equity estimate is linear in the closes: ``base + sum(q x (close - opened)) = constant + sum(q x close)``.
    Each leg's outer box is its quiet bounds (no trigger) cut to ``FAST_BOX`` of its close; over the boxes the
    estimate's error and magnitude are bounded, so one slack serves every decision (``RiskGate.quiet_equity``),
    plus one more error bound for the float sum computed in another order. Inside the boxes and the interval,
    ``screen_equity`` is ``"unchanged"`` and no leg reaches a trigger: the decision is quiet once a close
    outside its inner box is recorded as the leg's new worst price. At or above the interval (and above its
    low end) the screen can only be ``"peak"``.
    """
    closes = [price for price in prices if price is not None]
    if len(closes) != len(prices):
        return None
    terms = window.terms or tuple(estimate_term(0.0, 0.0) for _ in closes)  # flat: the equity moves with no close
    legs: list[FastLeg] = []
    magnitudes = []
    for index, (entry, price, term) in enumerate(zip(window.price_bounds, closes, terms, strict=True)):
        text, worst_low, worst_high, quiet_low, quiet_high = entry
        half = abs(price) * FAST_BOX
        outer_low, outer_high = max(quiet_low, price - half), min(quiet_high, price + half)
        if not outer_low <= price <= outer_high:
            return None
        legs.append(
            (text, max(worst_low, outer_low), min(worst_high, outer_high), term[0], outer_low, outer_high, index)
        )
        magnitudes.append(max(abs(outer_low), abs(outer_high)))
    if window.terms is None:
        return FastScreen(legs, -math.inf, math.inf)
    _, error = estimate_equity(window.base, window.terms, magnitudes)
    constant = window.base - sum(quantity * opened for quantity, opened, _, _ in window.terms)
    interval = _interval(gate, now_ns, error, constant)
    if interval is None:
        return None
    return FastScreen(legs, *interval, error=error, constant=constant)


def _interval(gate: RiskGate, now_ns: int, error: float, constant: float) -> tuple[float, float] | None:
    # error >= 1e-9 x |estimate| for every close in the boxes: 2 errors + 1e-9 |peak| bound the screen's
    # slack, one more the float sum's own rounding.
    bounds = gate.quiet_equity(now_ns, 3 * error + 1e-9 * abs(float(gate.peak_equity or 0)))
    if bounds is None:
        return None
    return bounds[0] - constant, bounds[1] - constant

"""The quiet path of ``RiskManagedStrategy``: the window in which a decision changes nothing but extremes.

``quiet_window`` is built after a decision ran ``check_equity`` and ``check_liquidation``; ``is_quiet``
settles a later decision against it with the window's ``FastScreen`` (``strategies.quiet_window``),
tracking a new peak equity or a new worst leg price exactly, as the full checks would. The equity
estimate ``check_equity`` screens with lives here too.

``QuietDecisions`` is a mixin of ``strategies.risk.RiskManagedStrategy``, which owns the state it reads
(declared below for the type checker).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from nautilus_trader.model import InstrumentId

from strategies.liquidation_price import LiquidationGuard
from strategies.quiet_window import (
    EstimateTerm,
    FastScreen,
    QuietWindow,
    estimate_equity,
    estimate_term,
    fast_screen,
    price_bounds,
)
from strategies.risk_limits import NS_PER_DAY, RiskGate

OpenPosition = tuple[InstrumentId, Decimal, Decimal, Decimal, str]  # (id, signed, opened, multiplier, venue)


class QuietDecisions:
    """Build and check quiet windows over ``RiskManagedStrategy``'s state."""

    # Owned and kept by RiskManagedStrategy (strategies/risk.py).
    clock: Any
    gate: RiskGate
    liquidation: LiquidationGuard
    latest_bars: dict[str, Any]
    holdings_version: int
    _last_price: dict[InstrumentId, Decimal]
    _balances: dict[str, Decimal] | None
    _balances_version: int
    _events_version: int
    _next_settlement_ns: int | None
    _flat_key: tuple[Any, ...] | None
    _liquidation_version: int | None
    _estimate_terms: tuple[object, list[InstrumentId], list[EstimateTerm]]
    _estimate_base: tuple[int, float]
    _now: Callable[[], int]
    _id_text: Callable[[InstrumentId], str]
    _open_positions: Callable[[], list[OpenPosition]]
    exact_equity: Callable[[], Decimal]

    def _equity_estimate(self) -> tuple[float, float]:
        # equity_by_venue in floats and a bound on its error (``estimate_equity``); the terms are
        # rebuilt when the open positions are.
        ids, terms = self._estimate_inputs()
        return estimate_equity(self._estimate_base[1], terms, self._estimate_prices(ids))

    def _estimate_prices(self, ids: Sequence[InstrumentId]) -> list[float | None]:
        # The float of each instrument's last close: from its Nautilus price while not converted yet.
        bars, prices = self.latest_bars, self._last_price
        floats: list[float | None] = []
        for instrument_id in ids:
            bar = bars.get(self._id_text(instrument_id))
            if bar is not None:
                floats.append(bar.close.as_double())
            else:
                floats.append(float(prices[instrument_id]) if instrument_id in prices else None)
        return floats

    def _estimate_inputs(self) -> tuple[list[InstrumentId], list[EstimateTerm]]:
        open_positions = self._open_positions()
        if self._estimate_terms[0] is not open_positions:
            ids, terms = [], []
            for instrument_id, signed, opened_at, multiplier, _ in open_positions:
                ids.append(instrument_id)
                terms.append(estimate_term(float(signed * multiplier), float(opened_at)))
            self._estimate_terms = (open_positions, ids, terms)
        if self._estimate_base[0] != self._balances_version:
            self._estimate_base = (self._balances_version, float(sum((self._balances or {}).values(), Decimal(0))))
        return self._estimate_terms[1], self._estimate_terms[2]

    def quiet_window(self, *, before_ns: int | None = None) -> QuietWindow | None:
        """Return when and at which prices ``check_equity`` and ``check_liquidation`` would change nothing but extremes.

        Called after a decision ran both: a later decision for which ``is_quiet`` holds (same UTC day,
        no funding settlement, update, fill, order or balance since, the equity estimate far from every
        breaker threshold by the window's ``FastScreen`` (``RiskGate.quiet_equity``), no leg near its
        liquidation trigger by ``LiquidationGuard.quiet_bounds``) would find nothing to update but a new
        peak equity or a new worst price, which ``is_quiet`` tracks exactly. None when no such window is
        known (halted, a leg's close not seen, ...). ``before_ns`` ends the window earlier (the caller's own
        next change, such as a funding book's settlement).
        """
        if self.gate.halted or self._balances is None:
            return None
        now = self.clock.timestamp_ns()
        until = (now // NS_PER_DAY + 1) * NS_PER_DAY
        for settles in (self._next_settlement_ns, before_ns):
            if settles is not None:
                until = min(until, settles)
        ids, terms = self._estimate_inputs()
        prices = self._estimate_prices(ids)
        if now >= until or None in prices:
            return None
        bounds = self._liquidation_bounds(ids)
        if bounds is None:
            return None
        versions, gate, guard = self._versions(), self.gate, self.liquidation
        closes = [price_bounds(guard, self._id_text(i), quiet) for i, quiet in zip(ids, bounds, strict=True)]
        if self._flat_key == (now // NS_PER_DAY, self._balances_version, gate.halted_reason, gate.halted_until_ns):
            window = QuietWindow(until, versions, tuple(ids), closes, None)  # flat: check_equity returns at once
        else:
            window = QuietWindow(until, versions, tuple(ids), closes, tuple(terms), self._estimate_base[1])
        window.fast = fast_screen(window, gate, now, prices)
        return window

    def _liquidation_bounds(self, ids: Sequence[InstrumentId]) -> tuple[tuple[float, float], ...] | None:
        # Per open position, the closes at which check_liquidation crosses no trigger; None if it would refresh.
        guard = self.liquidation
        unbounded = (-math.inf, math.inf)
        if not guard.tiers:
            return tuple(unbounded for _ in ids)
        if not ids:
            return None if guard.watches else ()
        if self._liquidation_version != self._balances_version:
            return None
        bounds = []
        for instrument_id in ids:
            quiet = guard.quiet_bounds(self._id_text(instrument_id))
            if quiet is None:
                return None
            bounds.append(quiet)
        return tuple(bounds)

    def is_quiet(self, window: QuietWindow) -> bool:
        """Return whether a decision now lies inside ``window`` (``quiet_window``): nothing to check or record.

        A new worst price of a watched leg and a new peak equity are tracked here, exactly as
        ``check_liquidation`` and ``check_equity`` would (the exact price, the exact equity).
        """
        now = self._now()
        if now >= window.until_ns or window.versions != (
            self.holdings_version,
            self._balances_version,
            self._events_version,
        ):
            return False
        fast = window.fast
        if fast is None:
            return False
        bars, total, worse = self.latest_bars, 0.0, None
        for text, low, high, quantity, outer_low, outer_high, index in fast.legs:
            bar = bars.get(text)
            if bar is None:
                return False
            price = bar.close.as_double()
            if not low <= price <= high:
                if not outer_low <= price <= outer_high:
                    return False  # far from where the window was built, or near a trigger: decide in full
                worse = [index] if worse is None else [*worse, index]  # may be a new worst price
            total += quantity * price
        if fast.low < total < fast.high:
            return worse is None or self._track_worst(window, worse)
        if total >= fast.high > fast.low:  # a new peak, maybe: nothing else can change
            return self._track_peak(window, fast, worse, now)
        return False  # near a breaker: the full decision checks the exact equity

    def _track_peak(self, window: QuietWindow, fast: FastScreen, worse: list[int] | None, now: int) -> bool:
        # What check_liquidation and check_equity do at a new peak: record any new worst price, then the
        # exact equity as the peak; the window's interval follows it.
        if worse is not None and not self._track_worst(window, worse):
            return False
        self.gate.track_peak(self.exact_equity())
        if not fast.follow_peak(self.gate, now):
            window.fast = None
        return True

    def _track_worst(self, window: QuietWindow, legs: Sequence[int]) -> bool:
        # Observe each leg (an index of window.price_bounds) whose close may be a new worst price, and move its
        # bounds to it; False if one crossed its trigger.
        bounds = window.price_bounds
        for index in legs:
            text, _, _, low, high = bounds[index]
            if self._observe_worst([(window.instruments[index], text)]):
                return False
            bounds[index] = price_bounds(self.liquidation, text, (low, high))
            if window.fast is not None:
                window.fast.rebox(index, bounds[index])
        return True

    def _observe_worst(self, legs: Sequence[tuple[InstrumentId, str]]) -> list[str]:
        # check_liquidation's observation: the exact close of each leg the float screen flags; the legs crossed.
        guard, bars, last = self.liquidation, self.latest_bars, self._last_price
        exact: dict[str, Decimal] = {}
        for instrument_id, text in legs:
            bar = bars.get(text)
            if bar is not None:
                close = bar.close
                if guard.screen(text, close.as_double()):
                    exact[text] = close.as_decimal()
            elif instrument_id in last and guard.screen(text, float(last[instrument_id])):
                exact[text] = last[instrument_id]
        return guard.observe(exact) if exact else []

    def _versions(self) -> tuple[int, int, int]:
        return self.holdings_version, self._balances_version, self._events_version

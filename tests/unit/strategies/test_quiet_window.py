"""The quiet window of a decision: ``RiskGate.screen_equity``, ``LiquidationGuard.quiet_bounds`` /
``worst_bounds`` and the window's ``FastScreen`` must never let a decision skip an update or an observation
the exact path would make."""

from __future__ import annotations

import copy
import math
from decimal import Decimal

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from strategies.liquidation_price import Book, LiquidationGuard, OpenLeg, flat_tiers
from strategies.quiet_window import (
    FastScreen,
    PriceBounds,
    QuietWindow,
    estimate_equity,
    estimate_term,
    fast_screen,
)
from strategies.risk_limits import NS_PER_DAY, RiskGate, RiskLimits

D = Decimal
DAY = 19_723  # 2024-01-01
NOON = DAY * NS_PER_DAY + NS_PER_DAY // 2
PERP = "BTCUSDT-PERP.BINANCE"


def _gate(peak: Decimal, day_start: Decimal, *, drawdown_pct: Decimal, loss_limit: Decimal) -> RiskGate:
    gate = RiskGate(RiskLimits.from_mapping({"max_drawdown_pct": drawdown_pct, "daily_loss_limit_usd": loss_limit}))
    gate.update_equity(DAY * NS_PER_DAY, day_start)
    gate.update_equity(DAY * NS_PER_DAY + 1, peak)
    return gate


def _state(gate: RiskGate) -> tuple[object, ...]:
    return (gate.day, gate.day_start_equity, gate.peak_equity, gate.halted_reason, gate.halted_until_ns)


def test_the_screen_names_what_an_update_may_do() -> None:
    # Peak 100,000, the day began at 99,000; limits 10 % (90,000) and 500 (98,500). An estimate with error
    # 0.01 has slack s = 0.01 + 1e-9 x (|equity| + 100,000) ~ 0.0102: 99,500 is far from all three; 100,000
    # and above may raise the peak (and nothing else: a new peak is 0 % from itself, above the day start);
    # 98,500 is on the daily loss limit, 90,000 on the drawdown, and a new UTC day resets the day start.
    gate = _gate(D(100_000), D(99_000), drawdown_pct=D(10), loss_limit=D(500))
    assert gate.screen_equity(NOON, 99_500.0, 0.01) == "unchanged"
    assert gate.screen_equity(NOON, 99_999.97, 0.01) == "unchanged"
    assert gate.screen_equity(NOON, 99_999.995, 0.01) == "peak"  # within the error of the peak
    assert gate.screen_equity(NOON, 100_500.0, 0.01) == "peak"
    assert gate.screen_equity(NOON, 98_500.0, 0.01) == "update"
    assert gate.screen_equity(NOON, 98_500.015, 0.01) == "update"  # within twice the slack of it
    assert gate.screen_equity(NOON + NS_PER_DAY, 99_500.0, 0.01) == "update"
    drawdown = _gate(D(100_000), D(99_000), drawdown_pct=D(10), loss_limit=D(100_000))
    assert drawdown.screen_equity(NOON, 90_000.005, 0.01) == "update"
    assert RiskGate(RiskLimits()).screen_equity(NOON, 1.0, 0.0) == "update"  # no equity seen yet
    assert gate.update_is_noop(NOON, 99_500.0, 0.01)
    assert not gate.update_is_noop(NOON, 100_500.0, 0.01)


@settings(max_examples=400, deadline=None)
@given(
    peak=st.decimals(min_value=D(1), max_value=D(10_000_000), places=6),
    day_start_below_peak=st.decimals(min_value=D(0), max_value=D(100_000), places=6),
    move=st.decimals(min_value=D(-200_000), max_value=D(200_000), places=6),
    error=st.decimals(min_value=D(0), max_value=D(10), places=6),
    drawdown_pct=st.decimals(min_value=D("0.01"), max_value=D(50), places=2),
    loss_limit=st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2),
)
@example(D(100_000), D(1_000), D("-0.0303"), D("0.01"), D(10), D(500))  # just below the peak
@example(D(100_000), D(1_000), D("0.0001"), D("0.01"), D(10), D(500))  # just above it
@example(D(100_000), D(1_000), D("-500.03"), D("0.01"), D(10), D(500))  # just above the loss limit
@example(D(100_000), D(99_000), D("-10000.03"), D("0.01"), D(10), D(100_000))  # just above the drawdown
def test_what_the_screen_allows_is_all_the_exact_update_does(
    peak: Decimal,
    day_start_below_peak: Decimal,
    move: Decimal,
    error: Decimal,
    drawdown_pct: Decimal,
    loss_limit: Decimal,
) -> None:
    # "unchanged": the exact update at either end of the error changes nothing; "peak": it records nothing
    # and leaves the gate as track_peak does. Only "update" may halt, resume or start a day.
    gate = _gate(peak, max(peak - day_start_below_peak, D(0)), drawdown_pct=drawdown_pct, loss_limit=loss_limit)
    assume(not gate.halted)
    estimate = peak + move
    screened = gate.screen_equity(NOON, float(estimate), float(error))
    assume(screened != "update")
    for exact in (estimate - error, estimate + error):
        probe, expected = copy.deepcopy(gate), copy.deepcopy(gate)
        assert probe.update_equity(NOON, exact) == []
        if screened == "peak":
            expected.track_peak(exact)
        else:
            assert _state(probe) == _state(gate)
        assert _state(probe) == _state(expected)


def _guard(side: int, *, quantity: str, entry: str, wallet: str, worst: str | None) -> LiquidationGuard:
    guard = LiquidationGuard({PERP: flat_tiers(D("0.004"))}, min_distance_pct=D(15))
    leg = OpenLeg(PERP, "BINANCE", D(quantity) * side, D(entry))
    guard.refresh(Book([leg], {"BINANCE": D(wallet)}, {PERP: D(entry)}))
    if worst is not None:
        guard.observe({PERP: D(worst)})
    return guard


def test_a_leg_never_observed_has_no_quiet_price_and_an_unwatched_one_every_price() -> None:
    guard = _guard(-1, quantity="1", entry="40000", wallet="10000", worst=None)
    assert guard.quiet_bounds(PERP) is None
    assert guard.quiet_bounds("BTCUSDT.BINANCE") == (-math.inf, math.inf)


def test_a_short_is_quiet_below_its_trigger_and_no_new_worst_up_to_its_worst_price() -> None:
    # Short 1 BTC at 40,000 on a 10,000 wallet: LP = (10,000 + 40,000) / (1 x 1.004) = 49,800.80, trigger
    # LP / 1.15 = 43,305.04, widened by 1e-9 towards the mark. The worst price seen bounds only new worsts.
    guard = _guard(-1, quantity="1", entry="40000", wallet="10000", worst="41000")
    low, high = guard.quiet_bounds(PERP) or (0.0, 0.0)
    assert low == -math.inf
    assert math.isclose(high, float(D(50_000) / D("1.004") / D("1.15")) * (1 - 1e-9), rel_tol=1e-15)
    assert guard.worst_bounds(PERP) == (-math.inf, 41_000.0)
    assert _guard(1, quantity="1", entry="40000", wallet="10000", worst="39000").worst_bounds(PERP) == (
        39_000.0,
        math.inf,
    )
    assert guard.worst_bounds("BTCUSDT.BINANCE") == (-math.inf, math.inf)


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    quantity=st.decimals(min_value=D("0.001"), max_value=D(10), places=3),
    entry=st.decimals(min_value=D(100), max_value=D(100_000), places=2),
    wallet=st.decimals(min_value=D(10), max_value=D(1_000_000), places=2),
    worst_move=st.decimals(min_value=D("-0.5"), max_value=D("0.5"), places=4),
    price_move=st.decimals(min_value=D("-0.6"), max_value=D("0.6"), places=6),
    at_an_edge=st.booleans(),
)
def test_inside_the_quiet_bounds_nothing_is_observed(
    side: int,
    quantity: Decimal,
    entry: Decimal,
    wallet: Decimal,
    worst_move: Decimal,
    price_move: Decimal,
    at_an_edge: bool,
) -> None:
    worst = (entry * (1 + worst_move)).quantize(D("0.01"))
    assume(worst > 0)
    guard = _guard(side, quantity=str(quantity), entry=str(entry), wallet=str(wallet), worst=str(worst))
    quiet = guard.quiet_bounds(PERP)
    assert quiet is not None
    no_worst = guard.worst_bounds(PERP)
    low, high = max(quiet[0], no_worst[0]), min(quiet[1], no_worst[1])  # where the screen flags nothing
    edge = high if side < 0 else low  # the finite end: the float right at it is quiet, the next one is not
    assert not guard.screen(PERP, edge)
    assert guard.screen(PERP, math.nextafter(edge, math.inf if side < 0 else -math.inf))
    price = (entry * (1 + price_move)).quantize(D("0.01"))
    if at_an_edge:  # the price right at the finite edge, to the cent: the threshold itself
        price = D(edge).quantize(D("0.01"), rounding="ROUND_DOWN" if side < 0 else "ROUND_UP")
    assume(price > 0)
    inside = low <= float(price) <= high
    assert guard.screen(PERP, float(price)) is not inside
    watch = guard.watches[PERP]
    kept = (watch.worst, watch.trigger)
    if inside:
        assert guard.observe({PERP: price}) == []
        assert (watch.worst, watch.trigger) == kept
    elif quiet[0] <= float(price) <= quiet[1]:  # a new worst price, short of the trigger: recorded, not crossed
        assert guard.observe({PERP: price}) == []
        assert (watch.worst, watch.trigger) == (price, kept[1])


def _window(base: float, legs: list[tuple[float, float]], bounds: list[PriceBounds]) -> QuietWindow:
    terms = tuple(estimate_term(quantity, opened) for quantity, opened in legs)
    return QuietWindow(NOON + 1, (0, 0, 0), (), bounds, terms, base)


def _settles(fast: FastScreen, prices: list[float]) -> bool:
    # What is_quiet's fast path decides at these closes: every close in its inner box and the sum in range.
    inside = all(low <= p <= high for (_, low, high, *_), p in zip(fast.legs, prices, strict=True))
    total = sum(leg[3] * p for leg, p in zip(fast.legs, prices, strict=True))
    return inside and fast.low < total < fast.high


def test_the_fast_screen_settles_the_closes_between_the_peak_and_the_daily_loss() -> None:
    # Short 1 BTC opened at 40,000 on a 10,000 balance: equity 50,000 - close. Peak and day start 10,000,
    # daily loss limit 500 (update at 9,500), drawdown 10 % (9,000). The outer box is 40,000 +- 50 %, so
    # |close| <= 60,000 and the estimate's error bound is 1e-9 x (10,000 + 60,000 + 40,000) + 1e-9 = 1.1e-4;
    # slack = 3 x 1.1e-4 + 1e-9 x 10,000 = 3.4e-4. Quiet: equity in (9,500 + 2 slack, 10,000 - slack),
    # i.e. -close in (9,500 + 2 slack - 50,000, 10,000 - slack - 50,000).
    gate = _gate(D(10_000), D(10_000), drawdown_pct=D(10), loss_limit=D(500))
    unbounded = (PERP, -math.inf, math.inf, -math.inf, math.inf)
    fast = fast_screen(_window(10_000.0, [(-1.0, 40_000.0)], [unbounded]), gate, NOON, [40_000.0])
    assert fast is not None
    slack = 3 * (1e-9 * 110_000 + 1e-9) + 1e-9 * 10_000
    assert math.isclose(fast.low, 9_500 + 2 * slack - 50_000, abs_tol=1e-9)
    assert math.isclose(fast.high, 10_000 - slack - 50_000, abs_tol=1e-9)
    assert fast.legs == [(PERP, 20_000.0, 60_000.0, -1.0, 20_000.0, 60_000.0, 0)]
    assert _settles(fast, [40_000.5])
    assert _settles(fast, [40_499.0])
    assert not _settles(fast, [39_999.0])  # a new peak: the full screen tracks it
    assert not _settles(fast, [40_501.0])  # past the daily loss limit
    # A worst price of 40,200 seen: closes above it are no longer inside (they may be a new worst).
    fast.rebox(0, (PERP, -math.inf, 40_200.0, -math.inf, math.inf))
    assert fast.legs[0][1:3] == (20_000.0, 40_200.0)
    assert _settles(fast, [40_100.0])
    assert not _settles(fast, [40_300.0])
    gate.update_equity(NOON + NS_PER_DAY, D(10_000))
    assert fast_screen(_window(10_000.0, [(-1.0, 40_000.0)], [unbounded]), gate, NOON + 2 * NS_PER_DAY, [1.0]) is None


@settings(max_examples=400, deadline=None)
@given(
    legs=st.lists(
        st.tuples(
            st.floats(min_value=-50, max_value=50, allow_nan=False).filter(lambda q: abs(q) > 1e-6),
            st.floats(min_value=1, max_value=100_000),  # opened at
            st.floats(min_value=-0.3, max_value=0.3),  # the close the screen is built at, from the open
            st.floats(min_value=-0.7, max_value=0.7),  # the close screened, from that one
            st.floats(min_value=0, max_value=0.4),  # the worst price seen, beyond the built close
        ),
        min_size=1,
        max_size=3,
    ),
    base=st.floats(min_value=1_000, max_value=1_000_000),
    peak_over_start=st.floats(min_value=0, max_value=0.05),
    drawdown_pct=st.decimals(min_value=D("0.5"), max_value=D(30), places=2),
    loss_pct=st.floats(min_value=0.001, max_value=0.2),
)
def test_what_the_fast_screen_settles_the_full_screen_finds_unchanged(
    legs: list[tuple[float, float, float, float, float]],
    base: float,
    peak_over_start: float,
    drawdown_pct: Decimal,
    loss_pct: float,
) -> None:
    built = [opened * (1 + at) for _, opened, at, _, _ in legs]
    equity = base + sum(q * (p - opened) for (q, opened, *_), p in zip(legs, built, strict=True))
    assume(equity > 0)
    peak = D(repr(equity * (1 + peak_over_start)))
    gate = _gate(peak, D(repr(equity)), drawdown_pct=drawdown_pct, loss_limit=D(repr(equity * loss_pct)))
    # A short's worst price is above the close, a long's below; the quiet bounds are left open.
    bounds: list[PriceBounds] = [
        (f"I{i}.V", -math.inf, p * (1 + w), -math.inf, math.inf)
        if q < 0
        else (f"I{i}.V", p * (1 - w), math.inf, -math.inf, math.inf)
        for i, ((q, _, _, _, w), p) in enumerate(zip(legs, built, strict=True))
    ]
    window = _window(base, [(q, opened) for q, opened, *_ in legs], bounds)
    fast = fast_screen(window, gate, NOON, built)
    assert fast is not None
    prices = [p * (1 + move) for (_, _, _, move, _), p in zip(legs, built, strict=True)]
    if _settles(fast, prices):
        assert window.terms is not None
        estimate, error = estimate_equity(base, window.terms, prices)
        assert gate.screen_equity(NOON, estimate, error) == "unchanged"
        assert all(b[1] <= p <= b[2] for b, p in zip(bounds, prices, strict=True))  # no new worst price

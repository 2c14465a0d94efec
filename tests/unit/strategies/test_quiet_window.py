"""The quiet window of a decision: ``RiskGate.noop_margin`` and ``LiquidationGuard.quiet_bounds`` must never
let a decision skip an update or an observation the exact path would make."""

from __future__ import annotations

import copy
import math
from decimal import Decimal

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from strategies.liquidation_price import Book, LiquidationGuard, OpenLeg, flat_tiers
from strategies.risk import NOOP_ERROR_GROWTH, NS_PER_DAY, RiskGate, RiskLimits, estimate_equity, estimate_term

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


def test_margin_is_the_room_to_the_nearest_threshold() -> None:
    # Peak 100,000, the day began at 99,000; limits 10 % (90,000) and 500 (98,500). An estimate of 99,500
    # with error 0.01 has slack s = 0.01 + 1e-9 x (99,500 + 100,000) = 0.0101995. Rooms: to the peak
    # 100,000 - 99,500 - s = 499.9898; to the loss limit 500 - 99,000 + 99,500 - 2s = 999.98; to the
    # drawdown 10,000 x (1 - 1e-9) - (500 + s) = 9,499.99. The peak is nearest: the margin is
    # (499.9898 - 1e-12 x ~4e5) / (1 + 2 x (0.001 + 1e-9)), the 1e-12 term below the tolerance.
    gate = _gate(D(100_000), D(99_000), drawdown_pct=D(10), loss_limit=D(500))
    margin = gate.noop_margin(NOON, 99_500.0, 0.01)
    assert math.isclose(margin, (500 - 0.0101995) / (1 + 2 * (NOOP_ERROR_GROWTH + 1e-9)), rel_tol=1e-9)
    assert gate.update_is_noop(NOON, 99_500.0 + margin, 0.01 + margin * NOOP_ERROR_GROWTH)
    assert not gate.update_is_noop(NOON, 99_500.0 + 500, 0.01)  # the peak itself


def test_no_margin_at_a_peak_on_a_new_day_or_before_any_equity() -> None:
    gate = _gate(D(100_000), D(99_000), drawdown_pct=D(10), loss_limit=D(500))
    assert gate.noop_margin(NOON, 100_000.0, 0.01) == 0.0
    assert gate.noop_margin(NOON + NS_PER_DAY, 99_500.0, 0.01) == 0.0
    assert gate.noop_margin(NOON, 98_500.0, 0.01) == 0.0  # on the daily loss limit
    assert RiskGate(RiskLimits()).noop_margin(NOON, 1.0, 0.0) == 0.0


@settings(max_examples=400, deadline=None)
@given(
    peak=st.decimals(min_value=D(1), max_value=D(10_000_000), places=6),
    day_start_below_peak=st.decimals(min_value=D(0), max_value=D(100_000), places=6),
    below_peak=st.decimals(min_value=D(0), max_value=D(200_000), places=6),
    error=st.decimals(min_value=D(0), max_value=D(10), places=6),
    drawdown_pct=st.decimals(min_value=D("0.01"), max_value=D(50), places=2),
    loss_limit=st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2),
    where=st.floats(min_value=-1.0, max_value=1.0),
)
@example(D(100_000), D(1_000), D("0.0303"), D("0.01"), D(10), D(500), 1.0)  # just below the peak
@example(D(100_000), D(1_000), D("500.03"), D("0.01"), D(10), D(500), -1.0)  # just above the loss limit
def test_inside_the_margin_every_update_is_a_noop(
    peak: Decimal,
    day_start_below_peak: Decimal,
    below_peak: Decimal,
    error: Decimal,
    drawdown_pct: Decimal,
    loss_limit: Decimal,
    where: float,
) -> None:
    gate = _gate(peak, max(peak - day_start_below_peak, D(0)), drawdown_pct=drawdown_pct, loss_limit=loss_limit)
    assume(not gate.halted)
    equity = peak - below_peak
    margin = gate.noop_margin(NOON, float(equity), float(error))
    assume(margin > 0)
    before = _state(gate)
    # The ends of the window, a point inside, with the largest error the window allows.
    for moved in (float(equity) - margin, float(equity) + margin, float(equity) + where * margin):
        largest = float(error) + margin * NOOP_ERROR_GROWTH
        assert gate.update_is_noop(NOON, moved, largest)
        # And the exact update the screen stands for changes nothing at either end of that error.
        for exact in (D(moved) - D(largest), D(moved) + D(largest)):
            probe = copy.deepcopy(gate)
            assert probe.update_equity(NOON, exact) == []
            assert _state(probe) == before


@settings(max_examples=200, deadline=None)
@given(
    quantities=st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=1, max_size=3),
    opened=st.floats(min_value=1, max_value=100_000),
    moves=st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=3, max_size=3),
)
def test_the_estimates_error_grows_with_its_prices_only(
    quantities: list[float], opened: float, moves: list[float]
) -> None:
    # noop_margin lets the error bound grow by NOOP_ERROR_GROWTH of the equity move, is_quiet checks it:
    # here the bound is 1e-9 of the magnitudes, |q| x p moves by |q| x |dp|, so it grows by 1e-9 of that.
    terms = [estimate_term(q, opened) for q in quantities]
    prices = [opened] * len(terms)
    moved = [opened * (1 + m) for m, _ in zip(moves, terms, strict=False)]
    _, error = estimate_equity(1_000_000.0, terms, prices)
    _, error_after = estimate_equity(1_000_000.0, terms, moved)
    grown = sum(abs(q) * abs(p - opened) for q, p in zip(quantities, moved, strict=True))
    assert error_after <= error + 1e-9 * grown * (1 + 1e-9) + 1e-15


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


def test_a_short_is_quiet_up_to_its_worst_price_below_its_trigger() -> None:
    # Short 1 BTC at 40,000 on a 10,000 wallet: LP = (10,000 + 40,000) / (1 x 1.004) = 49,800.80, trigger
    # LP / 1.15 = 43,305.04. Worst seen 41,000: quiet below it; worst 44,000: the trigger's edge binds.
    guard = _guard(-1, quantity="1", entry="40000", wallet="10000", worst="41000")
    assert guard.quiet_bounds(PERP) == (-math.inf, 41_000.0)
    tight = _guard(-1, quantity="1", entry="40000", wallet="10000", worst="44000")
    low, high = tight.quiet_bounds(PERP) or (0.0, 0.0)
    assert low == -math.inf
    assert math.isclose(high, float(D(50_000) / D("1.004") / D("1.15")) * (1 - 1e-9), rel_tol=1e-15)


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
    bounds = guard.quiet_bounds(PERP)
    assert bounds is not None
    low, high = bounds
    edge = high if side < 0 else low  # the finite end: the float right at it is quiet, the next one is not
    assert not guard.screen(PERP, edge)
    assert guard.screen(PERP, math.nextafter(edge, math.inf if side < 0 else -math.inf))
    price = (entry * (1 + price_move)).quantize(D("0.01"))
    if at_an_edge:  # the price right at the finite edge, to the cent: the threshold itself
        price = D(edge).quantize(D("0.01"), rounding="ROUND_DOWN" if side < 0 else "ROUND_UP")
    assume(price > 0)
    inside = low <= float(price) <= high
    assert guard.screen(PERP, float(price)) is not inside
    if inside:
        watch = guard.watches[PERP]
        kept = (watch.worst, watch.trigger)
        assert guard.observe({PERP: price}) == []
        assert (watch.worst, watch.trigger) == kept

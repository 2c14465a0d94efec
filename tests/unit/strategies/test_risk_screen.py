"""``RiskGate.update_is_noop``: the float screen that skips an equity update must never skip one that matters."""

from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.risk_limits import NS_PER_DAY, RiskGate, RiskLimits

D = Decimal
DAY = 19_723  # 2024-01-01
NOON = DAY * NS_PER_DAY + NS_PER_DAY // 2


def _gate(peak: str, day_start: str, **limits: object) -> RiskGate:
    gate = RiskGate(RiskLimits.from_mapping({"max_drawdown_pct": 10, "daily_loss_limit_usd": 500, **limits}))
    gate.update_equity(DAY * NS_PER_DAY, D(day_start))
    gate.update_equity(DAY * NS_PER_DAY + 1, D(peak))
    return gate


def _state(gate: RiskGate) -> tuple[object, ...]:
    return (gate.day, gate.day_start_equity, gate.peak_equity, gate.halted_reason, gate.halted_until_ns)


def test_equity_well_inside_every_limit_is_a_noop() -> None:
    # Peak 100,000; 10 % drawdown is 90,000; the day began at 99,000, a 500 loss is 98,500.
    gate = _gate("100000", "99000")
    assert gate.update_is_noop(NOON, 99_500.0, 0.01)


def test_equity_near_or_above_a_threshold_is_not_a_noop() -> None:
    gate = _gate("100000", "99000")
    assert not gate.update_is_noop(NOON, 100_000.0, 0.01)  # could be a new peak
    assert not gate.update_is_noop(NOON, 99_999.995, 0.01)  # within the error of the peak
    assert not gate.update_is_noop(NOON, 98_500.0, 0.01)  # on the daily loss limit
    assert not gate.update_is_noop(NOON, 98_500.005, 0.01)  # within the error of it
    assert not gate.update_is_noop(NOON + NS_PER_DAY, 99_500.0, 0.01)  # a new UTC day resets the day start
    drawdown = _gate("100000", "89000", daily_loss_limit_usd=100_000)
    assert not drawdown.update_is_noop(NOON, 90_000.0, 0.01)  # on the 10 % drawdown


def test_a_gate_that_never_saw_equity_is_not_a_noop() -> None:
    gate = RiskGate(RiskLimits.from_mapping({"max_drawdown_pct": 10}))
    assert not gate.update_is_noop(NOON, 1.0, 0.0)


@settings(max_examples=300, deadline=None)
@given(
    peak=st.decimals(min_value=D(1), max_value=D(10_000_000), places=8),
    day_start_below_peak=st.decimals(min_value=D(0), max_value=D(100_000), places=8),
    equity=st.decimals(min_value=D(0), max_value=D(10_000_000), places=8),
    error=st.decimals(min_value=D(0), max_value=D(10), places=6),
    drawdown_pct=st.decimals(min_value=D("0.01"), max_value=D(50), places=2),
    loss_limit=st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2),
)
def test_a_noop_never_hides_a_change_of_state(
    peak: Decimal,
    day_start_below_peak: Decimal,
    equity: Decimal,
    error: Decimal,
    drawdown_pct: Decimal,
    loss_limit: Decimal,
) -> None:
    gate = _gate(
        str(peak),
        str(max(peak - day_start_below_peak, D(0))),
        max_drawdown_pct=drawdown_pct,
        daily_loss_limit_usd=loss_limit,
    )
    if gate.halted:
        return
    estimate = float(equity)
    if not gate.update_is_noop(NOON, estimate, float(error)):
        return
    # Every equity the estimate allows (its ends and itself) leaves the gate exactly as it was.
    for exact in (equity - error, equity, equity + error):
        probe = copy.deepcopy(gate)
        before = _state(probe)
        assert probe.update_equity(NOON, exact) == []
        assert _state(probe) == before

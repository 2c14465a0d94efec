"""The compiled kernel keeps the strategies' rules: carry_step, fill prices, funding, and a hand-checked run."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from research.carry_kernel import METRICS, RangeSlice, _fill_price, _step, score
from research.carry_vbt import fill_prices
from strategies.funding import funding_payment
from strategies.signals import carry_step

aprs = st.one_of(st.none(), st.floats(-2, 2, allow_nan=False))
thresholds = st.floats(-0.5, 0.5, allow_nan=False)


@settings(deadline=None)  # the first call may compile the kernel
@given(
    position=st.sampled_from([-1, 0, 1]),
    held_secs=st.integers(0, 10_000_000),
    apr=aprs,
    entry=thresholds,
    exit_=thresholds,
    cost=st.floats(0, 0.2, allow_nan=False),
    hold=st.integers(1, 10_000_000),
    reverse=st.booleans(),
)
def test_compiled_step_is_carry_step(
    position: int, held_secs: int, apr: float | None, entry: float, exit_: float, cost: float, hold: int, reverse: bool
) -> None:
    expected = carry_step(
        position,
        held_secs,
        apr,
        entry_apr=entry,
        exit_apr=exit_,
        cost=cost,
        max_holding_secs=hold,
        allow_reverse=reverse,
    )
    got = _step(
        position, held_secs * 10**9 + 999, math.nan if apr is None else apr, entry, exit_, cost, hold * 10**9, reverse
    )
    assert got == expected


@settings(deadline=None)
@given(
    close=st.floats(1, 200_000, allow_nan=False),
    buy=st.booleans(),
    slippage_bps=st.sampled_from([0.0, 1.0, 2.5]),
    tick=st.sampled_from([Decimal("0.01"), Decimal("0.10"), Decimal("0.5")]),
)
def test_compiled_fill_price_is_the_engine_rule(close: float, buy: bool, slippage_bps: float, tick: Decimal) -> None:
    expected = fill_prices(np.array([close]), np.array([buy]), tick=tick, slippage_bps=slippage_bps)[0]
    assert _fill_price(close, buy, float(tick), slippage_bps / 10_000) == expected


def test_hand_checked_run_enters_settles_and_exits() -> None:
    # Four hourly closes; flat prices 100 (leg 0) and 101 (leg 1); the signal is 0.5 APR, then falls to 0.
    hour = 3_600_000_000_000
    ts = np.arange(1, 5, dtype=np.int64) * hour
    close = np.array([[100.0] * 4, [101.0] * 4])
    signals = np.array([[0.5, 0.5, 0.5, 0.0]])
    # One settlement of leg 1 at 2.5 h: rate 0.001 at mark 101; no funding on leg 0 (spot).
    settle1 = np.array([[2.5 * hour, 0.001, 101.0]])
    statics = np.array([0.01, 0.1, 0.001, 0.0005, 1.0, 1.0, 5, 3, 0.001, 1.0, 0.0])
    piece = RangeSlice(ts, close, signals, (np.empty((0, 3)), settle1), statics)
    params = np.array([[0, 0.10, 0.02, 0.0, 100 * 3600]])
    got = dict(zip(METRICS, score(piece, params, notional=1000.0, slippage_bps=0.0)[0], strict=True))
    quantity = 10.0  # 1000 / 100, a whole number of the 0.001 lot
    assert got["fills"] == 4
    assert got["entries"] == 1
    assert got["settlements"] == 1
    assert math.isclose(got["pnl_funding"], funding_payment(-quantity, 1.0, 101.0, 0.001), abs_tol=1e-12)  # +1.01
    assert math.isclose(got["pnl_price"], 0.0, abs_tol=1e-9)  # flat prices
    fees = 2 * quantity * (100.0 * 0.001 + 101.0 * 0.0005)
    assert math.isclose(got["pnl_fees"], -fees, abs_tol=1e-9)
    assert math.isclose(got["pnl_total"], got["pnl_funding"] - fees, abs_tol=1e-9)

"""The liquidator simulator's kernels on hand-built events (each expected value computed in its test)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from research.liquidator_sim import (
    BotPolicy,
    SimulationError,
    WinModel,
    calibrate_win_model,
    sensitivity,
    simulate,
    win_probability,
)

NOON = datetime(2025, 10, 10, 12, tzinfo=UTC)
HALF_LANDING_MS = 400 * math.log(2)  # exp(-latency / 400 ms) = 1/2


def events(*starts: datetime) -> pl.DataFrame:
    # Each: $100 USDC repaid for 0.55 SOL ($110 at $200, bonus $10); the winner paid the 5,000-lamport base fee
    # and no priority fee (floored to 1 lamport when compared); SOL at $200 = 2e-7 $ per lamport.
    n = len(starts)
    return pl.DataFrame(
        {
            "protocol": ["marginfi"] * n,
            "day": [s.date() for s in starts],
            "ts": list(starts),
            "seized_symbol": ["SOL"] * n,
            "seized_units": [0.55] * n,
            "repaid_usd": [100.0] * n,
            "bonus_usd": [10.0] * n,
            "fee_lamports": [5_000] * n,
            "priority_fee_lamports": [0] * n,
            "compute_units": [100_000] * n,
            "sol_usd": [200.0] * n,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


BARS = pl.DataFrame(
    {
        "symbol": ["SOL"] * 5,
        "ts": [NOON + timedelta(minutes=m) for m in (0, 60, 90, 120, 150)],
        "close": [200.0, 180.0, 180.0, 180.0, 180.0],
    }
)
MODEL = WinModel(scale=1.0)


def test_win_probability_of_known_bids() -> None:
    p = win_probability(np.array([4_000.0, 4_000 * math.e, 0.0]), np.array([4_000.0] * 3), latency_ms=0, model=MODEL)
    # equal bid -> 1/2; e times the winner's bid at scale 1 -> 1 / (1 + e^-1) = 0.7310585786; a zero bid never wins.
    assert p.tolist() == pytest.approx([0.5, 0.7310585786300049, 0.0], abs=1e-15)
    slow = win_probability(np.array([4_000.0]), np.array([4_000.0]), latency_ms=HALF_LANDING_MS, model=MODEL)
    assert slow[0] == pytest.approx(0.25, abs=1e-15)


@given(st.floats(min_value=1.0, max_value=1e12), st.floats(min_value=1.0, max_value=1e12), st.floats(0, 5_000))
def test_win_probability_is_a_probability_increasing_in_the_bid(bid: float, winner: float, latency: float) -> None:
    low, high = win_probability(np.array([bid, bid * 2]), np.array([winner, winner]), latency_ms=latency, model=MODEL)
    assert 0.0 <= low <= high <= 1.0


def test_simulate_one_event_holding_an_hour_into_a_ten_percent_drop() -> None:
    policy = BotPolicy(capital_usd=50.0, priority_fee_share=0.2, latency_ms=0.0, hold_secs=3600, sell_cost_bps=10)
    result = simulate(events(NOON), BARS, policy=policy, model=MODEL)
    # capital $50 of $100 -> half the event: expected bonus $5, bid 20 % = $1 = 5,000,000 lamports against a
    # winner's 1 lamport: p = 1 / (1 + 1/5e6) = 1 - 2e-7. Fees (5,000 base + 5e6) x 2e-7 = $1.001.
    # Sold at 13:00 at $180: 0.275 SOL x 180 = $49.50 less 10 bps = $49.4505, minus $50 repaid = -$0.5495.
    p = 1 / (1 + 1 / 5e6)
    assert result.attempts == 1
    assert result.win_rate == pytest.approx(p, abs=1e-15)
    assert result.fees_usd == pytest.approx(1.001, abs=1e-12)
    assert result.pnl_usd == pytest.approx(p * -0.5495 - 1.001, abs=1e-12)
    assert result.capital_peak_usd == pytest.approx(p * 50, abs=1e-12)
    assert result.events["bid_lamports"].to_list() == [5_000_000.0]


def test_simulate_pays_fees_only_on_wins_when_told() -> None:
    policy = BotPolicy(
        capital_usd=50.0, priority_fee_share=0.2, latency_ms=HALF_LANDING_MS, hold_secs=3600, pay_fees_on_loss=False
    )
    result = simulate(events(NOON), BARS, policy=policy, model=MODEL)
    # landing halves p: p = (1 - 2e-7) / 2; sold at 13:00 (latency 0.28 s + 1 h -> the 13:00 bar is the first
    # at or after); both the result and the fees scale with p.
    p = 0.5 / (1 + 1 / 5e6)
    assert result.win_rate == pytest.approx(p, abs=1e-12)
    assert result.pnl_usd == pytest.approx(p * (-0.5495 - 1.001), abs=1e-9)


def test_simulate_skips_events_whose_fees_exceed_the_expected_bonus() -> None:
    # $0.10 of capital -> a bonus of $0.01 < the 5,000-lamport base fee ($0.001) + its bid ($0.0099 at 99 %).
    policy = BotPolicy(capital_usd=0.1, priority_fee_share=0.99, latency_ms=0.0)
    result = simulate(events(NOON), BARS, policy=policy, model=MODEL)
    assert (result.attempts, result.pnl_usd, result.win_rate) == (0, 0.0, 0.0)


def test_capital_held_by_earlier_wins_limits_later_events() -> None:
    policy = BotPolicy(capital_usd=150.0, priority_fee_share=0.2, latency_ms=0.0, hold_secs=3600)
    starts = (NOON, NOON + timedelta(minutes=30), NOON + timedelta(minutes=90))
    result = simulate(events(*starts), BARS, policy=policy, model=MODEL)
    # 12:00 takes all $100 (bid $2 = 1e7 lamports, p1 = 1 / (1 + 1e-7)) and holds 100 p1 until 13:00; at 12:30
    # $150 - 100 p1 is left: fraction 0.5 + 1e-7 / (1 + 1e-7); at 13:30 the first is sold, so all $100 again.
    p1 = 1 / (1 + 1e-7)
    fractions = result.events["fraction"].to_list()
    assert fractions == pytest.approx([1.0, (150 - 100 * p1) / 100, 1.0], abs=1e-12)
    # in use: 100 p1 for 30 min, then ~150 for 30 min, ~50 for 30 min, ~100 for 60 min: peak <= 150,
    # time-weighted mean (100 x 30 + 150 x 30 + 50 x 30 + 100 x 60) / 150 = 100 (each within 1e-4).
    assert result.capital_peak_usd <= 150.0
    assert result.capital_peak_usd == pytest.approx(150.0, abs=1e-4)
    assert result.capital_mean_usd == pytest.approx(100.0, abs=1e-4)


def test_calibrate_win_model_pools_the_spread_of_winning_bids() -> None:
    # log bids per CU: day 1 {1, 3} (deviations -1, 1), day 2 {2, 4, 6} (-2, 0, 2): squares 10 over 5 - 2
    # degrees of freedom -> sd = sqrt(10/3); the logistic scale of that sd is sd * sqrt(3) / pi = sqrt(10) / pi.
    logs = [1.0, 3.0, 2.0, 4.0, 6.0]
    frame = pl.DataFrame(
        {
            "protocol": ["kamino"] * 5,
            "day": [date(2025, 10, 10)] * 2 + [date(2025, 10, 11)] * 3,
            "priority_fee_lamports": [math.exp(x) * 1_000 for x in logs],
            "compute_units": [1_000] * 5,
        }
    )
    assert calibrate_win_model(frame).scale == pytest.approx(math.sqrt(10) / math.pi, abs=1e-12)


def test_calibrate_win_model_needs_two_bids_in_a_group() -> None:
    frame = pl.DataFrame(
        {"protocol": ["kamino"], "day": [date(2025, 10, 10)], "priority_fee_lamports": [10], "compute_units": [5]}
    )
    with pytest.raises(SimulationError, match="needs two winning bids in some protocol-day, found 1 bids in 1"):
        calibrate_win_model(frame)


def test_sensitivity_changes_one_assumption_at_a_time() -> None:
    policy = BotPolicy(capital_usd=50.0, latency_ms=0.0, hold_secs=3600)
    table = sensitivity(
        events(NOON), BARS, policy=policy, model=MODEL, grid={"latency_ms": [0.0, HALF_LANDING_MS], "scale": [1.0]}
    )
    assert table["parameter"].to_list() == ["latency_ms", "latency_ms", "scale"]
    rates = table["win_rate"].to_list()
    assert rates[1] == pytest.approx(rates[0] / 2, abs=1e-12)
    assert rates[2] == pytest.approx(rates[0], abs=1e-15)


def test_sensitivity_refuses_an_unknown_assumption() -> None:
    with pytest.raises(SimulationError, match="sensitivity grid names 'latency'"):
        sensitivity(events(NOON), BARS, policy=BotPolicy(capital_usd=1.0), model=MODEL, grid={"latency": [1.0]})


def test_simulate_refuses_a_fee_below_its_priority_fee() -> None:
    wrong = events(NOON).with_columns(priority_fee_lamports=pl.lit(20_000))
    with pytest.raises(SimulationError, match="1 events have fee_lamports below priority_fee_lamports"):
        simulate(wrong, BARS, policy=BotPolicy(capital_usd=1.0), model=MODEL)


def test_policy_refuses_a_bid_share_of_one() -> None:
    with pytest.raises(SimulationError, match="0 <= priority_fee_share < 1"):
        BotPolicy(capital_usd=1.0, priority_fee_share=1.0)

"""Signal kernels of the carry strategies, against figures computed by hand."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from strategies.signals import (
    ParameterRange,
    annualize,
    carry_positions,
    carry_step,
    cost_apr,
    expected_rate,
    hedge_drift,
    hedge_orders,
    parameter_range,
    spread_apr,
)
from strategies.spot_perp_carry import SpotPerpCarryConfig

D = Decimal
HOUR = 3600
STEP = {"entry_apr": D("0.10"), "exit_apr": D("0.02"), "cost": D("0.03"), "max_holding_secs": 10 * HOUR}


def test_expected_rate_blends_mean_of_last_settlements_with_predicted() -> None:
    # mean(0.0003, 0.0002) = 0.00025; 0.5 * 0.0005 + 0.5 * 0.00025 = 0.000375
    settled = [D("0.0001"), D("0.0003"), D("0.0002")]
    assert expected_rate(settled, D("0.0005"), lookback=2, predicted_weight=D("0.5")) == D("0.000375")
    assert expected_rate(settled, D("0.0005"), lookback=3, predicted_weight=D(0)) == D("0.0002")
    assert expected_rate(settled, None, lookback=1, predicted_weight=D(1)) == D("0.0002")
    assert expected_rate(settled, D("0.0005"), lookback=1, predicted_weight=D(1)) == D("0.0005")


def test_expected_rate_is_none_while_warming_up() -> None:
    assert expected_rate([D("0.0001")], D("0.0001"), lookback=2, predicted_weight=D("0.5")) is None


def test_expected_rate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="lookback: expected >= 1, was 0"):
        expected_rate([], None, lookback=0, predicted_weight=D(0))
    with pytest.raises(ValueError, match=r"predicted_weight: expected within \[0, 1\], was 2"):
        expected_rate([], None, lookback=1, predicted_weight=D(2))


def test_annualize_uses_the_interval_of_the_venue_clock() -> None:
    # 8 h: 1095 settlements a year; 1 h: 8760.
    assert annualize(D("0.0001"), 8 * HOUR) == D("0.1095")
    assert annualize(D("0.0001"), HOUR) == D("0.876")
    with pytest.raises(ValueError, match="interval_secs: expected > 0, was 0"):
        annualize(D("0.0001"), 0)


def test_cost_apr_amortises_round_trip_over_horizon() -> None:
    # 30 bps over 30 days: 0.003 * 365 / 30 = 0.0365
    assert cost_apr(D(30), D(30)) == D("0.0365")
    with pytest.raises(ValueError, match="horizon_days: expected > 0, was 0"):
        cost_apr(D(30), D(0))


def test_carry_step_enters_when_apr_net_of_cost_reaches_entry() -> None:
    # 0.13 - 0.03 = 0.10 >= 0.10 enters; 0.1299 - 0.03 < 0.10 stays flat.
    assert carry_step(0, 0, D("0.13"), allow_reverse=False, **STEP) == 1
    assert carry_step(0, 0, D("0.1299"), allow_reverse=False, **STEP) == 0


def test_carry_step_reverse_only_when_allowed() -> None:
    assert carry_step(0, 0, D("-0.2"), allow_reverse=False, **STEP) == 0
    assert carry_step(0, 0, D("-0.2"), allow_reverse=True, **STEP) == -1


def test_carry_step_exits_below_exit_apr_or_after_max_holding() -> None:
    assert carry_step(1, HOUR, D("0.02"), allow_reverse=False, **STEP) == 1  # 0.02 is not below 0.02
    assert carry_step(1, HOUR, D("0.0199"), allow_reverse=False, **STEP) == 0
    assert carry_step(-1, HOUR, D("-0.05"), allow_reverse=True, **STEP) == -1  # -1 * -0.05 = 0.05 >= 0.02
    assert carry_step(-1, HOUR, D("0.01"), allow_reverse=True, **STEP) == 0
    assert carry_step(1, 10 * HOUR, D("0.5"), allow_reverse=False, **STEP) == 0


def test_carry_step_holds_without_signal_and_never_reverses_in_one_step() -> None:
    assert carry_step(1, HOUR, None, allow_reverse=True, **STEP) == 1
    assert carry_step(0, 0, None, allow_reverse=True, **STEP) == 0
    assert carry_step(1, HOUR, D("-0.9"), allow_reverse=True, **STEP) == 0


def test_carry_positions_runs_the_step_over_vectors() -> None:
    # NaN warm-up, enter at 0.2 (t=2h), hold, max holding 10 h hit at t=12h (entered 2h), re-enter at 13h,
    # exit below 0.02 at 14h.
    apr = np.array([np.nan, 0.05, 0.2, 0.08, 0.03, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.01])
    ts = np.arange(apr.size, dtype=np.int64) * HOUR * 1_000_000_000
    held = carry_positions(
        apr, ts, entry_apr=0.10, exit_apr=0.02, cost=0.03, max_holding_secs=10 * HOUR, allow_reverse=False
    )
    assert held.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="expected apr and ts_ns of one length"):
        carry_positions(apr, ts[:-1], entry_apr=0.1, exit_apr=0.0, cost=0.0, max_holding_secs=1, allow_reverse=False)


def test_hedge_orders_trade_only_legs_beyond_tolerance() -> None:
    # Target +1 spot / -1 perp; spot 0.98 is 2 % off (> 1 %): buy 0.02; perp -0.995 is 0.5 % off: leave it.
    assert hedge_orders(D(1), [D("0.98"), D("-0.995")], tolerance=D("0.01")) == [D("0.02"), D(0)]
    assert hedge_orders(D(-2), [D(0), D(0)], tolerance=D("0.01")) == [D(-2), D(2)]
    assert hedge_orders(D(0), [D("0.001"), D(0)], tolerance=D("0.5")) == [D("-0.001"), D(0)]
    with pytest.raises(ValueError, match="tolerance: expected >= 0, was -1"):
        hedge_orders(D(1), [D(0), D(0)], tolerance=D(-1))
    with pytest.raises(ValueError, match="holdings: expected two legs or more, was 1"):
        hedge_orders(D(1), [D(0)], tolerance=D(0))


def test_hedge_drift_and_spread() -> None:
    assert hedge_drift([D("1.0"), D("-0.98")]) == D("0.02")
    assert hedge_drift([D(0), D(0)]) == D(0)
    assert spread_apr(D("0.30"), D("0.10")) == D("0.20")


def test_parameter_range_grid_and_declared_space() -> None:
    assert parameter_range("0", "0.1", "0.05").grid() == [D("0"), D("0.05"), D("0.10")]
    assert parameter_range("1", "11", "5", integer=True).grid() == [1, 6, 11]
    with pytest.raises(ValueError, match="expected low <= high and step > 0"):
        ParameterRange(D(1), D(0), D(1))
    space = SpotPerpCarryConfig.PARAMETER_SPACE
    defaults = SpotPerpCarryConfig(spot_id="BTCUSDT.BINANCE", perp_id="BTCUSDT-PERP.BINANCE")
    for name, declared in space.items():
        assert declared.contains(getattr(defaults, name)), name
    assert defaults.warmup_bars == 6 * 8

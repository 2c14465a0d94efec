"""Sweep plumbing without data: the declared space, reproducible sampling, folds, config overrides, objectives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from engine.backtest import load_config
from research.carry_kernel import METRICS
from research.errors import SweepError
from research.sweep import (
    SweepSettings,
    make_folds,
    objective_values,
    parameter_sets,
    parameter_space,
    with_strategy,
)
from strategies.cross_venue_carry import CrossVenueCarryConfig

REPO = Path(__file__).resolve().parents[3]
CROSS = REPO / "configs" / "carry_binance_hyperliquid_btc.toml"


def test_space_is_the_strategys_declaration() -> None:
    space, base = parameter_space(load_config(CROSS))
    assert space == CrossVenueCarryConfig.PARAMETER_SPACE
    assert base["entry_apr"] == "0.10"


def test_grid_drops_exit_above_entry_and_keeps_declared_types() -> None:
    space, base = parameter_space(load_config(CROSS))
    combos = parameter_sets(space, base, names=["entry_apr", "exit_apr", "lookback_settlements"])
    # 6 entry x 5 exit x 5 lookbacks, less entry 0.05 with exit 0.075 or 0.10.
    assert len(combos) == 6 * 5 * 5 - 2 * 5
    assert all(c["exit_apr"] <= c["entry_apr"] for c in combos)
    assert isinstance(combos[0]["entry_apr"], Decimal)
    assert isinstance(combos[0]["lookback_settlements"], int)


def test_random_search_is_reproducible_with_its_seed() -> None:
    space, base = parameter_space(load_config(CROSS))
    first = parameter_sets(space, base, search="random", samples=20, seed=7)
    assert first == parameter_sets(space, base, search="random", samples=20, seed=7)
    assert first != parameter_sets(space, base, search="random", samples=20, seed=8)
    assert len(first) == 20


def test_unknown_parameter_raises() -> None:
    space, base = parameter_space(load_config(CROSS))
    with pytest.raises(SweepError, match=r"expected parameters declared in PARAMETER_SPACE .*\['notional'\]"):
        parameter_sets(space, base, names=["notional"])


def test_folds_are_whole_days_purged_by_the_holding_horizon() -> None:
    config = load_config(CROSS)  # 2024-09-05 to 2025-07-26: 324 days
    combos = [{"max_holding_hours": 720, "lookback_settlements": 24}]
    first, folds = make_folds(config, SweepSettings(train_days=90, test_days=30), combos)
    assert first == datetime(2024, 9, 5, tzinfo=UTC)
    assert folds[0].train == (range(0, 90),)
    assert folds[0].test == (range(120, 150),)  # 30 days of purge (720 h)
    assert folds[-1].test[0].stop == 324
    _, cpcv = make_folds(config, SweepSettings(method="cpcv", groups=6, test_groups=2), combos)
    assert len(cpcv) == 15
    for fold in cpcv:  # embargo: 24 settlements x 8 h = 8 days after every test range
        for test in fold.test:
            assert not {*range(test.start - 30, test.stop + 8)} & {i for r in fold.train for i in r}


def test_with_strategy_overrides_window_and_params() -> None:
    config = load_config(CROSS)
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    run = with_strategy(
        config, start=start, end=end, params={"entry_apr": "0.2", "lookback_settlements": 7}, catalog="x"
    )
    assert (run.start, run.end, run.data.catalog) == (start, end, "x")
    assert run.strategy.params["entry_apr"] == "0.2"
    assert run.strategy.params["lookback_settlements"] == 7
    assert config.strategy.params["entry_apr"] == "0.10"  # the original is untouched


def test_objectives_rank_rows() -> None:
    metrics = np.zeros((2, len(METRICS)))
    metrics[:, 0] = [100.0, 50.0]
    metrics[:, METRICS.index("max_drawdown")] = [100.0, 10.0]
    metrics[:, METRICS.index("sharpe")] = [1.0, 2.0]
    assert objective_values(metrics, "pnl_total").argmax() == 0
    assert objective_values(metrics, "pnl_over_drawdown").tolist() == [1.0, 5.0]
    assert objective_values(metrics, "sharpe").argmax() == 1

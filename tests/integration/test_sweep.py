"""Out-of-sample sweeps of both carry strategies on real data, with the engine re-running every pick.

Also the cross-venue kernel's differential test against the engine (fills, settlements, every PnL
component) on the config's own parameters, and the sweep failing when the engine disagrees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.backtest import RunConfig, load_config, run_backtest
from research.carry_kernel import CROSS_VENUE, METRICS, SPOT_PERP, full_signals, load_two_leg_inputs, score, slice_range
from research.errors import ToleranceError
from research.shared_data import PreparedData, prepare_shared_data
from research.sweep import SweepSettings, kernel_rows, main, run_sweep, with_strategy

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    SPOT_PERP: REPO / "configs" / "carry_binance_btc_spot_perp.toml",
    CROSS_VENUE: REPO / "configs" / "carry_binance_hyperliquid_btc.toml",
}
# Spot-perp: two years are enough for several folds (the config spans 2019-2026: the CLI sweeps it all).
WINDOWS = {
    SPOT_PERP: (datetime(2022, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)),
    CROSS_VENUE: (datetime(2024, 9, 5, tzinfo=UTC), datetime(2025, 7, 26, tzinfo=UTC)),
}
TOLERANCE = Decimal("0.01")  # USD per PnL component: float64 vs decimals is ~1e-7 over a fold


def _config(path: str, catalog: Path) -> RunConfig:
    start, end = WINDOWS[path]
    return with_strategy(load_config(CONFIGS[path]), start=start, end=end, params={}, catalog=str(catalog))


@pytest.fixture(scope="module")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, PreparedData]:
    out = {}
    for path in (SPOT_PERP, CROSS_VENUE):
        config = load_config(CONFIGS[path])
        start, end = WINDOWS[path]
        out[path] = prepare_shared_data(
            shared_data,
            tmp_path_factory.mktemp(path.rsplit(":", 1)[1]),
            strategy_path=path,
            venues=[v.name for v in config.venues],
            symbols=sorted({s for v in config.venues for s in v.instruments}),
            start=start - timedelta(days=3),
            end=end,
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", [SPOT_PERP, CROSS_VENUE], ids=["spot_perp", "cross_venue"])
def test_walk_forward_sweep_writes_report_and_engine_confirms_every_pick(
    prepared: dict[str, PreparedData], path: str, tmp_path: Path
) -> None:
    data = prepared[path]
    settings = SweepSettings(train_days=90, test_days=60, holding_hours=720, workers=2, tolerance_usd=TOLERANCE)
    result = run_sweep(_config(path, data.catalog), data.store, settings, out_dir=tmp_path, catalog=str(data.catalog))
    folds = result.folds
    assert len(folds) >= 3
    assert folds["engine_within_tolerance"].all()
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees"):
        assert (folds[f"kernel_{key}"] - folds[f"engine_{key}"]).abs().max() <= float(TOLERANCE), key
    assert (folds["kernel_fills"] == folds["engine_fills"]).all()
    assert result.summary["parameter_sets"] > 1000  # the whole declared grid
    assert set(result.summary["parameter_stability"]) == {
        "entry_apr",
        "exit_apr",
        "lookback_settlements",
        "predicted_weight",
        "max_holding_hours",
    }
    written = {p.name for p in tmp_path.iterdir()}
    assert {
        "results.parquet",
        "folds.parquet",
        "summary.json",
        "is_vs_oos.png",
        "stability.png",
        "kernel_vs_engine.png",
    } <= written
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert len(table) == 2 * len(folds) * result.summary["parameter_sets"]
    # The pick is the train-best; its test row is the fold's out-of-sample figure.
    fold = folds.iloc[0]
    train = table[(table["fold"] == 0) & (table["segment"] == "train")]
    assert (
        train.loc[train["set"] == fold["pick"], "objective"].item() == train["objective"].max() == fold["is_objective"]
    )
    test_row = table[(table["fold"] == 0) & (table["segment"] == "test") & (table["set"] == fold["pick"])]
    assert test_row["pnl_total"].item() == fold["kernel_pnl_total"]


@pytest.mark.slow
def test_cross_venue_kernel_agrees_with_engine_on_fills_settlements_and_pnl(prepared: dict[str, PreparedData]) -> None:
    data = prepared[CROSS_VENUE]
    start, end = datetime(2024, 10, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    config = with_strategy(
        load_config(CONFIGS[CROSS_VENUE]), start=start, end=end, params={}, catalog=str(data.catalog)
    )
    engine = run_backtest(config, out_dir=None).stats
    params = dict(config.strategy.params)
    inputs = load_two_leg_inputs(data.store, strategy_path=CROSS_VENUE, params=params, start=start, end=end)
    keys = [(int(params["lookback_settlements"]), float(params["predicted_weight"]))]
    piece = slice_range(
        inputs,
        full_signals(inputs, keys),
        keys,
        start_ns=int(start.timestamp() * 1e9),
        end_ns=int(end.timestamp() * 1e9),
    )
    kernel = dict(
        zip(METRICS, score(piece, kernel_rows([{}], params, keys), notional=30000, slippage_bps=1.0)[0], strict=True)
    )
    assert kernel["fills"] == engine["fills"] > 0
    assert kernel["settlements"] == engine["funding_settlements"] > 0
    for key in ("pnl_total", "pnl_price", "pnl_funding", "pnl_fees"):
        assert abs(Decimal(engine[key]) - Decimal(repr(float(kernel[key])))) <= TOLERANCE, key


@pytest.mark.slow
def test_engine_disagreement_beyond_tolerance_fails_the_sweep(
    prepared: dict[str, PreparedData], tmp_path: Path
) -> None:
    # A per-instrument exposure cap below one leg's notional: the engine denies every entry, the
    # kernel (which has no risk controls) trades, so the engine's last word fails the sweep.
    data = prepared[CROSS_VENUE]
    config = _config(CROSS_VENUE, data.catalog)
    risk = {**config.strategy.params["risk"], "max_instrument_exposure_usd": 1000}
    capped = with_strategy(config, start=config.start, end=config.end, params={"risk": risk}, catalog=None)
    settings = SweepSettings(train_days=90, test_days=60, holding_hours=720, names=("entry_apr",))
    with pytest.raises(ToleranceError, match=r"differ from the kernel by up to .* expected <= 0.01"):
        run_sweep(capped, data.store, settings, out_dir=tmp_path, catalog=str(data.catalog))
    folds = pd.read_parquet(tmp_path / "folds.parquet")  # written before failing, to show where
    assert not folds["engine_within_tolerance"].all()


@pytest.mark.slow
def test_cli_runs_a_walk_forward_sweep_from_shared_data(shared_data: Path, tmp_path: Path) -> None:
    code = main(
        [
            str(CONFIGS[CROSS_VENUE]),
            "--shared", str(shared_data),
            "--method", "walk-forward",
            "--search", "random", "--samples", "300", "--seed", "1",
            "--train-days", "90", "--test-days", "60", "--holding-hours", "720",
            "--objective", "sharpe",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    folds = pd.read_parquet(tmp_path / "folds.parquet")
    assert folds["engine_within_tolerance"].all()
    assert np.isfinite(folds["oos_objective"]).all()
    assert main([str(CONFIGS[CROSS_VENUE]), "--shared", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2

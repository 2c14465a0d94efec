"""The same sweep on a local Ray instance and on local processes gives exactly the same tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import ray  # a project dependency: a missing install fails here, never skips

from engine.backtest import load_config
from research.carry_kernel import CROSS_VENUE
from research.shared_data import PreparedData, prepare_shared_data
from research.sweep import SweepSettings, run_sweep, with_strategy

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "carry_binance_hyperliquid_btc.toml"
WINDOW = (datetime(2024, 9, 5, tzinfo=UTC), datetime(2025, 7, 26, tzinfo=UTC))


@pytest.fixture(scope="module")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    config = load_config(CONFIG)
    return prepare_shared_data(
        shared_data,
        tmp_path_factory.mktemp("ray"),
        strategy_path=CROSS_VENUE,
        venues=[v.name for v in config.venues],
        symbols=sorted({s for v in config.venues for s in v.instruments}),
        start=WINDOW[0] - timedelta(days=3),
        end=WINDOW[1],
    )


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # address="local": always a fresh instance, never a cluster already running on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("method", ["walk-forward", "cpcv"])
def test_ray_and_local_processes_give_identical_results(prepared: PreparedData, local_ray: None, method: str) -> None:
    config = with_strategy(
        load_config(CONFIG), start=WINDOW[0], end=WINDOW[1], params={}, catalog=str(prepared.catalog)
    )
    common = {"method": method, "train_days": 90, "test_days": 60, "holding_hours": 720, "chunk_size": 128}
    local = run_sweep(config, prepared.store, SweepSettings(**common, workers=2), catalog=str(prepared.catalog))
    on_ray = run_sweep(
        config, prepared.store, SweepSettings(**common, ray_address="auto"), catalog=str(prepared.catalog)
    )
    pd.testing.assert_frame_equal(local.results, on_ray.results, check_exact=True)
    pd.testing.assert_frame_equal(local.folds, on_ray.folds, check_exact=True)
    assert local.folds["engine_within_tolerance"].all()

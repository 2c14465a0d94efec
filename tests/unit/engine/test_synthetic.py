"""The seeded synthetic generator is deterministic, canonical and labelled synthetic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from datasets.store import Store
from datasets.synthetic import SyntheticSpec, synthetic_frames, write_synthetic_store


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    spec = SyntheticSpec(hours=48)
    first, again = synthetic_frames(spec), synthetic_frames(spec)
    assert first["ohlcv"].equals(again["ohlcv"])
    assert first["funding"].equals(again["funding"])
    other = synthetic_frames(SyntheticSpec(hours=48, seed=8))
    assert not first["ohlcv"].equals(other["ohlcv"])


def test_funding_clocks_are_8h_on_binance_and_1h_on_hyperliquid() -> None:
    funding = synthetic_frames(SyntheticSpec(hours=48))["funding"]
    intervals = dict(funding.group_by("venue").agg(pl.col("interval").unique().first()).iter_rows())
    assert intervals == {"binance": "8h", "hyperliquid": "1h"}


def test_store_write_is_labelled_synthetic_and_idempotent(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    write_synthetic_store(store, SyntheticSpec(hours=24))
    again = write_synthetic_store(store, SyntheticSpec(hours=24))
    assert all(not summary.partitions_written for summary in again.values())
    lineage = next(iter(store.partitions("funding"))).lineage
    assert lineage[0].source.startswith("synthetic://")


def test_start_off_the_hour_is_rejected() -> None:
    with pytest.raises(ValueError, match="start must be a whole UTC hour"):
        synthetic_frames(SyntheticSpec(start=datetime(2024, 1, 1, 0, 30, tzinfo=UTC)))

"""The SYNTHETIC cascade generator: seeded, labelled, storable, and consistent with the bars it drives."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from datasets.schemas import interval_secs
from datasets.store import Store
from datasets.synthetic_liquidations import SOURCE, CascadeSpec, synthetic_cascades, write_synthetic_cascades

SPEC = CascadeSpec(bars=96 * 3, seed=5)


def test_same_seed_same_frames_and_another_seed_other_frames() -> None:
    first, again, other = (
        synthetic_cascades(SPEC),
        synthetic_cascades(SPEC),
        synthetic_cascades(CascadeSpec(bars=96 * 3, seed=6)),
    )
    assert all(first[kind].equals(again[kind]) for kind in first)
    assert not first["liquidations"].equals(other["liquidations"])


def test_every_liquidation_lies_inside_its_bar_in_time_and_price() -> None:
    frames = synthetic_cascades(SPEC)
    step = timedelta(seconds=interval_secs(SPEC.interval))
    bars = frames["ohlcv"].select("ts", "high", "low").rename({"ts": "opened"})
    liquidations = frames["liquidations"].with_columns(pl.col("ts").dt.truncate(f"{step.seconds}s").alias("opened"))
    joined = liquidations.join(bars, on="opened", how="left")
    assert joined["high"].null_count() == 0  # every liquidation falls in a generated bar
    assert joined.filter((pl.col("price") > pl.col("high")) | (pl.col("price") < pl.col("low"))).height == 0
    assert joined.filter(pl.col("notional_usd") != pl.col("price") * pl.col("quantity")).height == 0
    assert set(joined["side"]) == {"long", "short"}
    assert set(joined["source"]) == {SOURCE}
    assert SOURCE.startswith("synthetic://")


def test_cascades_are_bursts_of_one_side_in_a_bar_that_moves_against_it() -> None:
    frames = synthetic_cascades(SPEC)
    per_bar = (
        frames["liquidations"]
        .with_columns(pl.col("ts").dt.truncate("15m").alias("ts"))
        .group_by("ts", "side")
        .agg(pl.len().alias("count"))
        .filter(pl.col("count") >= 10)  # a cascade holds at least 10 events, the trickle a few
        .join(frames["ohlcv"], on="ts")
    )
    assert per_bar.height >= 2
    for side, opened, closed in per_bar.select("side", "open", "close").iter_rows():
        assert (closed < opened) if side == "long" else (closed > opened)


def test_written_batches_pass_the_store_validation_with_synthetic_lineage(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    summaries = write_synthetic_cascades(store, SPEC)
    assert {"ohlcv", "liquidations"} <= set(summaries)
    stored = store.scan("liquidations").collect()
    assert stored.height == synthetic_cascades(SPEC)["liquidations"].height

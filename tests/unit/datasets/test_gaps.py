"""Holes between rows and known gaps in the lineage: pure rules and the store's annotation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import StoreError
from datasets.gaps import KnownGap, find_holes, known_gaps
from datasets.store import SourceInfo, Store

H = 3_600_000


def test_bar_holes_count_every_missing_bar() -> None:
    [hole] = find_holes([0, H, 5 * H, 6 * H], [H] * 4)
    assert (hole.previous_ms, hole.next_ms, hole.first_ms, hole.last_ms, hole.missing) == (H, 5 * H, 2 * H, 4 * H, 3)


def test_late_settlement_fills_its_slot_but_a_skipped_one_is_a_hole() -> None:
    late = find_holes([0, 8 * H, 16 * H + H], [8 * H] * 3, late_fraction=0.5)
    skipped = find_holes([0, 8 * H, 24 * H], [8 * H] * 3, late_fraction=0.5)
    assert late == []
    assert [(h.first_ms, h.missing) for h in skipped] == [(16 * H, 1)]


def test_annotating_a_partition_twice_leaves_it_byte_identical(store_root: Path) -> None:
    store = Store(store_root)
    ts = pl.datetime_range(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC), "8h", eager=True)
    price = pl.lit("100").cast(pl.Decimal(38, 18))
    frame = pl.DataFrame({"ts": ts.cast(pl.Datetime("ns", "UTC"))}).select(
        pl.lit("binance").alias("venue"),
        pl.lit("BTC-USDT-PERP").alias("symbol"),
        "ts",
        pl.lit("0.0001").cast(pl.Decimal(38, 18)).alias("rate"),
        pl.lit("8h").alias("interval"),
        price.alias("mark_price"),
        pl.lit(None, dtype=pl.Decimal(38, 18)).alias("index_price"),
        pl.lit(None, dtype=pl.Decimal(38, 18)).alias("premium"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
    )
    store.write("funding", frame, SourceInfo("test", "0" * 64, "test", "1"))
    gap = KnownGap(
        first=datetime(2024, 1, 1, 8, tzinfo=UTC),
        last=datetime(2024, 1, 1, 8, tzinfo=UTC),
        missing=1,
        attempts=3,
        venue="binance",
        endpoint="/fapi/v1/fundingRate",
        recorded_at="2025-01-01T00:00:00+00:00",
    )
    entry = gap.lineage_entry(series="binance BTC-USDT-PERP funding", source="s", importer="i", importer_version="1")
    values = {"venue": "binance", "symbol": "BTC-USDT-PERP", "year": "2024"}
    assert store.annotate("funding", values, [entry]) is True
    [path] = store.files("funding")
    before = path.read_bytes()
    assert store.annotate("funding", values, [entry]) is False
    assert path.read_bytes() == before
    assert known_gaps(store, "funding", {"venue": "binance"}) == [gap]
    assert store.scan("funding").collect().height == 4
    with pytest.raises(StoreError, match="the partition does not exist"):
        store.annotate("funding", values | {"year": "2023"}, [entry])

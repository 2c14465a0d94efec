"""The store's guarantees: exact round trip, idempotence, order-free merges, atomicity, lineage."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import ConflictError, StoreWriteError, ValidationError
from datasets.store import SourceInfo, Store
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2024, 1, 31, 22, tzinfo=UTC)
INFO = SourceInfo(source="hand-made", sha256="0" * 64, importer="test", importer_version="1")


def _bars(start: datetime, count: int, *, base: int = 100) -> list[tuple[datetime, str, str, str, str, str]]:
    return [
        (start + timedelta(hours=i), f"{base + i}.5", f"{base + i + 1}.25", f"{base + i}.125", f"{base + i}.75", "3.5")
        for i in range(count)
    ]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_write_then_scan_returns_exact_decimals(store_root: Path) -> None:
    store = Store(store_root)
    store.write("funding", funding_batch([(T0, "0.00010000"), (T0 + timedelta(hours=8), "-0.0000081")]), INFO)
    rates = store.scan("funding", venue="binance").collect()["rate"].to_list()
    assert rates == [Decimal("0.0001"), Decimal("-0.0000081")]


def test_write_spanning_years_splits_partitions_and_scan_prunes_by_range(store_root: Path) -> None:
    store = Store(store_root)
    start = datetime(2023, 12, 31, 20, tzinfo=UTC)
    store.write("ohlcv", ohlcv_batch(_bars(start, 8)), INFO)
    assert [p.parent.name for p in store.files("ohlcv")] == ["year=2023", "year=2024"]
    january = store.scan("ohlcv", start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 2, 1, tzinfo=UTC))
    assert january.collect()["ts"].to_list() == [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(4)]


def test_reimport_of_same_batch_leaves_store_byte_identical(store_root: Path) -> None:
    store = Store(store_root)
    batch = ohlcv_batch(_bars(T0, 10))
    store.write("ohlcv", batch, INFO)
    before = _snapshot(store_root)
    summary = store.write("ohlcv", batch, INFO)
    assert summary.partitions_written == []
    assert _snapshot(store_root) == before


def test_overlapping_batches_merge_without_duplicates(store_root: Path) -> None:
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 6)), INFO)
    store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 6, base=103)), INFO)
    ts = store.scan("ohlcv").collect()["ts"]
    assert ts.to_list() == [T0 + timedelta(hours=i) for i in range(9)]


def test_conflicting_value_for_stored_key_raises_and_store_is_unchanged(store_root: Path) -> None:
    store = Store(store_root)
    store.write("funding", funding_batch([(T0, "0.0001")]), INFO)
    before = _snapshot(store_root)
    with pytest.raises(
        ConflictError, match=r"hand-made: 1 keys \(venue, symbol, ts\) are already stored in .*year=2024"
    ):
        store.write("funding", funding_batch([(T0, "0.0002")]), INFO)
    assert _snapshot(store_root) == before


def test_invalid_row_in_second_year_rejects_whole_batch(store_root: Path) -> None:
    store = Store(store_root)
    bars = _bars(datetime(2023, 12, 31, 22, tzinfo=UTC), 4)
    bars[3] = (bars[3][0], "100", "99", "98", "100", "1")  # high below open
    with pytest.raises(ValidationError, match=r"hand-made: row 3, field 'high': high must be >= max\(open, close\)"):
        Store(store_root).write("ohlcv", ohlcv_batch(bars), INFO)
    assert not store_root.exists() or _snapshot(store_root) == {}
    assert store.scan("ohlcv").collect().height == 0


def test_lineage_records_every_source_with_rows_and_range(store_root: Path) -> None:
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), INFO)
    other = SourceInfo(source="second", sha256="1" * 64, importer="test", importer_version="2")
    store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 2, base=103)), other)
    (partition,) = [p for p in store.partitions() if p.values["year"] == "2024"]
    assert [(e.source, e.rows, e.importer_version) for e in partition.lineage] == [
        ("hand-made", 3, "1"),
        ("second", 2, "2"),
    ]
    assert partition.rows == 5
    assert partition.ts_max == T0 + timedelta(hours=4)


def test_crash_before_rename_keeps_previous_data(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), INFO)
    before = _snapshot(store_root)

    def crash(*_: object) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("datasets.store.os.replace", crash)
    with pytest.raises(StoreWriteError, match=r"simulated.*nothing was changed"):
        store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 3, base=103)), INFO)
    assert _snapshot(store_root) == before


def test_process_killed_mid_write_leaves_previous_data_readable(store_root: Path) -> None:
    """A hard kill (no finally blocks run) halfway through writing the temp file of a partition."""
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), INFO)
    before = store.scan("ohlcv").collect()
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime, timedelta, UTC
        import polars as pl
        from datasets.store import SourceInfo, Store
        from tests.kit.store import ohlcv_batch

        def die_halfway(self, file, **options):
            with open(file, "wb") as handle:
                handle.write(b"PAR1 half a file")
            os._exit(9)

        pl.DataFrame.write_parquet = die_halfway
        t0 = datetime(2024, 1, 31, 22, tzinfo=UTC)
        bars = [(t0 + timedelta(hours=3 + i), "1", "2", "0.5", "1.5", "1") for i in range(10)]
        Store({str(store_root)!r}).write("ohlcv", ohlcv_batch(bars), SourceInfo("kill", "f" * 64, "test", "1"))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=Path(__file__).parents[3])
    assert result.returncode == 9
    after = store.scan("ohlcv").collect()
    assert after.equals(before)
    leftovers = [p.name for p in store_root.rglob(".data.parquet.tmp-*")]
    assert leftovers, "the kill should have left a temp file behind, or the test did not crash mid-write"
    store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 1, base=103)), INFO)
    assert store.scan("ohlcv").collect().height == 4


def test_scan_with_floats_casts_decimals_for_research(store_root: Path) -> None:
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 2)), INFO)
    frame = store.scan("ohlcv", floats=True).collect()
    assert frame.schema["close"] == pl.Float64
    assert frame["close"].to_list() == [100.75, 101.75]


def test_unknown_partition_filter_raises_with_allowed_names(store_root: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot filter ohlcv partitions by \['exchange'\].*venue, symbol"):
        Store(store_root).files("ohlcv", exchange="binance")


def test_source_adding_an_empty_column_enriches_stored_rows_in_any_order(tmp_path: Path) -> None:
    bare = funding_batch([(T0, "0.0001"), (T0 + timedelta(hours=8), "0.0002")])
    marked = funding_batch([(T0, "0.0001")], mark_prices=["42000.5"])
    other = SourceInfo(source="with marks", sha256="2" * 64, importer="test", importer_version="1")
    one, two = Store(tmp_path / "one"), Store(tmp_path / "two")
    one.write("funding", bare, INFO)
    one.write("funding", marked, other)
    two.write("funding", marked, other)
    two.write("funding", bare, INFO)
    assert one.scan("funding").collect()["mark_price"].to_list() == [Decimal("42000.5"), None]
    assert _snapshot(tmp_path / "one") == _snapshot(tmp_path / "two")


def test_different_value_beside_an_added_column_is_still_a_conflict(store_root: Path) -> None:
    store = Store(store_root)
    store.write("funding", funding_batch([(T0, "0.0001")]), INFO)
    with pytest.raises(ConflictError, match=r"1 keys \(venue, symbol, ts\) are already stored"):
        store.write("funding", funding_batch([(T0, "0.0003")], mark_prices=["42000.5"]), INFO)

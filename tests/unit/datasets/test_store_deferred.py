"""``Store.deferred()``: writes committed together are the files of one commit per write, and fail the same way.

Every batch here is hand-made (``tests.kit.store``), and the freqtrade files are synthetic, written by
the test in freqtrade's feather layout (``datasets/importers/freqtrade.py``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import ConflictError, SourceFormatError, StoreError
from datasets.pipeline import import_paths
from datasets.store import SourceInfo, Store
from tests.kit.store import funding_batch, ohlcv_batch

T0 = datetime(2023, 12, 31, 22, tzinfo=UTC)
FIRST = SourceInfo(source="first", sha256="1" * 64, importer="test", importer_version="1")
SECOND = SourceInfo(source="second", sha256="2" * 64, importer="test", importer_version="1")


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


def _writes() -> list[tuple[str, pl.DataFrame, SourceInfo]]:
    # Two writes share the 2024 bar partition (hours 2-4 of the first overlap the second's), a third
    # is another kind: the second write must merge onto the first's staged rows and lineage.
    return [
        ("ohlcv", ohlcv_batch(_bars(T0, 5)), FIRST),
        ("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=2), 5, base=102)), SECOND),
        ("funding", funding_batch([(T0 + timedelta(hours=2), "0.0001")]), FIRST),
    ]


def test_deferred_writes_store_the_bytes_of_one_commit_per_write(tmp_path: Path) -> None:
    one_by_one, deferred = Store(tmp_path / "a"), Store(tmp_path / "b")
    for kind, batch, info in _writes():
        one_by_one.write(kind, batch, info)
    with deferred.deferred():
        summaries = [deferred.write(kind, batch, info) for kind, batch, info in _writes()]
        assert deferred.files("ohlcv") == [], "staged writes reach the disk when the block ends"
    assert _snapshot(tmp_path / "b") == _snapshot(tmp_path / "a")
    # 2023 and 2024 by the first write, 2024 again by the second, the funding year by the third.
    assert [len(s.partitions_written) for s in summaries] == [2, 1, 1]
    [partition] = [p for p in deferred.partitions("ohlcv") if p.values["year"] == "2024"]
    # Hours 0-6 of 2024: the first write's hours 2-4 (00:00-02:00) and the second's 2-6 (00:00-04:00), merged.
    assert partition.rows == 5
    assert [e.source for e in partition.lineage] == ["first", "second"]


def _temps(root: Path) -> list[Path]:
    return sorted(root.rglob(".data.parquet.tmp-*"))


def _wait_for_temps(root: Path, count: int) -> list[Path]:
    # Encoding runs in the store's threads: wait for the state, not for a time (the machine may be loaded).
    deadline = time.monotonic() + 120
    while len(found := _temps(root)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def test_staged_partitions_are_encoded_inside_the_block_and_no_temp_file_outlives_it(store_root: Path) -> None:
    store = Store(store_root)
    with store.deferred():
        store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), FIRST)  # 22:00 to 00:00: the 2023 and 2024 partitions
        assert len(_wait_for_temps(store_root, 2)) == 2, "each staged partition is encoded before the commit"
        assert store.files("ohlcv") == []
        # 01:00 of 2024 stages that partition again: its first encoding is discarded, a new one started.
        store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 1, base=103)), SECOND)
    assert _temps(store_root) == []
    [partition] = [p for p in store.partitions("ohlcv") if p.values["year"] == "2024"]
    assert (partition.rows, [e.source for e in partition.lineage]) == (2, ["first", "second"])


def _fail_after_an_encoding(store: Store) -> None:
    with store.deferred():
        store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), FIRST)
        _wait_for_temps(store.root, 1)
        raise RuntimeError("interrupted")


def test_a_failed_block_leaves_no_temp_file(store_root: Path) -> None:
    store = Store(store_root)
    with pytest.raises(RuntimeError, match="interrupted"):
        _fail_after_an_encoding(store)
    assert (_temps(store_root), store.files("ohlcv")) == ([], [])


def test_rewriting_staged_rows_inside_the_block_leaves_them_unchanged(store_root: Path) -> None:
    store = Store(store_root)
    batch = ohlcv_batch(_bars(T0, 5))
    with store.deferred():
        store.write("ohlcv", batch, FIRST)
        again = store.write("ohlcv", batch, FIRST)
    assert (len(again.partitions_written), len(again.partitions_unchanged)) == (0, 2)


def _write_a_conflict(store: Store) -> None:
    with store.deferred():
        store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), FIRST)
        # The same hours from 22:00 with other prices (and one more, 01:00 of 2024): a conflict.
        store.write("ohlcv", ohlcv_batch(_bars(T0, 4, base=200)), SECOND)


def _fail_inside_the_block(store: Store) -> None:
    with store.deferred():
        store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=1), 3, base=101)), SECOND)
        raise RuntimeError("interrupted")


def test_conflict_commits_the_writes_before_it_and_nothing_of_its_own(store_root: Path) -> None:
    store = Store(store_root)
    with pytest.raises(ConflictError, match="second"):
        _write_a_conflict(store)
    stored = store.scan("ohlcv").collect()
    assert stored["ts"].to_list() == [T0 + timedelta(hours=i) for i in range(3)]
    assert {e.source for p in store.partitions("ohlcv") for e in p.lineage} == {"first"}


def test_another_error_in_the_block_commits_nothing(store_root: Path) -> None:
    store = Store(store_root)
    store.write("ohlcv", ohlcv_batch(_bars(T0, 1)), FIRST)
    before = _snapshot(store_root)
    with pytest.raises(RuntimeError, match="interrupted"):
        _fail_inside_the_block(store)
    assert _snapshot(store_root) == before


def test_a_full_row_budget_commits_before_the_block_ends(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("datasets.store.DEFERRED_ROWS", 4)
    store = Store(store_root)
    with store.deferred():
        store.write("ohlcv", ohlcv_batch(_bars(T0, 3)), FIRST)
        assert store.files("ohlcv") == []  # 3 rows staged, under the budget of 4
        store.write("ohlcv", ohlcv_batch(_bars(T0 + timedelta(hours=3), 1, base=103)), SECOND)
        assert len(store.files("ohlcv")) == 2  # 4 rows: committed inside the block


def test_blocks_do_not_nest(store_root: Path) -> None:
    store = Store(store_root)
    with pytest.raises(StoreError, match="already active"), store.deferred(), store.deferred():
        pass


def _feather(path: Path, start: datetime, closes: list[str]) -> None:
    # Synthetic freqtrade candles: open = low = close - 1, high = close + 1, volume 1.
    path.parent.mkdir(parents=True, exist_ok=True)
    values = [float(c) for c in closes]
    pl.DataFrame(
        {
            "date": [start + timedelta(hours=i) for i in range(len(values))],
            "open": [v - 1 for v in values],
            "high": [v + 1 for v in values],
            "low": [v - 1 for v in values],
            "close": values,
            "volume": [1.0] * len(values),
        },
        schema_overrides={"date": pl.Datetime("ms", "UTC")},
    ).write_ipc(path)


def test_import_of_a_folder_stores_the_bytes_of_one_write_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    _feather(folder / "BTC_USDT-1h.feather", T0, ["100.5", "101.25", "102"])
    # The same series from a second download, overlapping one bar and reaching into 2024.
    _feather(folder / "later" / "BTC_USDT-1h.feather", T0 + timedelta(hours=1), ["101.25", "102", "103.75"])
    _feather(folder / "ETH_USDT-1h.feather", T0, ["2000.5", "2001"])
    report = import_paths([folder], Store(tmp_path / "imported"))
    # In sorted order: BTC (22:00 to 00:00: 2023 and 2024), ETH (2023), later/BTC (23:00 to 01:00: 2023 gains
    # a lineage entry, 2024 a bar): 2 + 1 + 2 partitions written, 3 + 2 + 3 rows offered.
    assert (report.files, report.rows, report.partitions_written) == (3, 8, 5)
    one_by_one = Store(tmp_path / "one_by_one")
    for name in ("BTC_USDT-1h.feather", "ETH_USDT-1h.feather", "later/BTC_USDT-1h.feather"):
        import_paths([folder / name], one_by_one)
    assert _snapshot(tmp_path / "imported") == _snapshot(tmp_path / "one_by_one")


def test_import_keeps_the_files_before_a_conflicting_one(tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    _feather(folder / "BTC_USDT-1h.feather", T0, ["100.5", "101.25"])
    _feather(folder / "ETH_USDT-1h.feather", T0, ["2000.5"])
    _feather(folder / "later" / "BTC_USDT-1h.feather", T0, ["100.5", "999"])  # hour 23:00 disagrees
    store = Store(tmp_path / "store")
    with pytest.raises(ConflictError, match=r"later/BTC_USDT-1h\.feather"):
        import_paths([folder], store)
    assert store.scan("ohlcv").collect().group_by("symbol").len().sort("symbol").rows() == [
        ("BTC-USDT", 2),
        ("ETH-USDT", 1),
    ]


def test_a_bad_file_after_a_conflicting_one_fails_the_import_and_keeps_nothing(tmp_path: Path) -> None:
    # Staging runs while later files are read: a conflict must not commit the files before it until
    # every later file has passed, or a bad file after the conflict would leave a half-imported store.
    folder = tmp_path / "binance"
    _feather(folder / "BTC_USDT-1h.feather", T0, ["100.5", "101.25"])
    _feather(folder / "later" / "BTC_USDT-1h.feather", T0, ["100.5", "999"])  # hour 23:00 disagrees
    (folder / "later" / "zzz" / "SOL_USDT-1h.feather").parent.mkdir(parents=True)
    (folder / "later" / "zzz" / "SOL_USDT-1h.feather").write_bytes(b"ARROW1 not a feather file")
    store = Store(tmp_path / "store")
    with pytest.raises(SourceFormatError, match=r"SOL_USDT-1h\.feather"):
        import_paths([folder], store)
    assert (store.files("ohlcv"), _temps(tmp_path / "store")) == ([], [])

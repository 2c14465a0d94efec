"""Hyperliquid fundingHistory CSV: the real BTC/ETH history, its 8h -> 1h clock change, and bad files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import SourceFormatError
from datasets.importers import ImportOptions
from datasets.importers.base import sha256_of
from datasets.importers.hyperliquid import HyperliquidFundingCsvImporter
from datasets.store import SourceInfo, Store

IMPORTER = HyperliquidFundingCsvImporter()
HEADER = "timestamp,symbol,funding_rate,premium"
# First rows of hyperliquid_api/funding_history_BTC_ETH.csv (Hyperliquid fundingHistory saved as CSV).
ROW_1 = "2023-05-12T00:00:00.048000+00:00,BTC,-0.0006133368,-0.0009133368"
ROW_2 = "2023-05-12T08:00:00.388000+00:00,BTC,-0.000745027,-0.001045027"
CLOCK_CHANGE = datetime(2023, 6, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(shared_data: Path) -> pl.DataFrame:
    [batch] = IMPORTER.read(shared_data / "hyperliquid_api" / "funding_history_BTC_ETH.csv", ImportOptions())
    assert batch.kind == "funding"
    return batch.frame


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "funding_history.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_history_reads_47096_settlements_of_two_coins(history: pl.DataFrame) -> None:
    assert history.height == 47_096
    counts = dict(history.group_by("symbol").len().iter_rows())
    assert counts == {"BTC-USDC-PERP": 23_548, "ETH-USDC-PERP": 23_548}
    assert history.select("venue").unique().item() == "hyperliquid"


def test_real_history_first_settlement_is_snapped_and_exact(history: pl.DataFrame) -> None:
    first = history.row(0, named=True)
    # Published at 00:00:00.048: the jitter is snapped to the settlement minute.
    assert (first["symbol"], first["ts"]) == ("BTC-USDC-PERP", datetime(2023, 5, 12, tzinfo=UTC))
    assert first["rate"] == Decimal("-0.0006133368")
    assert first["premium"] == Decimal("-0.0009133368")


def test_real_history_scientific_premium_converts_exactly(history: pl.DataFrame) -> None:
    # The source writes this premium as "-3.88114e-05".
    row = history.filter((pl.col("symbol") == "BTC-USDC-PERP") & (pl.col("ts") == datetime(2023, 6, 7, 8, tzinfo=UTC)))
    assert row["premium"].item() == Decimal("-0.0000388114")


def test_real_history_interval_changes_from_8h_to_1h_on_2023_06_08(history: pl.DataFrame) -> None:
    for symbol in ("BTC-USDC-PERP", "ETH-USDC-PERP"):
        coin = history.filter(pl.col("symbol") == symbol)
        before = coin.filter(pl.col("ts") < CLOCK_CHANGE)["interval"]
        after = coin.filter(pl.col("ts") >= CLOCK_CHANGE)["interval"]
        # 2023-05-12 00:00 to 2023-06-08 00:00 every 8 hours: 27 days x 3 + 1 settlements.
        assert before.to_list() == ["8h"] * 82
        assert set(after.to_list()) == {"1h"}
        assert coin.filter(pl.col("ts") == CLOCK_CHANGE)["interval"].item() == "1h"


def test_real_history_written_to_store_reads_back_exact_rate(shared_data: Path, store_root: Path) -> None:
    path = shared_data / "hyperliquid_api" / "funding_history_BTC_ETH.csv"
    store = Store(store_root)
    for batch in IMPORTER.read(path, ImportOptions()):
        store.write(batch.kind, batch.frame, SourceInfo(str(path), sha256_of(path), IMPORTER.name, IMPORTER.version))
    stored = store.scan("funding", venue="hyperliquid", symbol="BTC-USDC-PERP").collect()
    assert stored.height == 23_548
    assert stored.filter(pl.col("ts") == datetime(2023, 5, 12, tzinfo=UTC))["rate"].item() == Decimal("-0.0006133368")


def test_empty_premium_reads_as_null(tmp_path: Path) -> None:
    [batch] = IMPORTER.read(_write(tmp_path, [HEADER, ROW_1, ROW_2.rsplit(",", 1)[0] + ","]), ImportOptions())
    assert batch.frame["premium"].to_list() == [Decimal("-0.0009133368"), None]


def test_sniff_accepts_header_and_rejects_other_csv(tmp_path: Path) -> None:
    assert IMPORTER.sniff(_write(tmp_path, [HEADER, ROW_1]))
    other = tmp_path / "other.csv"
    other.write_text("timestamp,symbol,rate\n")
    assert not IMPORTER.sniff(other)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HEADER.replace("funding_rate", "rate"), ROW_1], "column 'funding_rate' is missing"),
        ([HEADER, ROW_1, ROW_2.replace("2023-05-12T08", "12/05/2023 08", 1)], "line 3, field 'timestamp'"),
        ([HEADER, ROW_1, ROW_2.replace("-0.000745027", "-0.00o745027", 1)], "line 3, field 'funding_rate'"),
        ([HEADER, ROW_1, "2023-05-12T08:00:00.388000+00:00,BTC"], "line 3, field 'funding_rate': is missing"),
        ([HEADER, ROW_1, ROW_2.replace(",BTC,", ",BTC/USD,", 1)], "line 3, field 'symbol'"),
    ],
    ids=["renamed-column", "bad-timestamp", "bad-number", "truncated", "bad-symbol"],
)
def test_malformed_history_raises_naming_file_and_row(tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write(tmp_path, lines)
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ".*" + message):
        IMPORTER.read(path, ImportOptions())

"""Binance website funding exports: UK local time to UTC across DST, percent rates, and refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from datasets.errors import SourceFormatError
from datasets.importers import ImportOptions
from datasets.importers.base import sha256_of
from datasets.importers.binance_export import BinanceFundingExportImporter
from datasets.importers.freqtrade import FreqtradeImporter
from datasets.store import SourceInfo, Store

IMPORTER = BinanceFundingExportImporter()
LONDON = ImportOptions(tz=ZoneInfo("Europe/London"))
USDT_EXPORT = "Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv"
CM_EXPORT = "Funding Rate History_BTCUSD CM Perpetual_2024-08-09.csv"
HEADER = '"Time","Contracts","Funding Interval","Funding Rate"'


def _row(local: str, rate: str = "0.010000%", contract: str = "BTCUSDT Perpetual", interval: str = "8h") -> str:
    return f'"{local}","{contract}","{interval}","{rate}"'


def _write(tmp_path: Path, rows: list[str]) -> Path:
    # Layout of messy_formats/raw_binance/Funding Rate History_*.csv: BOM, quoted fields, newest first.
    path = tmp_path / "Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([HEADER, *rows]).encode() + b"\n")
    return path


@pytest.fixture(scope="module")
def usdt_export(shared_data: Path) -> pl.DataFrame:
    [batch] = IMPORTER.read(shared_data / "messy_formats" / "raw_binance" / USDT_EXPORT, LONDON)
    assert batch.kind == "funding"
    return batch.frame


def _at(frame: pl.DataFrame, ts: datetime) -> dict[str, object]:
    row: dict[str, object] = frame.filter(pl.col("ts") == ts).row(0, named=True)
    return row


def test_real_export_reads_every_settlement_as_8h_usdt_perp(usdt_export: pl.DataFrame) -> None:
    assert usdt_export.height == 5_386
    assert usdt_export.select("venue", "symbol", "interval").unique().rows() == [("binance", "BTC-USDT-PERP", "8h")]
    assert usdt_export["ts"].is_sorted()
    assert usdt_export["ts"].is_unique().all()


def test_real_export_summer_row_is_one_hour_behind_in_utc(usdt_export: pl.DataFrame) -> None:
    # "2024-08-09 09:00:00" is BST (UTC+1): the 08:00 UTC settlement, rate 0.002184 %.
    row = _at(usdt_export, datetime(2024, 8, 9, 8, tzinfo=UTC))
    assert row["rate"] == Decimal("0.00002184")
    assert row["_row"] == 1


def test_real_export_winter_row_equals_utc(usdt_export: pl.DataFrame) -> None:
    # "2024-03-30 08:00:00" is GMT (UTC+0), the day before the clocks went forward: rate 0.032267 %.
    assert _at(usdt_export, datetime(2024, 3, 30, 8, tzinfo=UTC))["rate"] == Decimal("0.00032267")


def test_real_export_ambiguous_autumn_hour_resolves_by_funding_clock(usdt_export: pl.DataFrame) -> None:
    # "2023-10-29 01:00:00" happened twice in London (BST, then GMT); 8h after 16:00 UTC is 00:00 UTC.
    row = _at(usdt_export, datetime(2023, 10, 29, 0, tzinfo=UTC))
    assert row["_row"] == 858 - 1  # file line 858
    assert usdt_export.filter(pl.col("ts") == datetime(2023, 10, 29, 1, tzinfo=UTC)).height == 0


def test_real_export_agrees_with_independent_api_series(shared_data: Path, usdt_export: pl.DataFrame) -> None:
    feather = shared_data / "binance_freqtrade" / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"
    [api] = FreqtradeImporter().read(feather, ImportOptions(venue="binance"))
    joined = usdt_export.join(api.frame.select("ts", pl.col("rate").alias("api_rate")), on="ts", how="left")
    # Every converted instant, across five years of DST changes, is a settlement the API also reports.
    assert joined["api_rate"].null_count() == 0
    # The website rounds the percentage to 6 places: rates agree to 1e-8 absolute.
    assert joined.select((pl.col("rate") - pl.col("api_rate")).abs().max()).item() <= Decimal("0.00000001")


def test_real_coin_margined_export_maps_to_usd_perp(shared_data: Path) -> None:
    [batch] = IMPORTER.read(shared_data / "messy_formats" / "raw_binance" / CM_EXPORT, LONDON)
    assert batch.frame.height == 1_000
    assert batch.frame["symbol"].unique().to_list() == ["BTC-USD-PERP"]
    assert _at(batch.frame, datetime(2024, 8, 9, 8, tzinfo=UTC))["rate"] == Decimal("0.0001")


def test_real_export_written_to_store_reads_back_exact_rate(shared_data: Path, store_root: Path) -> None:
    path = shared_data / "messy_formats" / "raw_binance" / USDT_EXPORT
    store = Store(store_root)
    for batch in IMPORTER.read(path, LONDON):
        store.write(batch.kind, batch.frame, SourceInfo(str(path), sha256_of(path), IMPORTER.name, IMPORTER.version))
    stored = store.scan("funding", venue="binance", symbol="BTC-USDT-PERP").collect()
    assert stored.height == 5_386
    assert stored.filter(pl.col("ts") == datetime(2024, 8, 9, 8, tzinfo=UTC))["rate"].item() == Decimal("0.00002184")


def test_export_without_tz_raises_asking_for_tz(tmp_path: Path) -> None:
    path = _write(tmp_path, [_row("2024-08-09 09:00:00")])
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ".*pass it with --tz .*Europe/London"):
        IMPORTER.read(path, ImportOptions())


def test_sniff_accepts_export_header_with_bom(tmp_path: Path) -> None:
    assert IMPORTER.sniff(_write(tmp_path, [_row("2024-08-09 09:00:00")]))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [_row("2024-08-09 09:00:00"), _row("2024-08-09 01:00:00").replace("8h", "")],
            "line 3, field 'Funding Interval': is empty",
        ),
        ([_row("2024-08-09 09:00:00"), _row("09/08/2024 01:00")], "line 3, field 'Time': expected a local time"),
        (
            [_row("2024-08-09 09:00:00"), _row("2024-08-09 01:00:00", rate="0.0001")],
            "line 3, field 'Funding Rate': expected a percentage",
        ),
        (
            [_row("2024-08-09 09:00:00"), _row("2024-08-09 01:00:00", rate="n/a%")],
            "line 3, field 'Funding Rate': expected a decimal",
        ),
        (
            [_row("2024-08-09 09:00:00"), _row("2024-08-09 01:00:00", contract="BTCUSDT Quarterly 0927")],
            "line 3, field 'Contracts'",
        ),
        (
            [_row("2024-08-09 09:00:00"), _row("2024-08-09 01:00:00", interval="8 hours")],
            "line 3, field 'Funding Interval'",
        ),
        (
            [_row("2024-08-09 09:00:00"), '"2024-08-09 01:00:00","BTCUSDT Perpetual"'],
            "line 3, field 'Funding Interval': is missing",
        ),
        (
            [_row("2024-03-31 09:00:00"), _row("2024-03-31 01:30:00")],
            "line 3, field 'Time': local time '2024-03-31 01:30:00' does not exist",
        ),
        ([_row("2023-10-29 01:00:00")], "line 2, field 'Time': local time '2023-10-29 01:00:00' occurs twice"),
    ],
    ids=[
        "empty-interval",
        "bad-timestamp",
        "not-percent",
        "bad-number",
        "not-perpetual",
        "bad-interval",
        "truncated",
        "non-existent",
        "ambiguous",
    ],
)
def test_malformed_export_raises_naming_file_and_row(tmp_path: Path, rows: list[str], message: str) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": " + message):
        IMPORTER.read(path, LONDON)


def test_renamed_column_raises_naming_column(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(HEADER.replace("Funding Rate", "Rate") + "\n" + _row("2024-08-09 09:00:00") + "\n")
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ": column 'Funding Rate' is missing"):
        IMPORTER.read(path, LONDON)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_export_read_in_wrong_zone_is_refused_off_the_funding_clock(shared_data: Path, zone: str) -> None:
    path = shared_data / "messy_formats/raw_binance/Funding Rate History_BTCUSDT Perpetual_2024-08-09.csv"
    with pytest.raises(SourceFormatError, match=rf"read in {zone} is \d\d:00 UTC, which is not on Binance's funding"):
        BinanceFundingExportImporter().read(path, ImportOptions(tz=ZoneInfo(zone)))

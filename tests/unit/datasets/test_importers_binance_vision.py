"""Binance public-dump kline CSVs: real monthly dumps, header-less and microsecond variants, bad files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import EmptyInputError, SourceFormatError
from datasets.importers import ImportOptions
from datasets.importers.base import sha256_of
from datasets.importers.binance_vision import BinanceVisionImporter
from datasets.store import SourceInfo, Store

IMPORTER = BinanceVisionImporter()
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)
# The first two LINKUSDT-1m-2026-02 rows, in the dump's own layout (data.binance.vision, USDT-M 1m klines).
ROW_1 = "1769904000000,9.982,9.990,9.974,9.987,24464.35,1769904059999,244198.04745,782,9388.60,93722.16297,0"
ROW_2 = "1769904060000,9.986,9.986,9.972,9.976,11394.34,1769904119999,113691.69260,541,6072.95,60592.76611,0"


def _write(directory: Path, name: str, lines: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path: Path) -> pl.DataFrame:
    [batch] = IMPORTER.read(path, ImportOptions())
    assert batch.kind == "ohlcv"
    return batch.frame


@pytest.mark.parametrize(
    ("name", "rows", "first_ts", "first_open", "last_ts"),
    [
        # February 2026 has 28 days: 28 x 1440 one-minute bars.
        (
            "LINKUSDT-1m-2026-02.csv",
            40_320,
            datetime(2026, 2, 1, tzinfo=UTC),
            "9.982",
            datetime(2026, 2, 28, 23, 59, tzinfo=UTC),
        ),
        # February 2024 is a leap month: 29 x 1440.
        (
            "AVAXUSDT-1m-2024-02.csv",
            41_760,
            datetime(2024, 2, 1, tzinfo=UTC),
            "33.1730",
            datetime(2024, 2, 29, 23, 59, tzinfo=UTC),
        ),
    ],
)
def test_real_monthly_dump_reads_every_minute_exactly(
    shared_data: Path, name: str, rows: int, first_ts: datetime, first_open: str, last_ts: datetime
) -> None:
    frame = _read(shared_data / "binance_vision" / name)
    assert frame.height == rows
    assert frame["ts"].is_unique().all()
    assert frame["ts"][0] == first_ts
    assert frame["ts"][-1] == last_ts
    assert frame["open"][0] == Decimal(first_open)
    assert frame["_row"][0] == 1  # line 0 is the header
    assert frame.select("venue", "symbol", "market", "price_type", "interval").unique().rows() == [
        ("binance", name.split("USDT")[0] + "-USDT-PERP", "perp", "trade", "1m")
    ]


def test_real_dump_first_bar_keeps_published_decimals(shared_data: Path) -> None:
    first = _read(shared_data / "binance_vision" / "LINKUSDT-1m-2026-02.csv").row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        Decimal("9.982"),
        Decimal("9.990"),
        Decimal("9.974"),
        Decimal("9.987"),
        Decimal("24464.35"),
    )


def test_real_dump_written_to_store_reads_back_exact_close(shared_data: Path, store_root: Path) -> None:
    path = shared_data / "binance_vision" / "LINKUSDT-1m-2026-02.csv"
    store = Store(store_root)
    for batch in IMPORTER.read(path, ImportOptions()):
        store.write(batch.kind, batch.frame, SourceInfo(str(path), sha256_of(path), IMPORTER.name, IMPORTER.version))
    stored = store.scan("ohlcv", symbol="LINK-USDT-PERP", interval="1m").collect()
    assert stored.height == 40_320
    assert stored.filter(pl.col("ts") == datetime(2026, 2, 1, 0, 1, tzinfo=UTC))["close"].item() == Decimal("9.976")


def test_headerless_microsecond_dump_reads_same_instants(tmp_path: Path) -> None:
    in_us = [
        row.replace("1769904000000", "1769904000000000").replace("1769904060000", "1769904060000000")
        for row in (ROW_1, ROW_2)
    ]
    headerless = _write(tmp_path, "LINKUSDT-1m-2026-02.csv", in_us)
    assert IMPORTER.sniff(headerless)
    frame = _read(headerless)
    assert frame["ts"].to_list() == [datetime(2026, 2, 1, 0, 0, tzinfo=UTC), datetime(2026, 2, 1, 0, 1, tzinfo=UTC)]
    assert frame["_row"].to_list() == [0, 1]


def test_spot_folder_gives_spot_symbol(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "spot" / "monthly" / "klines" / "LINKUSDT" / "1m"
    frame = _read(_write(folder, "LINKUSDT-1m-2026-02.csv", [ROW_1]))
    assert frame.select("symbol", "market").row(0) == ("LINK-USDT", "spot")


def test_mark_price_folder_gives_mark_bars_without_volume(tmp_path: Path) -> None:
    folder = tmp_path / "futures" / "um" / "monthly" / "markPriceKlines" / "LINKUSDT" / "1m"
    frame = _read(_write(folder, "LINKUSDT-1m-2026-02.csv", [HEADER, ROW_1]))
    assert frame.select("price_type", "volume").row(0) == ("mark", None)


def test_other_csv_is_not_sniffed(tmp_path: Path) -> None:
    assert not IMPORTER.sniff(_write(tmp_path, "LINKUSDT-1m-2026-02.csv", ["date,price", "2026-02-01,9.9"]))
    assert not IMPORTER.sniff(_write(tmp_path, "prices.csv", [HEADER, ROW_1]))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HEADER.replace("close,", "closing,", 1), ROW_1], "column 'close' is missing"),
        ([HEADER, ROW_1, ROW_2.replace("1769904060000", "2026-02-01 00:01", 1)], "line 3, field 'open_time'"),
        (
            [HEADER, ROW_1, ROW_2.replace("9.976", "9,976", 1)],
            "line 3, field '#13': expected 12 fields like the first line, was 13",
        ),
        ([HEADER, ROW_1, ROW_2.replace(",9.976", ",n/a", 1)], "line 3, field 'close': expected a decimal number"),
        ([HEADER, ROW_1, "1769904060000,9.986,9.98"], "line 3, field 'low': is missing.*truncated"),
    ],
    ids=["renamed-column", "bad-timestamp", "extra-field", "bad-number", "truncated"],
)
def test_malformed_dump_raises_naming_file_and_row(tmp_path: Path, lines: list[str], message: str) -> None:
    path = _write(tmp_path, "LINKUSDT-1m-2026-02.csv", lines)
    with pytest.raises(SourceFormatError, match=re.escape(str(path)) + ".*" + message):
        _read(path)


def test_header_only_dump_raises_empty_input(tmp_path: Path) -> None:
    path = _write(tmp_path, "LINKUSDT-1m-2026-02.csv", [HEADER])
    with pytest.raises(EmptyInputError, match=re.escape(str(path)) + ": expected a Binance kline CSV with data lines"):
        _read(path)


def test_empty_file_raises_empty_input(tmp_path: Path) -> None:
    path = _write(tmp_path, "LINKUSDT-1m-2026-02.csv", [])
    with pytest.raises(EmptyInputError, match=re.escape(str(path)) + ": expected a Binance kline CSV with data lines"):
        _read(path)


def test_second_bars_raise_unsupported_interval(tmp_path: Path) -> None:
    path = _write(tmp_path, "LINKUSDT-1s-2026-02-01.csv", [HEADER, ROW_1])
    with pytest.raises(SourceFormatError, match=r"LINKUSDT-1s-2026-02-01\.csv: interval '1s' cannot be stored"):
        _read(path)


def test_premium_index_klines_raise_not_prices(tmp_path: Path) -> None:
    path = _write(tmp_path / "premiumIndexKlines" / "LINKUSDT" / "1m", "LINKUSDT-1m-2026-02.csv", [HEADER, ROW_1])
    with pytest.raises(SourceFormatError, match="premiumIndexKlines hold the premium index"):
        _read(path)

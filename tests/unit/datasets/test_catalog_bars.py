"""datasets.catalog.bars and files: close-time stamping, rounding, Nautilus' own layout and schema."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from nautilus_trader.model import Bar, BarType, InstrumentId, MarkPriceUpdate, Price, Quantity
from nautilus_trader.persistence import ParquetDataCatalog

from datasets.catalog.bars import (
    bar_close,
    bar_step,
    bar_type_text,
    bars_table,
    decimals_of,
    price_updates_table,
    round_to_increment,
    round_to_precision,
)
from datasets.catalog.files import custom_directory_name, file_name, instrument_directory_name, write_parquet
from tests.kit.store import canonical_frame

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR_NS = 3_600 * 10**9
T0_NS = int(T0.timestamp()) * 10**9


def decimals(values: list[str]) -> pl.Series:
    return pl.Series(values).cast(pl.Decimal(38, 18))


@pytest.mark.parametrize(
    ("interval", "step", "aggregation"),
    [("1m", 1, "MINUTE"), ("15m", 15, "MINUTE"), ("4h", 4, "HOUR"), ("1d", 1, "DAY"), ("1w", 7, "DAY")],
)
def test_bar_step_maps_store_interval(interval: str, step: int, aggregation: str) -> None:
    assert bar_step(interval) == (step, aggregation)


def test_bar_type_text_parses_as_nautilus_bar_type() -> None:
    text = bar_type_text("BTCUSDT-PERP.BINANCE", "8h", "mark")
    assert text == "BTCUSDT-PERP.BINANCE-8-HOUR-MARK-EXTERNAL"
    assert str(BarType.from_str(text)) == text


def test_bar_type_text_refuses_index_bars() -> None:
    with pytest.raises(ValueError, match="price type must be one of trade, mark to make bars, was 'index'"):
        bar_type_text("BTCUSDT-PERP.BINANCE", "1h", "index")


@pytest.mark.parametrize(
    ("interval", "close"), [("1m", "2024-01-01T00:01"), ("1h", "2024-01-01T01:00"), ("1d", "2024-01-02T00:00")]
)
def test_bar_close_is_open_plus_interval(interval: str, close: str) -> None:
    frame = pl.DataFrame({"ts": [T0]}).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    assert frame.select(bar_close(pl.col("ts"), interval)).item() == datetime.fromisoformat(close).replace(tzinfo=UTC)


def test_round_to_precision_is_half_to_even() -> None:
    rounded = decimals(["0.25", "0.35", "-0.25", "1.2345"]).to_frame("x").select(round_to_precision(pl.col("x"), 1))
    assert rounded["x"].to_list() == [Decimal("0.2"), Decimal("0.4"), Decimal("-0.2"), Decimal("1.2")]
    assert rounded.schema["x"] == pl.Decimal(38, 16)


def test_round_to_increment_snaps_to_a_coarse_tick() -> None:
    frame = decimals(["42005.25", "42005.35", "0.25", "100.74", "100.75"]).to_frame("x")
    by_dime = frame.select(round_to_increment(pl.col("x"), Decimal("0.10")))["x"].to_list()
    by_half = frame.select(round_to_increment(pl.col("x"), Decimal("0.5")))["x"].to_list()
    assert by_dime == [Decimal("42005.2"), Decimal("42005.4"), Decimal("0.2"), Decimal("100.7"), Decimal("100.8")]
    assert by_half == [Decimal("42005.0"), Decimal("42005.5"), Decimal("0.0"), Decimal("100.5"), Decimal("101.0")]


def test_round_to_precision_refuses_beyond_nautilus_scale() -> None:
    with pytest.raises(ValueError, match=r"precision must be within 0..16, was 17"):
        round_to_precision(pl.col("x"), 17)


def test_decimals_of_counts_trailing_zeros() -> None:
    assert [decimals_of(Decimal(t)) for t in ("0.10", "0.5", "1", "0.0010")] == [2, 1, 0, 4]


def ohlcv(rows: list[dict[str, object]]) -> pl.DataFrame:
    return canonical_frame(
        "ohlcv", rows, venue="binance", symbol="BTC-USDT-PERP", market="perp", price_type="trade", interval="1h"
    )


def test_bars_table_stamps_close_and_rounds_to_tick() -> None:
    frame = ohlcv(
        [
            {
                "ts": T0,
                "open": "42000.04",
                "high": "42010.15",
                "low": "41990.26",
                "close": "42005.25",
                "volume": "1.2345",
            },
            {"ts": T0.replace(hour=1), "open": 42005, "high": 42006, "low": 42004, "close": 42005, "volume": None},
        ]
    )
    table = bars_table(
        frame,
        bar_type="BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL",
        instrument_id="BTCUSDT-PERP.BINANCE",
        interval="1h",
        price_increment=Decimal("0.10"),
        size_precision=3,
    )
    rows = table.to_pylist()
    assert [r["ts_event"].value for r in rows] == [T0_NS + HOUR_NS, T0_NS + 2 * HOUR_NS]
    assert [r["ts_init"].value for r in rows] == [r["ts_event"].value for r in rows]
    assert (rows[0]["open"], rows[0]["high"], rows[0]["low"], rows[0]["close"]) == (
        Decimal("42000.0"),
        Decimal("42010.2"),
        Decimal("41990.3"),
        Decimal("42005.2"),
    )
    assert [r["volume"] for r in rows] == [Decimal("1.234"), Decimal("0")]
    assert table.schema.metadata == {
        b"bar_type": b"BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL",
        b"instrument_id": b"BTCUSDT-PERP.BINANCE",
        b"price_precision": b"2",
        b"size_precision": b"3",
        b"type_name": b"Bar",
    }


def test_bars_table_matches_nautilus_write_bars_file(tmp_path: Path) -> None:
    bar_type = BarType.from_str("BTCUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL")
    frame = ohlcv(
        [
            {"ts": T0, "open": "42000.1", "high": "42010.2", "low": "41990.3", "close": "42005.4", "volume": "12.5"},
            {
                "ts": T0.replace(hour=1),
                "open": "42005.4",
                "high": "42006",
                "low": "42000",
                "close": "42001",
                "volume": 3,
            },
        ]
    )
    ours = bars_table(
        frame,
        bar_type=str(bar_type),
        instrument_id="BTCUSDT-PERP.BINANCE",
        interval="1h",
        price_increment=Decimal("0.10"),
        size_precision=3,
    )
    bars = [
        Bar(
            bar_type,
            Price.from_str(f"{r['open']:.2f}"),
            Price.from_str(f"{r['high']:.2f}"),
            Price.from_str(f"{r['low']:.2f}"),
            Price.from_str(f"{r['close']:.2f}"),
            Quantity.from_str(f"{r['volume']:.3f}"),
            r["ts_event"].value,
            r["ts_init"].value,
        )
        for r in ours.to_pylist()
    ]
    (tmp_path / "nautilus").mkdir()
    written = ParquetDataCatalog(str(tmp_path / "nautilus")).write_bars(bars)
    theirs = pq.read_table(tmp_path / "nautilus" / written)
    assert theirs.schema.equals(ours.schema, check_metadata=True)
    assert theirs.equals(ours)
    assert Path(written).name == file_name(T0_NS + HOUR_NS, T0_NS + 2 * HOUR_NS)


def test_mark_updates_read_back_through_the_catalog(tmp_path: Path) -> None:
    frame = ohlcv([{"ts": T0, "open": 1, "high": 2, "low": 1, "close": "42005.256", "volume": 0}])
    table = price_updates_table(
        frame, instrument_id="BTCUSDT-PERP.BINANCE", interval="1h", price_precision=2, type_name="MarkPriceUpdate"
    )
    write_parquet(table, tmp_path / "data" / "mark_prices" / "BTCUSDT-PERP.BINANCE")
    updates = ParquetDataCatalog(str(tmp_path)).query_mark_price_updates(["BTCUSDT-PERP.BINANCE"])
    expected = MarkPriceUpdate(
        InstrumentId.from_str("BTCUSDT-PERP.BINANCE"), Price.from_str("42005.26"), T0_NS + HOUR_NS, T0_NS + HOUR_NS
    )
    assert updates == [expected]


def test_file_name_spells_catalog_timestamps() -> None:
    assert file_name(T0_NS, T0_NS + 5) == "2024-01-01T00-00-00-000000000Z_2024-01-01T00-00-00-000000005Z.parquet"


def test_directory_names_follow_nautilus_encoding() -> None:
    assert instrument_directory_name("BTC/USD.KRAKEN-1-HOUR-LAST-EXTERNAL") == "BTCUSD.KRAKEN-1-HOUR-LAST-EXTERNAL"
    assert custom_directory_name("币安-USDT-PERP.BINANCE") == "%E5%B8%81%E5%AE%89-USDT-PERP.BINANCE"
    assert custom_directory_name("1000PEPE-USDT-PERP.BINANCE") == "1000PEPE-USDT-PERP.BINANCE"

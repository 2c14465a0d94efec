"""freqtrade feather importer on the real shared files, and its bad-input errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.errors import SourceFormatError, ValidationError
from datasets.importers import ImportOptions, require_importer
from datasets.importers.freqtrade import FreqtradeImporter
from datasets.schemas import FUNDING, OHLCV
from datasets.validate import validate_batch


def _read(path: Path, **options: str) -> pl.DataFrame:
    (batch,) = require_importer(path).read(path, ImportOptions(**options))  # type: ignore[arg-type]
    return batch.frame


def test_binance_funding_file_named_1h_is_inferred_as_8h_with_exact_rates(shared_data: Path) -> None:
    frame = _read(shared_data / "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather")
    validate_batch(frame, FUNDING, source="binance funding")
    assert frame.height == 7_323  # DATA.md: BTC 7,323 settlements 2019-09 to 2026-05
    assert frame["interval"].unique().to_list() == ["8h"]
    assert frame["symbol"].unique().to_list() == ["BTC-USDT-PERP"]
    assert frame["ts"][0] == datetime(2019, 9, 10, 8, tzinfo=UTC)
    assert frame["rate"][0] == Decimal("0.0001")


def test_hyperliquid_funding_jitter_is_snapped_and_interval_changes_on_2023_06_08(shared_data: Path) -> None:
    frame = _read(shared_data / "hyperliquid_freqtrade/BTC_USDC_USDC-1h-funding_rate.feather")
    assert frame["ts"].dt.second().max() == 0
    assert frame["ts"][0] == datetime(2023, 5, 12, tzinfo=UTC)  # published as 00:00:00.048
    assert frame["rate"][0] == Decimal("-0.0006133368")  # the float 0.0006133368 read back exactly
    first_hourly = frame.filter(pl.col("interval") == "1h")["ts"][0]
    assert first_hourly == datetime(2023, 6, 8, 1, tzinfo=UTC)
    assert frame.filter(pl.col("ts") < first_hourly)["interval"].unique().to_list() == ["8h"]


def test_spot_and_mark_files_map_to_market_and_price_type(shared_data: Path) -> None:
    spot = _read(shared_data / "binance_freqtrade/spot/SOL_USDT-1h.feather")
    mark = _read(shared_data / "bybit_freqtrade/futures/ETH_USDT_USDT-4h-mark.feather")
    validate_batch(spot, OHLCV, source="spot")
    assert spot.select("venue", "symbol", "market", "price_type", "interval").unique().rows() == [
        ("binance", "SOL-USDT", "spot", "trade", "1h")
    ]
    assert mark.select("venue", "symbol", "market", "price_type", "interval").unique().rows() == [
        ("bybit", "ETH-USDT-PERP", "perp", "mark", "4h")
    ]


def _feather(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ipc(path)
    return path


def _candles(**overrides: list[object]) -> pl.DataFrame:
    # The freqtrade layout: date (timestamp UTC) + float64 open/high/low/close/volume.
    data: dict[str, list[object]] = {
        "date": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)],
        "open": [1.0, 2.0, 3.0],
        "high": [1.5, 2.5, 3.5],
        "low": [0.5, 1.5, 2.5],
        "close": [1.2, 2.2, 3.2],
        "volume": [10.0, 11.0, 12.0],
    }
    data.update(overrides)
    return pl.DataFrame(data)


def test_truncated_feather_raises_source_format_error(tmp_path: Path) -> None:
    path = _feather(tmp_path / "binance/BTC_USDT-1h.feather", _candles())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SourceFormatError, match=r"BTC_USDT-1h.feather: not a readable Arrow IPC"):
        FreqtradeImporter().read(path, ImportOptions())


def test_renamed_column_raises_naming_the_missing_column(tmp_path: Path) -> None:
    path = _feather(tmp_path / "binance/BTC_USDT-1h.feather", _candles().rename({"close": "Close"}))
    with pytest.raises(SourceFormatError, match=r"column 'close' is missing.*found date, open, high, low, Close"):
        FreqtradeImporter().read(path, ImportOptions())


def test_text_dates_raise_source_format_error(tmp_path: Path) -> None:
    frame = _candles().with_columns(pl.col("date").dt.strftime("%Y-%m-%d"))
    path = _feather(tmp_path / "binance/BTC_USDT-1h.feather", frame)
    with pytest.raises(SourceFormatError, match=r"column 'date' should be a timestamp, was String"):
        FreqtradeImporter().read(path, ImportOptions())


def test_nan_price_is_rejected_with_row_and_field(tmp_path: Path) -> None:
    path = _feather(tmp_path / "binance/BTC_USDT-1h.feather", _candles(close=[1.2, float("nan"), 3.2]))
    frame = FreqtradeImporter().read(path, ImportOptions())[0].frame
    with pytest.raises(ValidationError, match=r"BTC_USDT-1h.feather: row 1, field 'close': is empty or could not"):
        validate_batch(frame, OHLCV, source=str(path))


def test_negative_price_is_rejected_with_row_and_field(tmp_path: Path) -> None:
    path = _feather(tmp_path / "binance/BTC_USDT-1h.feather", _candles(low=[0.5, -1.0, 2.5]))
    frame = FreqtradeImporter().read(path, ImportOptions())[0].frame
    with pytest.raises(ValidationError, match=r"row 1, field 'low': prices must be > 0, was -1"):
        validate_batch(frame, OHLCV, source=str(path))


def test_file_outside_a_venue_folder_asks_for_venue(tmp_path: Path) -> None:
    path = _feather(tmp_path / "downloads/BTC_USDT-1h.feather", _candles())
    with pytest.raises(SourceFormatError, match=r"cannot tell the venue from the path.*pass --venue"):
        FreqtradeImporter().read(path, ImportOptions())
    assert FreqtradeImporter().read(path, ImportOptions(venue="kraken"))[0].frame["venue"][0] == "kraken"

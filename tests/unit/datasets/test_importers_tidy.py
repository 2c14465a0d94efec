"""Tidy long tables through a declared mapping: a multi-venue funding table built from the real freqtrade files
stores exactly what the native importers store; bad tables and mappings are exit 3 naming file, row and field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from datasets.cli import main
from datasets.errors import SourceFormatError
from datasets.exit_codes import ExitCode
from datasets.importers.base import ImportOptions
from datasets.importers.tidy import TidyImporter, load_mapping
from datasets.store import Store

REPO = Path(__file__).resolve().parents[3]

# Real funding of three venues (../shared/data freqtrade folders): settlement rate in `open`.
SOURCES = {
    "Binance": ("binance_freqtrade/futures/BTC_USDT_USDT-8h-funding_rate.feather", "BTCUSDT"),
    "Bybit": ("bybit_freqtrade/futures/BTC_USDT_USDT-8h-funding_rate.feather", "BTCUSDT"),
    "Hyperliquid": ("hyperliquid_freqtrade/BTC_USDC_USDC-1h-funding_rate.feather", "BTC"),
}
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC)
MAPPING = """
kind = "funding"
ignore = ["note"]
[columns]
ts = "time_ms"
venue = "exchange"
symbol = "ticker"
rate = "funding_rate"
[time]
unit = "ms"
[venues]
Binance = "binance"
Bybit = "bybit"
Hyperliquid = "hyperliquid"
"""


def _long_table(shared_data: Path) -> pl.DataFrame:
    parts = []
    for exchange, (relative, ticker) in SOURCES.items():
        feather = pl.read_ipc(shared_data / relative)
        window = feather.filter((pl.col("date") >= START) & (pl.col("date") < END))
        parts.append(
            window.select(
                pl.col("date").dt.epoch("ms").cast(pl.String).alias("time_ms"),
                pl.lit(exchange).alias("exchange"),
                pl.lit(ticker).alias("ticker"),
                # The rate as the shortest text of the float, which is what the freqtrade importer stores.
                pl.col("open").cast(pl.String).alias("funding_rate"),
                pl.lit("built in the test from the freqtrade file").alias("note"),
            )
        )
    return pl.concat(parts).sort("time_ms")


def _write(tmp_path: Path, table: pl.DataFrame, mapping: str = MAPPING) -> tuple[Path, Path]:
    table_path, mapping_path = tmp_path / "funding_long.csv", tmp_path / "funding.toml"
    table.write_csv(table_path)
    mapping_path.write_text(mapping)
    return table_path, mapping_path


def _funding(store: Path) -> pl.DataFrame:
    frame = Store(store).scan("funding", start=START, end=END).collect()
    return frame.sort("venue", "symbol", "ts")


def test_multi_venue_table_stores_exactly_the_native_importers_rows(shared_data: Path, tmp_path: Path) -> None:
    table = _long_table(shared_data)
    table_path, mapping_path = _write(tmp_path, table)
    native, tidy = tmp_path / "native", tmp_path / "tidy"
    paths = [str(shared_data / relative) for relative, _ in SOURCES.values()]
    assert main(["import", *paths, "--store", str(native), "--no-progress"]) == ExitCode.OK
    argv = ["import", str(table_path), "--mapping", str(mapping_path), "--store", str(tidy), "--no-progress"]
    assert main(argv) == ExitCode.OK
    expected, stored = _funding(native), _funding(tidy)
    # One week: 21 settlements each on the 8-hourly Binance and Bybit clocks, 168 hourly on Hyperliquid.
    assert stored.group_by("venue").len().sort("venue").rows() == [("binance", 21), ("bybit", 21), ("hyperliquid", 168)]
    assert stored.equals(expected)
    assert set(stored["interval"]) == {"8h", "1h"}
    lineage = Store(tidy).partitions("funding")
    assert any(p.values["venue"] == "hyperliquid" for p in lineage)


def test_parquet_with_zoned_datetimes_stores_the_same_rows(shared_data: Path, tmp_path: Path) -> None:
    table = _long_table(shared_data).with_columns(
        pl.col("time_ms").cast(pl.Int64).cast(pl.Datetime("ms", "UTC")).dt.convert_time_zone("Europe/London")
    )
    csv_path, mapping_path = _write(tmp_path, _long_table(shared_data))
    parquet_path = tmp_path / "funding_long.parquet"
    table.write_parquet(parquet_path)
    ns_mapping = tmp_path / "ns.toml"
    ns_mapping.write_text(MAPPING.replace('unit = "ms"', 'unit = "ns"'))
    from_csv, from_parquet = tmp_path / "a", tmp_path / "b"
    assert main(["import", str(csv_path), "--mapping", str(mapping_path), "--store", str(from_csv)]) == ExitCode.OK
    assert main(["import", str(parquet_path), "--mapping", str(ns_mapping), "--store", str(from_parquet)]) == 0
    assert _funding(from_parquet).equals(_funding(from_csv))


def test_percent_rates_local_text_times_and_base_symbols(tmp_path: Path) -> None:
    table = tmp_path / "okx.csv"
    # London summer time (BST, UTC+1): 09:00 local is the 08:00 UTC settlement; 0.01 % is 0.0001.
    table.write_text("when,coin,rate_pct\n2024-07-01 09:00:00,BTC,0.01\n2024-07-01 17:00:00,BTC,-0.0025\n")
    mapping = tmp_path / "okx.toml"
    mapping.write_text(
        'kind = "funding"\n[columns]\nts = "when"\nsymbol = "coin"\nrate = "rate_pct"\n'
        '[time]\nunit = "text"\nformat = "%Y-%m-%d %H:%M:%S"\nzone = "Europe/London"\n'
        '[values]\nrate = "percent"\nsymbols = "base"\nquote = "USDT"\nvenue = "okx"\ninterval = "8h"\n'
    )
    assert main(["import", str(table), "--mapping", str(mapping), "--store", str(tmp_path / "s")]) == ExitCode.OK
    frame = Store(tmp_path / "s").scan("funding").sort("ts").collect()
    assert frame["ts"].to_list() == [datetime(2024, 7, 1, 8, tzinfo=UTC), datetime(2024, 7, 1, 16, tzinfo=UTC)]
    assert frame["rate"].to_list() == [Decimal("0.0001"), Decimal("-0.000025")]
    assert set(frame["symbol"]) == {"BTC-USDT-PERP"}
    assert set(frame["interval"]) == {"8h"}


def test_ohlcv_and_liquidation_tables(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("t,v,s,o,h,l,c,vol\n1704067200,bybit,ETHUSDT,2281.1,2290,2280.5,2289.9,12.5\n")
    bars_map = tmp_path / "bars.toml"
    bars_map.write_text(
        'kind = "ohlcv"\n[columns]\nts = "t"\nvenue = "v"\nsymbol = "s"\nopen = "o"\nhigh = "h"\nlow = "l"\n'
        'close = "c"\nvolume = "vol"\n[time]\nunit = "s"\n[values]\ninterval = "1h"\n'
    )
    liqs = tmp_path / "liqs.csv"
    liqs.write_text("ts,symbol,side,price,qty\n1704067200123,BTCUSDT,SELL,42000.5,0.01\n")
    liqs_map = tmp_path / "liqs.toml"
    liqs_map.write_text(
        'kind = "liquidations"\n[columns]\nts = "ts"\nsymbol = "symbol"\nside = "side"\nprice = "price"\n'
        'quantity = "qty"\n[values]\nvenue = "binance"\n[sides]\nSELL = "long"\nBUY = "short"\n'
    )
    store = tmp_path / "s"
    assert main(["import", str(bars), "--mapping", str(bars_map), "--store", str(store)]) == ExitCode.OK
    assert main(["import", str(liqs), "--mapping", str(liqs_map), "--store", str(store)]) == ExitCode.OK
    bar = Store(store).scan("ohlcv").collect().row(0, named=True)
    assert (bar["symbol"], bar["market"], bar["price_type"], bar["interval"]) == (
        "ETH-USDT-PERP",
        "perp",
        "trade",
        "1h",
    )
    assert (bar["open"], bar["close"], bar["volume"]) == (Decimal("2281.1"), Decimal("2289.9"), Decimal("12.5"))
    liq = Store(store).scan("liquidations").collect().row(0, named=True)
    assert (liq["symbol"], liq["side"], liq["price"], liq["quantity"]) == (
        "BTC-USDT-PERP",
        "long",
        Decimal("42000.5"),
        Decimal("0.01"),
    )
    assert liq["ts"] == datetime(2024, 1, 1, 0, 0, 0, 123_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.with_columns(pl.lit("x").alias("extra")), "column 'extra' is not mapped: name the store field"),
        (lambda t: t.drop("funding_rate"), "column 'funding_rate' (mapped to rate) is missing"),
        (
            lambda t: t.with_columns(
                pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("n/a")).otherwise("funding_rate").alias("funding_rate")
            ),
            "line 5, field 'rate': expected a decimal number, was 'n/a'",
        ),
        (
            lambda t: t.with_columns(
                pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("Binanse")).otherwise("exchange").alias("exchange")
            ),
            "line 2, field 'venue': expected a known venue",
        ),
        (
            lambda t: t.with_columns(
                pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("")).otherwise("time_ms").alias("time_ms")
            ),
            "line 3, field 'ts': is empty",
        ),
    ],
    ids=["unmapped", "missing", "bad-rate", "unknown-venue", "empty-time"],
)
def test_bad_table_is_exit_3_naming_file_row_and_field_and_writes_nothing(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, message: str
) -> None:
    table_path, mapping_path = _write(tmp_path, change(_long_table(shared_data)))  # type: ignore[operator]
    store = tmp_path / "store"
    argv = ["import", str(table_path), "--mapping", str(mapping_path), "--store", str(store)]
    assert main(argv) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert str(table_path) in err
    assert message in err
    assert "Traceback" not in err
    assert not list(store.rglob("*.parquet")) if store.exists() else True


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (MAPPING.replace("[columns]", "[colums]"), r"invalid mapping: Object contains unknown field `colums`"),
        (
            MAPPING.replace('rate = "funding_rate"', 'rate = "funding_rate"\nopen = "o"'),
            r"\[columns\] 'open' is not a field of funding",
        ),
        (MAPPING.replace('rate = "funding_rate"\n', ""), r"\[columns\] maps no 'rate'"),
        (MAPPING.replace('unit = "ms"', 'unit = "ms"\nzone = "Mars/Olympus"'), r"\[time\] zone: expected an IANA zone"),
        (
            MAPPING.replace('unit = "ms"', 'unit = "minutes"'),
            r"invalid mapping: Invalid enum value 'minutes' - at `\$.time.unit`",
        ),
    ],
    ids=["typo", "foreign-field", "unmapped-rate", "zone", "unit"],
)
def test_bad_mapping_names_the_key(tmp_path: Path, mapping: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(mapping)
    with pytest.raises(SourceFormatError, match=message):
        load_mapping(path)


def test_real_uk_local_time_table_equals_the_native_rows_on_every_common_settlement(
    shared_data: Path, tmp_path: Path
) -> None:
    # messy_formats/all_exchanges.csv: Binance, Bybit, OKX perps in UK local time, read by the committed mapping.
    mapping = REPO / "configs" / "tidy_all_exchanges.toml"
    table = shared_data / "messy_formats" / "all_exchanges.csv"
    tidy, native = tmp_path / "tidy", tmp_path / "native"
    argv = ["import", str(table), "--mapping", str(mapping), "--store", str(tidy), "--no-progress"]
    assert main(argv) == ExitCode.OK
    files = [
        shared_data / "binance_freqtrade/futures/BTC_USDT_USDT-1h-funding_rate.feather",
        shared_data / "bybit_freqtrade/futures/BTC_USDT_USDT-8h-funding_rate.feather",
    ]
    assert main(["import", *map(str, files), "--store", str(native), "--no-progress"]) == ExitCode.OK
    table_rows = Store(tidy).scan("funding").filter(pl.col("symbol") == "BTC-USDT-PERP").collect()
    joined = table_rows.join(Store(native).scan("funding").collect(), on=["venue", "symbol", "ts"], suffix="_native")
    # Every one of the table's 1,642 Binance settlements (2023-01-01 to 2024-07-01) is in the freqtrade file, and
    # the 645 Bybit ones from 2023-12 on: all with the same rate, so the local times were converted right.
    counts = joined.group_by("venue").agg(pl.len(), same=(pl.col("rate") == pl.col("rate_native")).sum())
    assert counts.sort("venue").rows() == [("binance", 1_642, 1_642), ("bybit", 645, 645)]
    assert set(table_rows["ts"].dt.hour()) == {0, 8, 16}
    assert table_rows.group_by("venue").len().sort("venue").rows() == [
        ("binance", 1_642),
        ("bybit", 1_642),
        ("okx", 1_642),
    ]


def test_ambiguous_local_hour_is_refused_unless_the_mapping_resolves_it(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "raise.toml"
    committed = (REPO / "configs" / "tidy_all_exchanges.toml").read_text()
    mapping.write_text(committed.replace('ambiguous = "earliest"', 'ambiguous = "raise"'))
    table = shared_data / "messy_formats" / "all_exchanges.csv"
    argv = ["import", str(table), "--mapping", str(mapping), "--store", str(tmp_path / "s")]
    assert main(argv) == ExitCode.BAD_INPUT
    # 2023-10-29 01:00 happened twice in London (BST, then GMT): the first Binance perp row of that hour.
    assert "line 16257, field 'ts': expected a Europe/London time" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("*.parquet"))


def test_where_column_missing_from_the_table_is_named(shared_data: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING + '[where]\ncontract = ["perpetual"]\n')
    table_path, _ = _write(tmp_path, _long_table(shared_data))
    with pytest.raises(SourceFormatError, match=r"column 'contract' \(mapped to where\) is missing"):
        TidyImporter(load_mapping(mapping)).read(table_path, ImportOptions())

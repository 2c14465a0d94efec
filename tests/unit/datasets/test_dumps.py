"""Binance public-dump downloads against a loopback server: checksums, import, skip, 404.

The zips are built here: kline CSVs in the dump's 12-column layout with header (as in
``../shared/data/binance_vision``) and fundingRate CSVs ``calc_time,funding_interval_hours,last_funding_rate``
(data.binance.vision ``futures/um/monthly/fundingRate``); each ``.CHECKSUM`` is ``<sha256>  <name>.zip``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from datasets.acquire.dumps import DumpDownloader, DumpFile, parse_checksum, plan_dumps
from datasets.acquire.errors import ChecksumError, PlanError
from datasets.acquire.retry import RetryPolicy
from datasets.importers import find_importer
from datasets.importers.base import ImportOptions
from datasets.importers.binance_dump_funding import BinanceDumpFundingImporter
from datasets.store import Store
from tests.kit.venues import FakeVenueServer, Fault, Route

KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"
)


def _kline_csv(month_start_ms: int, hours: int) -> bytes:
    lines = [KLINE_HEADER]
    for hour in range(hours):
        ts = month_start_ms + hour * 3_600_000
        lines.append(f"{ts},42000.10,42100.50,41900.00,42050.{hour % 100:02d},12.345,{ts + 3_599_999},0,10,0,0,0")
    return ("\n".join(lines) + "\n").encode()


def _funding_csv(month_start_ms: int, settlements: int) -> bytes:
    lines = ["calc_time,funding_interval_hours,last_funding_rate"]
    lines += [f"{month_start_ms + i * 28_800_000 + 7},8,0.000{100 + i}" for i in range(settlements)]
    return ("\n".join(lines) + "\n").encode()


def _zip(name: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, body)
    return buffer.getvalue()


def _publish(routes: dict[str, Route], dump: DumpFile, csv: bytes, *, checksum_of: bytes | None = None) -> None:
    archive = _zip(dump.name.removesuffix(".zip") + ".csv", csv)
    digest = hashlib.sha256(checksum_of if checksum_of is not None else archive).hexdigest()
    path = "/" + str(dump.relative)
    routes[path] = lambda query: archive
    routes[path + ".CHECKSUM"] = lambda query: f"{digest}  {dump.name}\n".encode()


def _ms(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def _downloader(store: Store, tmp_path: Path, sleeps: list[float] | None = None) -> DumpDownloader:
    policy = RetryPolicy(attempts=3, base_secs=0.1, cap_secs=0.2, sleep=(sleeps if sleeps is not None else []).append)
    return DumpDownloader(store, workdir=tmp_path / "work", retry=policy)


def test_plan_follows_the_dump_layout() -> None:
    [klines] = plan_dumps(["BTC-USDT-PERP"], kind="markPriceKlines", start=date(2024, 2, 1), end=date(2024, 2, 1))
    assert (
        klines.url
        == "https://data.binance.vision/data/futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip"
    )
    assert klines.checksum_url == klines.url + ".CHECKSUM"
    spot = plan_dumps(["ETH-USDT"], kind="klines", start=date(2024, 1, 30), end=date(2024, 2, 1), period="daily")
    assert [d.url.rsplit("/", 1)[1] for d in spot] == [
        "ETHUSDT-1h-2024-01-30.zip",
        "ETHUSDT-1h-2024-01-31.zip",
        "ETHUSDT-1h-2024-02-01.zip",
    ]
    assert "/data/spot/daily/klines/ETHUSDT/1h/" in spot[0].url
    funding = plan_dumps(["SOL-USDT-PERP"], kind="fundingRate", start=date(2023, 11, 1), end=date(2024, 2, 1))
    assert [d.label for d in funding] == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert funding[0].url.endswith("/data/futures/um/monthly/fundingRate/SOLUSDT/SOLUSDT-fundingRate-2023-11.zip")


def test_daily_funding_dumps_do_not_exist() -> None:
    with pytest.raises(PlanError, match="fundingRate dumps monthly only"):
        plan_dumps(["BTC-USDT-PERP"], kind="fundingRate", start=date(2024, 1, 1), end=date(2024, 1, 2), period="daily")


def test_checksum_naming_another_file_raises() -> None:
    with pytest.raises(ChecksumError, match=r"the checksum is for 'X\.zip', expected 'Y\.zip'"):
        parse_checksum(f"{'a' * 64}  X.zip", expected_name="Y.zip", url="u")


def test_verified_dumps_are_imported_with_url_lineage(store_root: Path, tmp_path: Path) -> None:
    routes: dict[str, Route] = {}
    with FakeVenueServer(routes) as server:
        klines = plan_dumps(
            ["BTC-USDT-PERP"], kind="klines", start=date(2024, 1, 1), end=date(2024, 2, 1), base_url=server.base_url
        )
        funding = plan_dumps(
            ["BTC-USDT-PERP"],
            kind="fundingRate",
            start=date(2024, 1, 1),
            end=date(2024, 1, 1),
            base_url=server.base_url,
        )
        _publish(routes, klines[0], _kline_csv(_ms(2024, 1), 744))
        _publish(routes, klines[1], _kline_csv(_ms(2024, 2), 696))
        _publish(routes, funding[0], _funding_csv(_ms(2024, 1), 93))
        store = Store(store_root)
        report = _downloader(store, tmp_path).run([*klines, *funding])

    assert (report.imported, report.rows) == (3, 744 + 696 + 93)
    bars = store.scan("ohlcv").sort("ts").collect()
    assert bars.height == 744 + 696
    assert bars.row(5, named=True)["close"] == Decimal("42050.05")
    rates = store.scan("funding").sort("ts").collect()
    assert rates["rate"][0] == Decimal("0.000100")
    assert rates["ts"][0] == datetime(2024, 1, 1, tzinfo=UTC)  # calc_time jitter (+7 ms) snapped to the minute
    assert set(rates["interval"]) == {"8h"}
    [partition] = list(store.partitions("funding"))
    assert partition.lineage[0].source == funding[0].url
    assert partition.lineage[0].extra["checksum_url"] == funding[0].checksum_url
    assert not list((tmp_path / "work").rglob("*.csv"))


def test_checksum_mismatch_raises_and_imports_nothing(store_root: Path, tmp_path: Path) -> None:
    routes: dict[str, Route] = {}
    with FakeVenueServer(routes) as server:
        [dump] = plan_dumps(
            ["BTC-USDT-PERP"], kind="klines", start=date(2024, 1, 1), end=date(2024, 1, 1), base_url=server.base_url
        )
        _publish(routes, dump, _kline_csv(_ms(2024, 1), 10), checksum_of=b"another file")
        with pytest.raises(ChecksumError, match=r"BTCUSDT-1h-2024-01.zip: sha256 [0-9a-f]{64} does not match"):
            _downloader(Store(store_root), tmp_path).run([dump])
    assert not store_root.exists()


def test_second_run_skips_imported_files_without_network(store_root: Path, tmp_path: Path) -> None:
    routes: dict[str, Route] = {}
    with FakeVenueServer(routes) as server:
        files = plan_dumps(
            ["BTC-USDT-PERP"], kind="klines", start=date(2024, 1, 1), end=date(2024, 1, 1), base_url=server.base_url
        )
        _publish(routes, files[0], _kline_csv(_ms(2024, 1), 24))
        store = Store(store_root)
        _downloader(store, tmp_path).run(files)
        server.requests.clear()
        report = _downloader(store, tmp_path).run(files)
    assert (report.imported, report.already_imported) == (0, 1)
    assert server.requests == []


def test_unpublished_month_is_skipped_and_transient_errors_retried(store_root: Path, tmp_path: Path) -> None:
    routes: dict[str, Route] = {}
    with FakeVenueServer(routes) as server:
        files = plan_dumps(
            ["BTC-USDT-PERP"], kind="klines", start=date(2024, 1, 1), end=date(2024, 2, 1), base_url=server.base_url
        )
        _publish(routes, files[0], _kline_csv(_ms(2024, 1), 24))
        server.faults += [Fault("/data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip", 503)]
        sleeps: list[float] = []
        report = _downloader(Store(store_root), tmp_path, sleeps).run(files)
    assert report.imported == 1
    assert report.not_published == [files[1].url]
    assert sleeps == [0.1]


def test_funding_dump_importer_keeps_the_published_interval(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-fundingRate-2024-01.csv"
    path.write_bytes(
        b"calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,0.00010000\n1704096000000,4,-0.00002500\n"
    )
    assert isinstance(find_importer(path), BinanceDumpFundingImporter)
    [batch] = BinanceDumpFundingImporter().read(path, ImportOptions())
    assert batch.frame["interval"].to_list() == ["8h", "4h"]
    assert batch.frame["rate"].to_list() == [Decimal("0.0001"), Decimal("-0.000025")]
    assert batch.frame["symbol"].unique().to_list() == ["BTC-USDT-PERP"]


def test_funding_dump_with_bad_interval_raises_naming_the_line(tmp_path: Path) -> None:
    from datasets.errors import SourceFormatError

    path = tmp_path / "BTCUSDT-fundingRate-2024-01.csv"
    path.write_bytes(b"calc_time,funding_interval_hours,last_funding_rate\n1704067200000,eight,0.0001\n")
    with pytest.raises(SourceFormatError, match=r"line 2, field 'funding_interval_hours': expected a whole number"):
        BinanceDumpFundingImporter().read(path, ImportOptions())
